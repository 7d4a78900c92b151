package registry

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/unitfile"
)

// JobsNamed reads the named units' jobs and the bodies they name, and of
// the rest only what a command that writes those units reads next: a
// Snapshot holding Jobs, with each found unit's body (a name with no job is
// absent), and DefaultPolicy. The reads are read-only transactions of as
// many keys as Consul takes (txnOps), several at once, which Consul
// answers without writing its log; so a command that handles 500 units of
// a 100,000-unit cluster reads 500 jobs, not 100,000. The reads are not
// one consistent view.
//
// The default policy and the schema key ride in the jobs' transactions,
// so a command that reads, checks and writes its units waits for three
// rounds to Consul, not five; a stamped schema is kept for the writes
// (Writable).
func (r *Registry) JobsNamed(ctx context.Context, names []string) (*Snapshot, error) {
	keys := make([]string, 0, len(names)+2)
	for _, n := range names {
		keys = append(keys, r.jobKey(n))
	}
	keys = append(keys, r.defaultPolicyKey(), r.schemaKey())
	pairs, err := r.getKeys(ctx, keys)
	if err != nil {
		return nil, err
	}
	// Then the bodies the jobs name, each once; decode joins them.
	var bodyKeys []string
	seen := map[unitfile.Hash]bool{}
	for _, j := range r.decode(pairs, 0).Jobs {
		if !seen[j.Hash] {
			seen[j.Hash] = true
			bodyKeys = append(bodyKeys, r.unitKey(j.Hash))
		}
	}
	bodies, err := r.getKeys(ctx, bodyKeys)
	if err != nil {
		return nil, err
	}
	s := r.decode(append(pairs, bodies...), 0)
	if s.Schema.Stamped {
		r.setSchema(s.Schema)
	}
	return s, nil
}

// Tracking reads what a command waiting for the named units looks at, and
// nothing else: their jobs and placements, then the records of the
// machines they are placed on and what those machines report of them;
// with everywhere, what every machine reports instead, as a unit being
// stopped or destroyed may still be reported by a machine it has left.
// Like JobsNamed, the reads are read-only transactions, several at once,
// and not one consistent view: a wait for 500 units of a 10,000-unit
// cluster reads 2,000 keys where the cluster holds over 30,000.
func (r *Registry) Tracking(ctx context.Context, names []string, everywhere bool) (*Snapshot, error) {
	keys := make([]string, 0, 2*len(names))
	for _, n := range names {
		keys = append(keys, r.jobKey(n), r.placementKey(n))
	}
	pairs, err := r.getKeys(ctx, keys)
	if err != nil {
		return nil, err
	}
	if everywhere {
		states, _, err := r.subtrees(ctx, []string{"states/"})
		if err != nil {
			return nil, err
		}
		return r.decode(append(pairs, states...), 0), nil
	}
	on := map[string]bool{} // the machines the units are placed on
	for _, j := range r.decode(pairs, 0).Jobs {
		if j.Target != "" {
			on[j.Target] = true
		}
	}
	ops := make(api.TxnOps, 0, 2*len(on))
	for _, m := range slices.Sorted(maps.Keys(on)) {
		// The machine's states come as one tree: its machine key, then the
		// keys of units of their own, which win.
		ops = append(ops, kv(api.KVGetOrEmpty, r.machineKey(m), nil, 0), kv(api.KVGetTree, r.machineStatesKey(m), nil, 0))
	}
	more, err := r.readOps(ctx, ops)
	if err != nil {
		return nil, err
	}
	return r.decode(append(pairs, more...), 0), nil
}

// changedProbe is the key under the prefix that Changed reads: fleet
// writes no key beginning with "~".
const changedProbe = "~"

// Changed blocks until a key under the prefix changes past index, or wait
// passes, and returns an index to wait on next (with index 0, at once): at
// least the index of the prefix's last write, and past index if a key
// under it changed.
//
// It asks for a key that cannot exist, directly under the prefix
// (changedProbe). Consul answers a read of a missing key with the index
// of its whole KV store, and wakes it at each write under the deepest
// part of the key's path that holds keys: the prefix. The answer costs
// Consul a lookup, where a query that lists the prefix (even its keys cut
// at the first separator) walks every key under it at each wake: about
// 4 ms per 10,000 keys, and 10,000 units hold over 30,000. A write
// elsewhere in Consul moves the index too: at worst a wait reads once
// more.
func (r *Registry) Changed(ctx context.Context, index uint64, wait time.Duration) (uint64, error) {
	_, meta, err := r.c.KV().Keys(r.prefix+changedProbe, "", (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("watch fleet state in Consul: %w", err)
	}
	return meta.LastIndex, nil
}

// getKeys reads keys (full keys, under the prefix) in read-only
// transactions of get-or-empty operations, as many as Consul takes,
// txnsAtOnce at a time. A key Consul does not hold is left out of the
// answer.
func (r *Registry) getKeys(ctx context.Context, keys []string) (api.KVPairs, error) {
	ops := make(api.TxnOps, 0, len(keys))
	for _, key := range keys {
		ops = append(ops, kv(api.KVGetOrEmpty, key, nil, 0))
	}
	return r.readOps(ctx, ops)
}

// readOps runs read operations in read-only transactions of as many as
// Consul takes (txnOps), txnsAtOnce at a time, and returns the keys they
// found, in order.
func (r *Registry) readOps(ctx context.Context, ops api.TxnOps) (api.KVPairs, error) {
	chunks := slices.Collect(slices.Chunk(ops, r.txnOps()))
	got := make([]api.KVPairs, len(chunks)) // each transaction fills its own
	errs := atOnce(len(chunks), txnsAtOnce, func(k int) error {
		ok, resp, err := r.sendTxn(ctx, chunks[k])
		if r.tooMany(err, len(chunks[k])) {
			got[k], err = r.readOps(ctx, chunks[k])
			return err
		}
		if err != nil {
			return fmt.Errorf("read fleet state from Consul: %w", err)
		}
		if !ok {
			why, denied := rolledBack(resp)
			if denied != nil {
				return fmt.Errorf("read fleet state from Consul: %w", denied)
			}
			return fmt.Errorf("read fleet state from Consul: %s", why)
		}
		for _, res := range resp.Results {
			if res.KV != nil && res.KV.ModifyIndex != 0 {
				got[k] = append(got[k], res.KV)
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return slices.Concat(got...), nil
}
