package registry

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Dynamic machine metadata is fleet's PATCH /machines: key=value pairs set
// on a live machine from outside (fleetctl machine-metadata), kept in
// machine-metadata/<id>/<key>. Unlike machines/<id>, which the machine's
// agent writes from its configuration and its session removes when it
// dies, these keys belong to no session: they outlive the agent
// republishing its configured metadata, a fleetd restart and the machine
// leaving, until they are removed. Wherever fleet reads a machine's
// metadata (Snapshot, Machines) the dynamic pairs are merged over the
// configured ones, and the agent merges them for the global units it runs.

func (r *Registry) dynamicPrefix(machine string) string {
	return r.prefix + "machine-metadata/" + machine + "/"
}

// KeepMetadataDir writes the directory key of machine's dynamic metadata
// (machine-metadata/<id>/) unless it exists (keepDir), so that the agent's
// blocking query on its metadata is not woken by every change in the
// cluster.
func (r *Registry) KeepMetadataDir(ctx context.Context, machine string) error {
	return r.keepDir(ctx, r.dynamicPrefix(machine), fmt.Sprintf("machine %s's metadata", machine))
}

// keepDir writes the directory key dir (a prefix's own key, empty, named
// by its slash) unless it exists; what names the prefix in an error. A
// blocking query on a prefix that holds no key (never did, or Consul
// reaped its removed keys' tombstones) answers with the whole KV store's
// index, so it returns at once after any write anywhere: a watch of such a
// prefix would read it again on every change in the cluster. With the key
// there, the prefix has an index of its own.
func (r *Registry) keepDir(ctx context.Context, dir, what string) error {
	_, _, err := r.c.KV().CAS(&api.KVPair{Key: dir, ModifyIndex: 0}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("write %s directory key: %w", what, err)
	}
	return nil
}

// ValidMetadataKey reports whether k can be a dynamic metadata key:
// letters, digits, '_', '.' and '-', as fleet's API required.
func ValidMetadataKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// ValidMetadataValue says what is wrong with v as a metadata value, or "".
func ValidMetadataValue(v string) string {
	switch {
	case v == "":
		return "the value is empty"
	case strings.ContainsAny(v, ",\n\r"):
		return "the value contains a comma or a line break (metadata is written key=value,key=value)"
	}
	return ""
}

// metadataOps is how many pairs one call sets or removes: all of them go
// in one transaction, so that a command applies whole or not at all, and
// every Consul agent fleet runs with takes that many operations in one.
const metadataOps = txnOpsLeast

// SetMachineMetadata sets the dynamic metadata pairs md on machine, all at
// once.
//
// # Errors
//
// An invalid key or value, or more than metadataOps (64) pairs, is an
// error and nothing is written.
func (r *Registry) SetMachineMetadata(ctx context.Context, machine string, md map[string]string) error {
	if err := r.mayWrite(ctx, false); err != nil {
		return err
	}
	if len(md) > metadataOps {
		return fmt.Errorf("%d metadata pairs at once: set at most %d per call", len(md), metadataOps)
	}
	var ops api.TxnOps
	for k, v := range md {
		if !ValidMetadataKey(k) {
			return fmt.Errorf("invalid metadata key %q: use letters, digits, '_', '.' and '-'", k)
		}
		if why := ValidMetadataValue(v); why != "" {
			return fmt.Errorf("invalid metadata %s=%q: %s", k, v, why)
		}
		ops = append(ops, kv(api.KVSet, r.dynamicPrefix(machine)+k, []byte(v), 0))
	}
	if _, _, err := r.txn(ctx, ops); err != nil {
		return fmt.Errorf("set metadata of machine %s: %w", machine, err)
	}
	return nil
}

// DeleteMachineMetadata removes the dynamic metadata keys from machine,
// all at once. Keys that are not set are ignored.
func (r *Registry) DeleteMachineMetadata(ctx context.Context, machine string, keys []string) error {
	if err := r.mayWrite(ctx, false); err != nil {
		return err
	}
	if len(keys) > metadataOps {
		return fmt.Errorf("%d metadata keys at once: remove at most %d per call", len(keys), metadataOps)
	}
	var ops api.TxnOps
	for _, k := range keys {
		if !ValidMetadataKey(k) {
			return fmt.Errorf("invalid metadata key %q: use letters, digits, '_', '.' and '-'", k)
		}
		ops = append(ops, kv(api.KVDelete, r.dynamicPrefix(machine)+k, nil, 0))
	}
	if _, _, err := r.txn(ctx, ops); err != nil {
		return fmt.Errorf("remove metadata of machine %s: %w", machine, err)
	}
	return nil
}

// DynamicMetadata reads machine's dynamic metadata (empty, not nil, when
// there is none). With waitIndex above zero it is a blocking query, as
// Snapshot is; the index returned is the one to wait on next.
func (r *Registry) DynamicMetadata(ctx context.Context, machine string, waitIndex uint64, wait time.Duration) (map[string]string, uint64, error) {
	q := (&api.QueryOptions{WaitIndex: waitIndex, WaitTime: wait}).WithContext(ctx)
	pairs, meta, err := r.list(r.dynamicPrefix(machine), q)
	if err != nil {
		return nil, 0, fmt.Errorf("read dynamic metadata of machine %s: %w", machine, err)
	}
	md := map[string]string{}
	for _, p := range pairs {
		if k := strings.TrimPrefix(p.Key, r.dynamicPrefix(machine)); k != "" {
			md[k] = string(p.Value)
		}
	}
	return md, meta.LastIndex, nil
}

// MergeMetadata returns configured with dynamic merged over it: a key set
// in both takes the dynamic value. Neither argument is changed.
func MergeMetadata(configured, dynamic map[string]string) map[string]string {
	if len(dynamic) == 0 {
		return configured
	}
	out := maps.Clone(configured)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, dynamic)
	return out
}
