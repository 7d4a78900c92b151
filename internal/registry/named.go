package registry

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/unitfile"
)

// JobsNamed reads the named units' jobs and the bodies they name, and no
// other key: a Snapshot holding Jobs only, with each found unit's body (a
// name with no job is absent). The reads are read-only transactions of up
// to 64 keys, several at once, which Consul answers without writing its
// log; so a command that handles 500 units of a 100,000-unit cluster reads
// 500 jobs, not 100,000. The reads are not one consistent view.
func (r *Registry) JobsNamed(ctx context.Context, names []string) (*Snapshot, error) {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		keys = append(keys, r.jobKey(n))
	}
	pairs, err := r.getKeys(ctx, keys)
	if err != nil {
		return nil, err
	}
	s := r.decode(pairs, 0)
	// Bodies are immutable: one read each, and none this Registry parsed
	// before.
	var bodyKeys []string
	seen := map[unitfile.Hash]bool{}
	r.mu.Lock()
	for _, j := range s.Jobs {
		if _, known := r.bodies[j.Hash]; !known && !seen[j.Hash] {
			seen[j.Hash] = true
			bodyKeys = append(bodyKeys, r.unitKey(j.Hash))
		}
	}
	r.mu.Unlock()
	bodies, err := r.getKeys(ctx, bodyKeys)
	if err != nil {
		return nil, err
	}
	for _, p := range bodies {
		if h, err := unitfile.ParseHash(p.Key[len(r.prefix+"units/"):]); err == nil {
			r.parse(h, p.Value)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range s.Jobs {
		j.Unit = r.bodies[j.Hash]
	}
	return s, nil
}

// getKeys reads keys (full keys, under the prefix) in read-only
// transactions of up to txnOps get-or-empty operations, txnsAtOnce at a
// time. A key Consul does not hold is left out of the answer.
func (r *Registry) getKeys(ctx context.Context, keys []string) (api.KVPairs, error) {
	chunks := slices.Collect(slices.Chunk(keys, txnOps))
	got := make([]api.KVPairs, len(chunks))
	var mu sync.Mutex
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
			for _, e := range resp.Errors {
				if isPermissionDenied(e.What) {
					return fmt.Errorf("read fleet state from Consul: %w", &PermissionError{What: e.What})
				}
			}
			return fmt.Errorf("read fleet state from Consul: %v", resp.Errors)
		}
		var pairs api.KVPairs
		for _, res := range resp.Results {
			if res.KV != nil && res.KV.ModifyIndex != 0 {
				pairs = append(pairs, &api.KVPair{Key: res.KV.Key, Value: res.KV.Value, CreateIndex: res.KV.CreateIndex, ModifyIndex: res.KV.ModifyIndex, Session: res.KV.Session, Flags: res.KV.Flags})
			}
		}
		mu.Lock()
		got[k] = pairs
		mu.Unlock()
		return nil
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return slices.Concat(got...), nil
}
