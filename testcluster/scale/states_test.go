package scale

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
)

// fakeConsul answers state writes as Consul does: a KV PUT with true, or
// with false when its key is in refuse; a transaction with 200, or 409 when
// one of its keys is in refuse. It keeps each request's body as received.
type fakeConsul struct {
	mu     sync.Mutex
	refuse map[string]bool
	bodies [][]byte
	delete int // DELETE requests, which have no body
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodDelete {
		f.delete++
	} else {
		f.bodies = append(f.bodies, body)
	}
	if r.URL.Path == "/v1/txn" {
		var ops api.TxnOps
		if err := json.Unmarshal(body, &ops); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, op := range ops {
			if op.KV != nil && f.refuse[op.KV.Key] {
				w.WriteHeader(http.StatusConflict)
				io.WriteString(w, `{"Results":null,"Errors":[{"OpIndex":0,"What":"lock failed"}]}`)
				return
			}
		}
		io.WriteString(w, `{"Results":[],"Errors":null}`)
		return
	}
	io.WriteString(w, map[bool]string{true: "false", false: "true"}[f.refuse[strings.TrimPrefix(r.URL.Path, "/v1/kv/")]])
}

func state(unit, machine, active string) []byte {
	b, _ := json.Marshal(registry.UnitState{Name: unit, Machine: machine, State: registry.Launched, Load: "loaded", Active: active})
	return b
}

// TestStateLog writes states as the agents do, through the simulated
// machines' transport against a fake Consul, in both forms (a KV acquire,
// a transaction) and checks which units the log counts as acknowledged,
// and that Consul receives every body whole.
func TestStateLog(t *testing.T) {
	fake := &fakeConsul{refuse: map[string]bool{"fleet/states/m2/held.service": true, "fleet/states/m3/conflict.service": true}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	log := NewStateLog(registry.DefaultPrefix)
	client, _, err := newClient(srv.URL, 1, &RequestCounter{}, log)
	if err != nil {
		t.Fatal(err)
	}
	units := []string{"kv.service", "txn.service", "held.service", "conflict.service", "moved.service", "gone.service", "set.service", "raw.service"}
	wait := log.Await(units)

	acquire := func(machine, unit string, value []byte) {
		t.Helper()
		if _, _, err := client.KV().Acquire(&api.KVPair{Key: "fleet/states/" + machine + "/" + unit, Value: value, Session: "s-" + machine}, nil); err != nil {
			t.Fatal(err)
		}
	}
	txn := func(ops ...*api.TxnOp) {
		t.Helper()
		if _, _, _, err := client.Txn().Txn(ops, nil); err != nil {
			t.Fatal(err)
		}
	}
	kv := func(verb api.KVOp, machine, unit string, value []byte) *api.TxnOp {
		return &api.TxnOp{KV: &api.KVTxnOp{Verb: verb, Key: "fleet/states/" + machine + "/" + unit, Value: value, Session: "s-" + machine}}
	}
	acquire("m1", "kv.service", state("kv.service", "m1", "activating"))
	acquire("m1", "kv.service", state("kv.service", "m1", "active"))
	acquire("m2", "held.service", state("held.service", "m2", "active")) // Consul answers false
	// Several units in one transaction, with a key that is not a state.
	txn(kv(api.KVLock, "m1", "txn.service", state("txn.service", "m1", "active")),
		kv(api.KVSet, "m1", "set.service", state("set.service", "m1", "active")),
		&api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "fleet/machines/m1", Value: state("x.service", "m1", "active")}})
	// A transaction Consul refuses applies none of its states.
	txn(kv(api.KVLock, "m3", "conflict.service", state("conflict.service", "m3", "active")),
		kv(api.KVLock, "m3", "moved.service", state("moved.service", "m3", "active")))
	// A unit that another machine now runs, the old machine's copy deleted.
	txn(kv(api.KVLock, "m1", "moved.service", state("moved.service", "m1", "active")))
	txn(kv(api.KVLock, "m4", "moved.service", state("moved.service", "m4", "active")))
	txn(kv(api.KVDelete, "m1", "moved.service", nil))
	// A unit acknowledged, then its state deleted.
	acquire("m1", "gone.service", state("gone.service", "m1", "active"))
	if _, err := client.KV().Delete("fleet/states/m1/gone.service", nil); err != nil {
		t.Fatal(err)
	}
	// A body that cannot be read twice, which the transport must buffer.
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1/kv/fleet/states/m5/raw.service?acquire=s",
		io.MultiReader(bytes.NewReader(state("raw.service", "m5", "active"))))
	if req.GetBody != nil {
		t.Fatal("the request's body can be had again; the test needs one that cannot")
	}
	resp, err := (&countingTransport{next: http.DefaultTransport, counter: &RequestCounter{}, states: log}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "true" {
		t.Fatalf("the caller read %q from the answer, want true", b)
	}
	resp.Body.Close()

	if got := wait.Missing(); got != 3 {
		t.Errorf("%d units missing, want 3 (held, conflict, gone)", got)
	}
	ack := log.Await([]string{"kv.service", "txn.service", "set.service", "moved.service", "raw.service"})
	select {
	case <-ack.Done():
	default:
		t.Errorf("%d of the acknowledged units not counted", ack.Missing())
	}
	if ack.At().IsZero() {
		t.Error("no time for the acknowledgement")
	}
	for _, u := range []string{"held.service", "conflict.service", "gone.service"} {
		if w := log.Await([]string{u}); w.Missing() != 1 {
			t.Errorf("%s counted as acknowledged", u)
		}
	}
	if c := log.Counts(); c["PUT kv"] != 4 || c["PUT txn"] != 4 || c["DELETE kv"] != 1 || c["unreadable"] != 0 {
		t.Errorf("counts %v, want 4 PUT kv (the refused one left out), 4 PUT txn, 1 DELETE kv", c)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if last := fake.bodies[len(fake.bodies)-1]; !bytes.Equal(last, state("raw.service", "m5", "active")) {
		t.Errorf("Consul received %q for the buffered body", last)
	}
	for i, b := range fake.bodies {
		if len(b) == 0 {
			t.Errorf("write %d reached Consul without its body", i+1)
		}
	}
	if len(fake.bodies) != 10 || fake.delete != 1 {
		t.Errorf("Consul received %d writes with a body and %d DELETEs, want 10 and 1", len(fake.bodies), fake.delete)
	}
}

// TestStateLogAwaitLater: writes seen before Await count, and a wait ends
// with the write that acknowledges its last unit.
func TestStateLogAwaitLater(t *testing.T) {
	log := NewStateLog("fleet")
	log.apply(&stateWrite{form: "PUT kv", set: map[string][]byte{"m1/a.service": state("a.service", "m1", "active")}}, time.Now())
	w := log.Await([]string{"a.service", "b.service"})
	if w.Missing() != 1 {
		t.Fatalf("%d missing, want 1", w.Missing())
	}
	at := time.Now()
	log.observe("m2", map[string][]byte{"b.service": state("b.service", "m2", "active")}, at)
	select {
	case <-w.Done():
	default:
		t.Fatal("not done once b.service was read acknowledged")
	}
	if !w.At().Equal(at) {
		t.Errorf("done at %v, want %v", w.At(), at)
	}
	// The read no longer lists b.service: m2's copy is gone.
	log.observe("m2", map[string][]byte{}, time.Now())
	if n := log.Await([]string{"b.service"}).Missing(); n != 1 {
		t.Errorf("b.service, gone from m2, still counted")
	}
}

// TestStateLogMachineKey: the units of a machine key are acknowledged as
// it says, a unit that moves from a key of its own into the machine key in
// one transaction stays acknowledged, and a unit the machine key no longer
// holds, or the key deleted, is gone.
func TestStateLogMachineKey(t *testing.T) {
	log := NewStateLog("fleet")
	machineKey := func(units ...string) []byte {
		v := map[string]json.RawMessage{}
		for _, u := range units {
			name, active, _ := strings.Cut(u, "=")
			v[name] = state(name, "m1", active)
		}
		b, _ := json.Marshal(v)
		return b
	}
	missing := func(units ...string) int { return log.Await(units).Missing() }
	log.apply(&stateWrite{form: "PUT txn", set: map[string][]byte{"m1/c.service": state("c.service", "m1", "active")}}, time.Now())
	log.apply(&stateWrite{form: "PUT txn", set: map[string][]byte{"m1/": machineKey("a.service=active", "b.service=activating")}}, time.Now())
	if missing("a.service") != 0 || missing("b.service") != 1 {
		t.Errorf("a.service active and b.service activating in the machine key: %d and %d missing, want 0 and 1", missing("a.service"), missing("b.service"))
	}
	log.apply(&stateWrite{form: "PUT txn", set: map[string][]byte{"m1/": machineKey("a.service=active", "b.service=active", "c.service=active")},
		deleted: []string{"m1/c.service"}}, time.Now())
	if n := missing("a.service", "b.service", "c.service"); n != 0 {
		t.Errorf("%d units missing once all three are active in the machine key", n)
	}
	log.apply(&stateWrite{form: "PUT txn", set: map[string][]byte{"m1/": machineKey("b.service=active", "c.service=active")}}, time.Now())
	if missing("a.service") != 1 || missing("b.service", "c.service") != 0 {
		t.Error("a.service, no longer in the machine key, still counted, or the others not")
	}
	log.apply(&stateWrite{form: "PUT txn", deleted: []string{"m1/"}}, time.Now())
	if n := missing("b.service", "c.service"); n != 2 {
		t.Errorf("%d of the machine key's 2 units missing once it is deleted, want 2", n)
	}
	if c := log.Counts(); c["states"] != 8 || c["unreadable"] != 0 {
		t.Errorf("counts %v, want 8 states (1 + 2 + 3 + 2, each state a write carried) and none unreadable", c)
	}
}
