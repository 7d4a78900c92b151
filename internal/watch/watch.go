// Package watch is how fleet's daemons follow Consul: blocking queries run
// in a loop (Follow), and the newest of what they read handed over to the
// loop that acts on it (Offer), never a queue of stale ones.
package watch

import (
	"context"
	"log/slog"
	"time"
)

// Follow runs blocking queries, read(index) returning a value and the index
// to wait on next, until ctx is done, and hands each value over on out
// (Offer). A failed read is logged with failed and retried with backoff, up
// to 5 s; an index that went backwards (Consul restored a snapshot) starts
// over from 0.
func Follow[T any](ctx context.Context, log *slog.Logger, failed string, out chan T, read func(index uint64) (T, uint64, error)) {
	var index uint64
	backoff := time.Second
	for ctx.Err() == nil {
		v, i, err := read(index)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn(failed, "err", err, "in", backoff)
				Sleep(ctx, backoff)
				backoff = min(backoff*2, 5*time.Second)
			}
			continue
		}
		backoff = time.Second
		if i < index {
			index = 0
			continue
		}
		index = max(i, 1)
		Offer(ctx, out, v)
	}
}

// Offer hands v over on out (capacity 1), replacing an unread older one.
func Offer[T any](ctx context.Context, out chan T, v T) {
	for {
		select {
		case out <- v:
			return
		case <-ctx.Done():
			return
		default:
		}
		select {
		case <-out:
		default:
		}
	}
}

// Sleep waits d, or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
