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
	poke chan struct{}          // Follower.Changed: a change to read, or a Poke
}

// View reads the owned subtrees of the prefix ("placement/", "schedule/")
// and returns a View that keeps them.
func (r *Registry) View(ctx context.Context, owned ...string) (*View, error) {
	v := &View{r: r, owned: owned, poke: make(chan struct{}, 1)}
	return v, v.Reload(ctx)
}

// Poke wakes the Follower's consumer (Changed) to decide again on what
// is read: after writes of the leader's own, which wake no watch.
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

// Reading is what a Follower read of the followed subtrees; View.Snapshot
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
// a key such as "leader"): it tells of a change on Changed, and Read reads
// what changed. Each subtree is watched with blocking queries that ask
// for its keys cut at the first separator, so that a wake costs Consul a
// walk of the subtree's index and an answer of one key, whatever the
// subtree holds; its values are read only when the consumer asks, once
// however many writes it gathered meanwhile. Each blocking query waits at
// most wait; one that fails is logged and retried. The watches stop when
// ctx is done.
//
// # Notes
//
// A subtree left out costs nothing: a write under it wakes no one here.
// The leader leaves out states/, which every unit a machine starts or
// stops writes, and which it does not need.
//
// A blocking query of a subtree's values answers with the whole subtree
// at each of its changes: under a burst of fleetctl writes, a read of
// every job per write, not per pass.
func (v *View) Follow(ctx context.Context, subtrees []string, wait time.Duration, log *slog.Logger) *Follower {
	f := &Follower{v: v, subtrees: subtrees, log: log, dirty: make([]bool, len(subtrees)),
		parts: make([]read, len(subtrees)), marks: make([]mark, len(subtrees))}
	for i := range subtrees {
		f.dirty[i] = true // never read
		go f.watch(ctx, i, wait)
	}
	v.Poke() // the first Read reads every subtree
	return f
}

// watch follows subtree i's index, and marks it to be read when what was
// read of it is out of date.
func (f *Follower) watch(ctx context.Context, i int, wait time.Duration) {
	// The subtree's name without its slash, cut at the first slash:
	// "jobs" lists as the one key "jobs/", with the subtree's index.
	prefix := f.v.r.prefix + strings.TrimSuffix(f.subtrees[i], "/")
	marks := make(chan mark, 1)
	go watch.Follow(ctx, f.log, "watching fleet's state in Consul failed, retrying", marks, func(index uint64) (mark, uint64, error) {
		keys, meta, err := f.v.r.c.KV().Keys(prefix, "/", (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx))
		if err != nil {
			return mark{}, 0, err
		}
		return mark{meta.LastIndex, len(keys) == 0}, meta.LastIndex, nil
	})
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-marks:
			f.mu.Lock()
			changed := f.parts[i].outdated(m, f.marks[i].index)
			f.dirty[i] = f.dirty[i] || changed
			f.marks[i] = m
			f.mu.Unlock()
			if changed {
				f.v.Poke()
			}
		}
	}
}

// mark is what a watch's blocking query answered: the subtree's index, and
// whether it holds no key.
type mark struct {
	index uint64
	empty bool
}

// outdated reports whether p, a subtree as read, is out of date now that
// its watch answered m, after seen before: when m's index is past what was
// read, or went back (Consul restored a snapshot). A subtree read empty
// and empty still is not: Consul gives an empty prefix the index of all
// its keys, which any write anywhere moves.
func (p read) outdated(m mark, seen uint64) bool {
	if m.empty && p.index != 0 && len(p.pairs) == 0 {
		return false
	}
	return m.index > p.index || m.index < seen
}

// Follower is what View.Follow watches: what it read of each subtree, and
// which changed since.
type Follower struct {
	v        *View
	subtrees []string
	log      *slog.Logger

	mu    sync.Mutex
	dirty []bool // changed since read, or never read
	parts []read
	marks []mark // what each watch answered last
}

// read is one subtree as last read.
type read struct {
	pairs api.KVPairs
	index uint64
}

// Changed receives when a followed subtree changed, or Poke was called.
func (f *Follower) Changed() <-chan struct{} { return f.v.poke }

// Read reads the subtrees that changed since they were last read, each
// once, and returns what is read of them all. A read that fails is logged
// and tried again until ctx is done, whose error it then returns. What
// changed before Read began is in what it returns; a change it read that
// was told of meanwhile does not wake Changed again.
func (f *Follower) Read(ctx context.Context) (*Reading, error) {
	f.mu.Lock()
	var todo []int
	for i, d := range f.dirty {
		if d {
			todo = append(todo, i)
			f.dirty[i] = false
		}
	}
	f.mu.Unlock()
	errs := atOnce(len(todo), len(todo), func(k int) error { return f.readPart(ctx, todo[k]) })
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.dirty, true) {
		// Whatever woke Changed meanwhile is read: a mark sets dirty
		// under mu before it pokes.
		select {
		case <-f.v.poke:
		default:
		}
	}
	var index uint64
	all := make([]api.KVPairs, 0, len(f.parts))
	for _, p := range f.parts {
		all, index = append(all, p.pairs), max(index, p.index)
	}
	return &Reading{pairs: slices.Concat(all...), index: index}, nil
}

// readPart reads subtree i, trying again until ctx is done, and keeps it.
// A change its watch told of meanwhile that the read holds needs no other.
func (f *Follower) readPart(ctx context.Context, i int) error {
	for backoff := time.Second; ; backoff = min(backoff*2, 5*time.Second) {
		pairs, meta, err := f.v.r.list(f.v.r.prefix+f.subtrees[i], (&api.QueryOptions{}).WithContext(ctx))
		if err == nil {
			f.mu.Lock()
			p := read{pairs, meta.LastIndex}
			f.parts[i] = p
			f.dirty[i] = f.dirty[i] && p.outdated(f.marks[i], f.marks[i].index)
			f.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.log.Warn("reading fleet's state from Consul failed, retrying", "subtree", f.subtrees[i], "err", err, "in", backoff)
		watch.Sleep(ctx, backoff)
	}
}
