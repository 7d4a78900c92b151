package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"
)

// The change log: every transaction that writes units' jobs or bodies
// also writes, in the same transaction, one key under changes/ that names
// the keys it wrote. The key's ModifyIndex is the transaction's, the
// index the written subtree then has. The leader reads the log and then
// only the keys it names, where it would read the whole subtree, and
// removes what it applied (Follower.Forget). The log is a hint: a write
// without its entry (a client that may not write changes/, an older
// fleetctl) moves the subtree's index past every entry, and the leader
// reads the subtree whole.

// changesDir is the log's subtree under the prefix.
const changesDir = "changes/"

// loggedSubtrees are the subtrees whose writes go with a log entry.
var loggedSubtrees = []string{"jobs/", "units/"}

// change is one log entry: its key, the index of the transaction that
// wrote it, and the keys it names (under the prefix, without it).
type change struct {
	key   string
	index uint64
	keys  []string
}

// names reports whether c names a key under subtree sub.
func (c change) names(sub string) bool {
	return slices.ContainsFunc(c.keys, func(k string) bool { return strings.HasPrefix(k, sub) })
}

// logged returns ops with a log entry appended when they write a key
// under a logged subtree, and the entry's position in them (-1: none).
func (r *Registry) logged(ops api.TxnOps) (api.TxnOps, int) {
	if r.unlogged.Load() {
		return ops, -1
	}
	var keys []string
	for _, op := range ops {
		if op.KV == nil || !writes(op.KV.Verb) {
			continue
		}
		rel, ok := strings.CutPrefix(op.KV.Key, r.prefix)
		if ok && slices.ContainsFunc(loggedSubtrees, func(s string) bool { return strings.HasPrefix(rel, s) }) {
			keys = append(keys, rel)
		}
	}
	if len(keys) == 0 {
		return ops, -1
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	entry := kv(api.KVSet, r.prefix+changesDir+hex.EncodeToString(id), []byte(strings.Join(keys, "\n")), 0)
	return append(slices.Clip(ops), entry), len(ops)
}

// writes reports whether a KV operation of verb changes its key.
func writes(verb api.KVOp) bool {
	switch verb {
	case api.KVSet, api.KVCAS, api.KVDelete, api.KVDeleteCAS, api.KVDeleteTree, api.KVLock, api.KVUnlock:
		return true
	}
	return false
}

// changes reads the log.
func (r *Registry) changes(ctx context.Context) ([]change, error) {
	pairs, _, err := r.list(r.prefix+changesDir, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	out := make([]change, 0, len(pairs))
	for _, p := range pairs {
		if p.Key == r.prefix+changesDir {
			continue // the log's directory key (KeepChangesDir)
		}
		out = append(out, change{key: p.Key, index: p.ModifyIndex, keys: strings.Split(string(p.Value), "\n")})
	}
	return out, nil
}

// KeepChangesDir writes the change log's directory key (changes/) unless
// it exists (keepDir), so that the log has an index of its own even when
// the leader removed every entry: Quiet follows that index.
func (r *Registry) KeepChangesDir(ctx context.Context) error {
	return r.keepDir(ctx, r.prefix+changesDir, "the change log's")
}

// forgetChanges removes the log entries cs, each only if it is still the
// one read, in writes fenced on session holding the leader lock
// (WriteAll): a deposed leader must not remove an entry its successor has
// not applied.
func (r *Registry) forgetChanges(ctx context.Context, session string, cs []change) error {
	ws := make([]Write, len(cs))
	for i, c := range cs {
		ws[i] = Write{Name: c.key, ops: api.TxnOps{kv(api.KVDeleteCAS, c.key, nil, c.index)}}
	}
	done, err := r.WriteAll(ctx, session, ws)
	if err != nil {
		return fmt.Errorf("remove applied entries of fleet's change log: %w", err)
	}
	for i, ok := range done {
		if !ok { // written again meanwhile: it is read again
			return fmt.Errorf("remove applied entries of fleet's change log: %s changed since it was read", cs[i].key)
		}
	}
	return nil
}
