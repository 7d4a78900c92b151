package registry

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/watch"
)

// Follow follows the named subtrees of the prefix ("jobs/", "machines/",
// a key such as "leader"), each with blocking queries of its own, and
// hands over on out a Snapshot of them all whenever one of them changed,
// the newest only (watch.Offer). Each read waits at most wait. The first
// Snapshot comes once every subtree has been read; a read that fails is
// logged and retried. It returns when ctx is done.
//
// # Notes
//
// A subtree left out costs nothing: a write under it wakes no one here.
// The leader leaves out states/, which every unit a machine starts or
// stops writes, and which it does not need.
func (r *Registry) Follow(ctx context.Context, subtrees []string, wait time.Duration, log *slog.Logger, out chan *Snapshot) {
	type read struct {
		pairs api.KVPairs
		index uint64
	}
	var (
		mu      sync.Mutex
		parts   = make([]read, len(subtrees))
		missing = len(subtrees) // subtrees not read yet
		changed = make(chan struct{}, 1)
	)
	for i, name := range subtrees {
		reads := make(chan read, 1)
		go watch.Follow(ctx, log, "reading fleet's state from Consul failed, retrying", reads, func(index uint64) (read, uint64, error) {
			q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx)
			pairs, meta, err := r.c.KV().List(r.prefix+name, q)
			if err != nil {
				return read{}, 0, err
			}
			return read{pairs, meta.LastIndex}, meta.LastIndex, nil
		})
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case rd := <-reads:
					mu.Lock()
					if parts[i].index == 0 {
						missing--
					}
					unchanged := rd.index == parts[i].index
					parts[i] = rd
					mu.Unlock()
					if !unchanged {
						watch.Offer(ctx, changed, struct{}{})
					}
				}
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		mu.Lock()
		if missing > 0 {
			mu.Unlock()
			continue
		}
		var index uint64
		all := make([]api.KVPairs, len(parts))
		indexes := make(map[string]uint64, len(parts))
		for i, p := range parts {
			all[i], index, indexes[subtrees[i]] = p.pairs, max(index, p.index), p.index
		}
		mu.Unlock()
		s := r.decode(slices.Concat(all...), index)
		s.Indexes = indexes
		watch.Offer(ctx, out, s)
	}
}
