package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
// subtree holds, and is asked again only once Read took the change it
// told of (watch); its values are read only when the consumer asks, once
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
//
// A subtree whose writes are logged (jobs/, units/: changes.go) is read
// whole once; after that a change is read from the log: its entries since,
// then the keys they name (patchPart says when it reads the subtree whole
// instead).
func (v *View) Follow(ctx context.Context, subtrees []string, wait time.Duration, log *slog.Logger) *Follower {
	f := &Follower{v: v, subtrees: subtrees, log: log, dirty: make([]bool, len(subtrees)),
		parts: make([]read, len(subtrees)), marks: make([]mark, len(subtrees)), logged: make([]bool, len(subtrees)),
		whole: make([]time.Time, len(subtrees)), taken: make([]chan struct{}, len(subtrees))}
	for i, sub := range subtrees {
		f.dirty[i] = true // never read
		f.taken[i] = make(chan struct{}, 1)
		f.logged[i] = slices.Contains(loggedSubtrees, sub)
		go f.watch(ctx, i, wait)
	}
	v.Poke() // the first Read reads every subtree
	return f
}

// watch follows subtree i's index, and marks it to be read when what was
// read of it is out of date. While it is marked, no query is sent: each
// answer costs Consul a walk of the whole subtree, and one that only
// marks it again tells nothing the Read that clears the mark will not
// read. The next query, with the index last answered, returns at once when
// the subtree changed meanwhile, so a write is never missed; the watches
// thus walk each subtree about once per pass, not once per write.
func (f *Follower) watch(ctx context.Context, i int, wait time.Duration) {
	// The subtree's name without its slash, cut at the first slash:
	// "jobs" lists as the one key "jobs/", with the subtree's index.
	prefix := f.v.r.prefix + strings.TrimSuffix(f.subtrees[i], "/")
	marks := make(chan mark, 1)
	go watch.Follow(ctx, f.log, "watching fleet's state in Consul failed, retrying", marks, func(index uint64) (mark, uint64, error) {
		if err := f.untilTaken(ctx, i); err != nil {
			return mark{}, 0, err
		}
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
			if m.index < f.marks[i].index {
				f.whole[i] = time.Time{} // Consul went back: no log tells what changed
			}
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

// untilTaken waits until subtree i is not marked to be read, or ctx is
// done.
func (f *Follower) untilTaken(ctx context.Context, i int) error {
	for {
		f.mu.Lock()
		marked := f.dirty[i]
		f.mu.Unlock()
		if !marked {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.taken[i]:
		}
	}
}

// take clears subtree i's mark; f.mu is held.
func (f *Follower) take(i int) {
	f.dirty[i] = false
	select {
	case f.taken[i] <- struct{}{}:
	default:
	}
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

	logged []bool // by subtree: read from the change log once read whole

	mu     sync.Mutex
	dirty  []bool          // changed since read, or never read
	taken  []chan struct{} // by subtree: its mark cleared (untilTaken)
	parts  []read
	marks  []mark      // what each watch answered last
	whole  []time.Time // when each subtree was last read whole (its list sent)
	forget []change    // log entries applied to every subtree they name (Forget)
	noLog  bool        // the log's entries may not be removed: it is not read
}

// read is one subtree as last read: its keys, and the index up to which
// they are complete.
type read struct {
	pairs api.KVPairs
	index uint64
}

// Changed receives when a followed subtree changed, or Poke was called.
func (f *Follower) Changed() <-chan struct{} { return f.v.poke }

// Quiet waits until units stop being written: until no transaction of
// units (an entry of the change log) came for quiet, for at most most, or
// until ctx is done. It reports whether the writes went quiet. Its blocking
// queries ask for the log's keys cut at the first separator, which walks
// the log's few entries, not the units. Writes to other subtrees
// (machines joining, say) do not keep it waiting. Without the log's
// directory key (KeepChangesDir) the log may have no index of its own, and
// when it cannot be read Quiet cannot tell: it then waits blind (at most
// most) from when it began.
func (f *Follower) Quiet(ctx context.Context, quiet, most, blind time.Duration) bool {
	began := time.Now()
	deadline := began.Add(most)
	log := f.v.r.prefix + strings.TrimSuffix(changesDir, "/")
	var index uint64
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return false
		}
		asked := time.Now()
		keys, meta, err := f.v.r.c.KV().Keys(log, "/", (&api.QueryOptions{WaitIndex: index, WaitTime: min(quiet, left)}).WithContext(ctx))
		if err != nil || len(keys) == 0 {
			watch.Sleep(ctx, time.Until(began.Add(min(blind, most))))
			return false
		}
		if index != 0 && meta.LastIndex == index && time.Since(asked) >= quiet {
			return true
		}
		index = meta.LastIndex
	}
}

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
			f.take(i)
		}
	}
	useLog := !f.noLog
	f.mu.Unlock()
	var log []change
	var logAt time.Time                     // when the log was read
	seen := make([]uint64, len(f.subtrees)) // the watches' indexes before the log is read
	if useLog && slices.ContainsFunc(todo, func(i int) bool { return f.logged[i] }) {
		f.mu.Lock()
		for i, m := range f.marks {
			seen[i] = m.index
		}
		f.mu.Unlock()
		logAt = time.Now()
		var err error
		if log, err = f.readLog(ctx); err != nil {
			return nil, err
		}
		for i := range f.subtrees { // a subtree whose watch is yet to tell of an entry's write, too
			read := f.partIndex(i)
			if f.logged[i] && !slices.Contains(todo, i) && slices.ContainsFunc(log, func(c change) bool { return c.index > read && c.names(f.subtrees[i]) }) {
				todo = append(todo, i)
			}
		}
	}
	var wholeLogged atomic.Bool // a logged subtree read whole after the log
	errs := atOnce(len(todo), len(todo), func(k int) error {
		i := todo[k]
		if useLog && f.logged[i] && f.partIndex(i) != 0 && time.Since(f.wholeAt(i)) < logTrust {
			return f.patchPart(ctx, i, log, seen[i])
		}
		if f.logged[i] && !logAt.IsZero() {
			wholeLogged.Store(true)
		}
		return f.readPart(ctx, i)
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if wholeLogged.Load() {
		// What was read whole holds the writes of entries logged after
		// the log was read: read it again, so that Forget takes those
		// out too. No change might come to have them read otherwise.
		var err error
		if log, err = f.readLog(ctx); err != nil {
			return nil, err
		}
	}
	f.applied(log, logAt)
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

// readLog reads the change log, trying again until ctx is done.
func (f *Follower) readLog(ctx context.Context) (log []change, err error) {
	err = f.retry(ctx, changesDir, func() error {
		log, err = f.v.r.changes(ctx)
		return err
	})
	return log, err
}

// readPart reads subtree i whole, trying again until ctx is done, and
// keeps it.
func (f *Follower) readPart(ctx context.Context, i int) error {
	return f.retry(ctx, f.subtrees[i], func() error {
		at := time.Now()
		pairs, meta, err := f.v.r.list(f.v.r.prefix+f.subtrees[i], (&api.QueryOptions{}).WithContext(ctx))
		if err == nil {
			f.keepPart(i, read{pairs, meta.LastIndex})
			f.mu.Lock()
			f.whole[i] = at
			f.mu.Unlock()
		}
		return err
	})
}

// keepPart keeps p as subtree i. A change its watch told of meanwhile that
// p holds needs no other read.
func (f *Follower) keepPart(i int, p read) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parts[i] = p
	if f.dirty[i] && !p.outdated(f.marks[i], f.marks[i].index) {
		f.take(i)
	}
}

// logTrust is how long a logged subtree is read from the log after it
// was last read whole. A write without an entry (a client that may not
// write the log) shows as the subtree's index past every entry, unless a
// logged write lands after it before its watch answers: the index is the
// last write's. Such a write is read at the next change after logTrust.
const logTrust = time.Minute

// wholeAt is when subtree i was last read whole.
func (f *Follower) wholeAt(i int) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.whole[i]
}

// partIndex is the index up to which subtree i is read; 0 if never.
func (f *Follower) partIndex(i int) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts[i].index
}

// patchPart brings logged subtree i up to date from the change log, read
// after its watch told of index seen: it reads the keys that log's entries
// past what is read name, or the whole subtree when seen is a write no
// entry accounts for, or when the entries name more keys than a quarter of
// the subtree and than one transaction reads.
func (f *Follower) patchPart(ctx context.Context, i int, log []change, seen uint64) error {
	sub := f.subtrees[i]
	f.mu.Lock()
	p := f.parts[i]
	f.mu.Unlock()
	explained, top := seen <= p.index, p.index
	var keys []string
	named := map[string]bool{}
	for _, c := range log {
		if !c.names(sub) {
			continue
		}
		explained = explained || c.index == seen
		if c.index > p.index {
			top = max(top, c.index)
			for _, k := range c.keys {
				if strings.HasPrefix(k, sub) && !named[k] {
					named[k] = true
					keys = append(keys, f.v.r.prefix+k)
				}
			}
		}
	}
	if !explained || len(keys) > max(txnOpsLeast, len(p.pairs)/4) {
		return f.readPart(ctx, i)
	}
	var got api.KVPairs
	err := f.retry(ctx, sub, func() (err error) {
		got, err = f.v.r.getKeys(ctx, keys)
		return err
	})
	if err != nil {
		return err
	}
	f.keepPart(i, read{patched(p.pairs, keys, got), max(top, seen)})
	return nil
}

// patched is pairs with keys as read now: got holds those Consul has.
func patched(pairs api.KVPairs, keys []string, got api.KVPairs) api.KVPairs {
	now := make(map[string]*api.KVPair, len(keys))
	for _, k := range keys {
		now[k] = nil // gone unless got holds it
	}
	for _, g := range got {
		now[g.Key] = g
	}
	out := make(api.KVPairs, 0, len(pairs)+len(got))
	for _, p := range pairs {
		if _, read := now[p.Key]; !read {
			out = append(out, p)
		}
	}
	for _, g := range got {
		out = append(out, g)
	}
	return out
}

// applied marks the entries of log, read at logAt, that every subtree
// they name has read as ready to remove (Forget): a subtree read past the
// entry's index, or read whole after the log was. A write that sets a key
// to the value it holds leaves the key's index, and so the subtree's, as
// it was (a template's body, written again with each batch of its
// instances). When a pass read a subtree whole, log is read again after
// that read, and its entries logged meanwhile count as read too; one
// logged after the whole read went out with them costs only a whole read
// of its subtree at its watch's next word, as a write without an entry
// does.
func (f *Follower) applied(log []change, logAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range log {
		done := true
		for i, sub := range f.subtrees {
			if f.logged[i] && c.names(sub) && f.parts[i].index < c.index && f.whole[i].Before(logAt) {
				done = false
			}
		}
		if done && !slices.ContainsFunc(f.forget, func(o change) bool { return o.key == c.key }) {
			f.forget = append(f.forget, c)
		}
	}
}

// Forget removes the change log's entries that Reads applied, if session
// still holds the leader lock (else ErrNotLeader): the leader calls it
// after a pass. An entry left (a failure) is read again and costs a read
// of the keys it names. When Consul refuses the removal by ACL (a leader
// policy from before the log), Reads stop reading the log and read the
// logged subtrees whole.
func (f *Follower) Forget(ctx context.Context, session string) error {
	f.mu.Lock()
	cs := f.forget
	f.forget = nil
	f.mu.Unlock()
	if len(cs) == 0 {
		return nil
	}
	err := f.v.r.forgetChanges(ctx, session, cs)
	if errors.As(err, new(*PermissionError)) {
		// The log would only grow: read the subtrees whole instead.
		f.mu.Lock()
		f.noLog = true
		f.mu.Unlock()
	}
	return err
}

// retry calls read until it succeeds or ctx is done, logging each failure
// and waiting longer each time.
func (f *Follower) retry(ctx context.Context, what string, read func() error) error {
	for backoff := time.Second; ; backoff = min(backoff*2, 5*time.Second) {
		err := read()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.log.Warn("reading fleet's state from Consul failed, retrying", "subtree", what, "err", err, "in", backoff)
		watch.Sleep(ctx, backoff)
	}
}
