package registry

import (
	"context"
	"fmt"
	"slices"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/unitfile"
)

// JobsNamed reads the named units' jobs and the bodies they name, and of
// the rest only what a command that writes those units reads next: a
// Snapshot holding Jobs, with each found unit's body (a name with no job is
// absent), and DefaultPolicy. The reads are read-only transactions of up
// to 64 keys, several at once, which Consul answers without writing its
// log; so a command that handles 500 units of a 100,000-unit cluster reads
// 500 jobs, not 100,000. The reads are not one consistent view.
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

// getKeys reads keys (full keys, under the prefix) in read-only
// transactions of up to txnOps get-or-empty operations, txnsAtOnce at a
// time. A key Consul does not hold is left out of the answer.
func (r *Registry) getKeys(ctx context.Context, keys []string) (api.KVPairs, error) {
	chunks := slices.Collect(slices.Chunk(keys, txnOps))
	got := make([]api.KVPairs, len(chunks)) // each transaction fills its own
	errs := atOnce(len(chunks), txnsAtOnce, func(k int) error {
		ops := make(api.TxnOps, 0, len(chunks[k]))
		for _, key := range chunks[k] {
			ops = append(ops, kv(api.KVGetOrEmpty, key, nil, 0))
		}
		ok, resp, _, err := r.c.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
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
