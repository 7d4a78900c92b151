package registry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestMachineStates: a machine key written through Publish reads back as
// each of its units' states, beside another machine's key per unit; it is
// held by the machine's session, goes with it, and is removed when
// written empty. StatesByMachine follows the schema key.
func TestMachineStates(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := registry.New(client, "")
	session, _, err := client.Session().Create(&api.SessionEntry{Behavior: api.SessionBehaviorDelete, TTL: "60s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := func(name, machine, active string) registry.UnitState {
		return registry.UnitState{Name: name, Machine: machine, Hash: "3f2a", State: registry.Launched, Load: "loaded", Active: active, Sub: "running"}
	}
	var keyed []registry.UnitState
	for i := range registry.MachineStatesMax {
		keyed = append(keyed, st(fmt.Sprintf("web@%d.service", i), "m1", "active"))
	}
	keyed[7].Error = `"quoted" and long ` + string(make([]byte, 200))
	own := st("db.service", "m2", "activating")
	// A unit in its machine's key and in a key of its own, as while its
	// agent moves it from one to the other, reads as its own key says.
	moved := st("web@3.service", "m1", "failed")
	errs, err := r.Publish(ctx, []registry.Write{r.MachineStatesWrite("m1", keyed, session), r.StateWrite(&own, session), r.StateWrite(&moved, session)})
	if err != nil || errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("publish: %v %v", err, errs)
	}
	want := append(append([]registry.UnitState{}, keyed...), own)
	want[3] = moved
	s, err := r.Subtrees(ctx, "states/")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.States) != len(want) {
		t.Errorf("%d units read, want %d", len(s.States), len(want))
	}
	for _, want := range want {
		if got := s.States[want.Name][want.Machine]; got == nil || *got != want {
			t.Errorf("%s on %s read as %+v, want %+v", want.Name, want.Machine, got, want)
		}
	}
	// UnitStates lists the same states, sorted, as the snapshot's list.
	list, err := r.UnitStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sorted := s.StateList().States
	if len(list.States) != len(want) || len(sorted) != len(want) {
		t.Fatalf("UnitStates lists %d states, the snapshot %d, want %d", len(list.States), len(sorted), len(want))
	}
	for i, got := range list.States {
		if *got != *sorted[i] || (i > 0 && got.Name <= list.States[i-1].Name) {
			t.Errorf("UnitStates' state %d is %+v after %+v; the snapshot's %+v", i, got, list.States[max(i-1, 0)], sorted[i])
		}
	}
	p, _, err := client.KV().Get("fleet/states/m1/", nil)
	if err != nil || p == nil || p.Session != session {
		t.Fatalf("the machine key %+v is not held by the machine's session: %v", p, err)
	}

	// Written empty, the key is gone.
	if errs, err := r.Publish(ctx, []registry.Write{r.MachineStatesWrite("m1", nil, session)}); err != nil || errs[0] != nil {
		t.Fatalf("publish: %v %v", err, errs)
	}
	if p, _, _ := client.KV().Get("fleet/states/m1/", nil); p != nil {
		t.Errorf("the machine key is still there once written empty: %s", p.Value)
	}

	// The session gone, so are its keys.
	if errs, err := r.Publish(ctx, []registry.Write{r.MachineStatesWrite("m1", keyed[:1], session)}); err != nil || errs[0] != nil {
		t.Fatalf("publish: %v %v", err, errs)
	}
	if _, err := client.Session().Destroy(session, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if keys, _, err := client.KV().Keys("fleet/states/", "", nil); err != nil || len(keys) > 0 {
			return fmt.Errorf("keys %v left once the session is gone (%v)", keys, err)
		}
		return nil
	})

	for _, v := range []struct {
		value string
		want  bool
	}{{"", false}, {`{"version":2}`, false}, {fmt.Sprintf(`{"version":%d}`, registry.SchemaVersion), true}} {
		if v.value != "" {
			if _, err := client.KV().Put(&api.KVPair{Key: "fleet/schema", Value: []byte(v.value)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := r.StatesByMachine(ctx); err != nil || got != v.want {
			t.Errorf("schema key %q: states by machine %v, %v; want %v", v.value, got, err, v.want)
		}
	}
}
