package registry

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hashicorp/consul/api"
)

// TestTxnBodyDecodesAsTheAPIClients: what Consul decodes from a compact
// body (into the API's own types, as its HTTP handler does) is what it
// decodes from the API client's body for the same operations, for every
// kind of operation fleet writes; and the compact body is smaller.
func TestTxnBodyDecodesAsTheAPIClients(t *testing.T) {
	m := &Machine{ID: "0123456789abcdef0123456789abcdef", IP: "127.0.0.7"}
	ops := api.TxnOps{
		kv(api.KVSet, "fleet/states/m/", []byte(`{"a":1}`), 0),
		kv(api.KVSet, "fleet/schedule/m/", nil, 0),   // a directory key: no value
		kv(api.KVSet, "fleet/changes/", []byte{}, 0), // an empty value, not none
		kv(api.KVCAS, "fleet/placement/a.service", []byte(`{"machine":"m"}`), 42),
		kv(api.KVDeleteCAS, "fleet/placement/b.service", nil, 7),
		kv(api.KVCheckNotExists, "fleet/placement/c.service", nil, 0),
		kv(api.KVGet, "fleet/jobs/a.service", nil, 0),
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: "fleet/leader", Value: []byte("m"), Session: "s-1", Flags: 3}},
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: "fleet/leader", Session: "s-1"}},
		CheckOp(m.ID, "web", "web@1.service", api.HealthPassing, "active (running)"),
		CheckDeleteOp(m.ID, "web@2.service"),
		NodeOp(m, map[string]string{"region": "eu"}),
		NodeDeleteOp(m.ID),
		ServiceOp(m.ID, api.AgentService{Service: "web", Tags: []string{"fleet"}}),
		ServiceDeleteOp(m.ID, "web"),
	}
	b, ok := compactBody(t, ops)
	if !ok {
		t.Fatal("no compact body for fleet's own operations")
	}
	full, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	var fromCompact, fromAPI api.TxnOps
	if err := json.Unmarshal(b, &fromCompact); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(full, &fromAPI); err != nil {
		t.Fatal(err)
	}
	for i := range fromAPI {
		if !reflect.DeepEqual(fromCompact[i], fromAPI[i]) {
			c, _ := json.Marshal(fromCompact[i])
			a, _ := json.Marshal(fromAPI[i])
			t.Errorf("op %d decodes differently:\ncompact %s\napi     %s", i, c, a)
		}
	}
	if len(fromCompact) != len(fromAPI) {
		t.Fatalf("%d operations decoded, want %d", len(fromCompact), len(fromAPI))
	}
	if len(b) >= len(full) {
		t.Errorf("compact body %d bytes, the API client's %d: want fewer", len(b), len(full))
	}
	// A unit's check, which every state report carries for each unit.
	check := ops[9:10]
	cb, _ := compactBody(t, check)
	cfull, _ := json.Marshal(check)
	if len(cb)*2 > len(cfull) {
		t.Errorf("a unit's check: compact %d bytes, the API client's %d: want less than half", len(cb), len(cfull))
	}
}

// TestTxnBodyLeavesWhatItCannotCarry: an operation that sets a field the
// compact form leaves out (a check with a definition, tags that are empty
// but not none) or holds two kinds makes the whole transaction go as the
// API client writes it.
func TestTxnBodyLeavesWhatItCannotCarry(t *testing.T) {
	withDef := CheckOp("m", "web", "web@1.service", api.HealthPassing, "")
	withDef.Check.Check.Definition.Interval = api.ReadableDuration(5e9)
	emptyTags := CheckOp("m", "web", "web@1.service", api.HealthPassing, "")
	emptyTags.Check.Check.ServiceTags = []string{}
	two := kv(api.KVSet, "fleet/x", []byte("1"), 0)
	two.Check = CheckOp("m", "web", "web@1.service", api.HealthPassing, "").Check
	for name, ops := range map[string]api.TxnOps{
		"definition": {kv(api.KVSet, "fleet/x", []byte("1"), 0), withDef},
		"empty tags": {emptyTags},
		"two kinds":  {two},
		"nil op":     {nil},
		"empty op":   {{}},
	} {
		if _, ok := compactBody(t, ops); ok {
			t.Errorf("%s: compact body made; want the API client's", name)
		}
	}
}

func compactBody(t *testing.T, ops api.TxnOps) ([]byte, bool) {
	t.Helper()
	b, ok := withTxnBody(context.Background(), ops).Value(txnBodyKey{}).([]byte)
	return b, ok
}
