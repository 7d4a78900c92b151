package registry

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/watch"
)

// View is the leader's view of fleet's state. The subtrees others write
// (jobs/, machines/, ...) it follows, each with blocking queries of its own
// (Follow); the subtrees only the leader writes (placement/, schedule/) it
// reads once and then keeps by applying the leader's own writes (WriteAll).
// A pass thus reads what others changed, and never reads back what the
// leader just wrote. A View is safe for concurrent use.
type View struct {
	r     *Registry
	owned []string

	mu   sync.Mutex
	own  map[string]*api.KVPair // the owned subtrees' keys
	poke chan struct{}          // Poke asks Follow for a Snapshot
}

// View reads the owned subtrees of the prefix ("placement/", "schedule/")
// and returns a View that keeps them.
func (r *Registry) View(ctx context.Context, owned ...string) (*View, error) {
	v := &View{r: r, owned: owned, poke: make(chan struct{}, 1)}
	return v, v.Reload(ctx)
}

// Poke makes Follow hand over a Snapshot now, of what it has read: after
// writes of the leader's own, which wake no blocking query, to decide again
// on what they changed.
func (v *View) Poke() {
	select {
	case v.poke <- struct{}{}:
	default:
	}
}

// Reload reads the owned subtrees again: after a write that did not apply,
// what the View keeps may differ from Consul.
func (v *View) Reload(ctx context.Context) error {
	own := map[string]*api.KVPair{}
	for _, sub := range v.owned {
		pairs, _, err := v.r.list(v.r.prefix+sub, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("read fleet state from Consul: %w", err)
		}
		for _, p := range pairs {
			own[p.Key] = p
		}
	}
	v.mu.Lock()
	v.own = own
	v.mu.Unlock()
	return nil
}

// WriteAll is Registry.WriteAll, and keeps what applied: each key it set
// or removed under an owned subtree.
func (v *View) WriteAll(ctx context.Context, session string, ws []Write) ([]bool, error) {
	done, set, err := v.r.writeAll(ctx, session, ws)
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, w := range ws {
		if !done[i] {
			continue
		}
		for _, op := range w.ops {
			if kv := op.KV; kv != nil && v.isOwned(kv.Key) {
				v.keep(kv, set[kv.Key])
			}
		}
	}
	return done, err
}

func (v *View) isOwned(key string) bool {
	for _, sub := range v.owned {
		if strings.HasPrefix(key, v.r.prefix+sub) {
			return true
		}
	}
	return false
}

// keep records what op did to its key; got is what Consul said of it.
func (v *View) keep(op *api.KVTxnOp, got *api.KVPair) {
	switch op.Verb {
	case api.KVSet, api.KVCAS:
		p := &api.KVPair{Key: op.Key, Value: op.Value}
		if got != nil {
			p.ModifyIndex, p.CreateIndex = got.ModifyIndex, got.CreateIndex
		}
		v.own[op.Key] = p
	case api.KVDelete, api.KVDeleteCAS:
		delete(v.own, op.Key)
	}
}

// pairs is what the View keeps.
func (v *View) pairs() api.KVPairs {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Collect(maps.Values(v.own))
}

// Reading is what Follow read of the followed subtrees; View.Snapshot
// makes a Snapshot of it.
type Reading struct {
	pairs api.KVPairs
	index uint64
}

// Snapshot is the cluster as rd and what the View keeps now say.
func (v *View) Snapshot(rd *Reading) *Snapshot {
	return v.r.decode(slices.Concat(v.pairs(), rd.pairs), rd.index)
}

// Follow follows the named subtrees of the prefix ("jobs/", "machines/",
// a key such as "leader"), each with blocking queries of its own, and
// hands over on out what it read of them all whenever one of them changed,
// the newest only (watch.Offer). Each read waits at most wait. The first
// Reading comes once every subtree has been read; a read that fails is
// logged and retried. It returns when ctx is done.
//
// # Notes
//
// A subtree left out costs nothing: a write under it wakes no one here.
// The leader leaves out states/, which every unit a machine starts or
// stops writes, and which it does not need.
func (v *View) Follow(ctx context.Context, subtrees []string, wait time.Duration, log *slog.Logger, out chan *Reading) {
	r := v.r
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
			pairs, meta, err := r.list(r.prefix+name, q)
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
		case <-v.poke:
		}
		mu.Lock()
		if missing > 0 {
			mu.Unlock()
			continue
		}
		var index uint64
		var all []api.KVPairs
		for _, p := range parts {
			all, index = append(all, p.pairs), max(index, p.index)
		}
		mu.Unlock()
		watch.Offer(ctx, out, &Reading{pairs: slices.Concat(all...), index: index})
	}
}
