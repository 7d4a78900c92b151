package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestPublisherMovesToMachineKey publishes a machine's states against a
// real Consul: a key per unit until the cluster is stamped with a schema
// that has machine keys, then the machine key, the units' own keys gone
// in the same sync; changes and removals go to the key and to Consul's
// catalog; units beyond the key's capacity keep keys of their own; and
// leaving removes it all. Throughout, a reader sees every unit's state.
func TestPublisherMovesToMachineKey(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	hb := NewHeartbeat(client, id, "127.0.0.5", nil, 10*time.Second, log)
	if err := hb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer hb.Stop(context.Background())
	reg := registry.New(client, "")
	machine := registry.Machine{ID: id, IP: "127.0.0.5"}
	p := newPublisher(Config{Registry: reg, Machine: machine, Heartbeat: hb, Log: log})
	p.node = p.catalog.nodeOps(&machine)

	states := map[string]registry.UnitState{}
	unit := func(name, active string) {
		states[name] = registry.UnitState{Name: name, Machine: id, Hash: "3f2a", State: registry.Launched, Load: "loaded", Active: active, Sub: "running"}
	}
	for i := range 3 {
		unit(fmt.Sprintf("web@%d.service", i), "active")
	}
	// sync publishes states and checks what a reader sees: each state,
	// the machine key's units and the keys of their own.
	sync := func(what string, keyedWant, ownWant int) {
		t.Helper()
		if !p.sync(ctx, maps.Clone(states)) {
			t.Fatalf("%s: a write failed", what)
		}
		s, err := reg.Subtrees(ctx, "states/")
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range states {
			if got := s.States[name][id]; got == nil || *got != want {
				t.Errorf("%s: %s reads as %+v, want %+v", what, name, got, want)
			}
		}
		if len(s.States) != len(states) {
			t.Errorf("%s: %d units read, want %d", what, len(s.States), len(states))
		}
		pairs, _, err := client.KV().List("fleet/states/"+id+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		keyed, own := 0, 0
		for _, kv := range pairs {
			if kv.Key == "fleet/states/"+id+"/" {
				keyed = len(mustMachineKey(t, kv.Value))
			} else {
				own++
			}
		}
		if keyed != keyedWant || own != ownWant {
			t.Errorf("%s: %d units in the machine key and %d in keys of their own, want %d and %d", what, keyed, own, keyedWant, ownWant)
		}
		checks, _, err := client.Health().Node(registry.CatalogNode(id), nil)
		if err != nil {
			t.Fatal(err)
		}
		health := unitHealth(checks)
		unitChecks := 0
		for _, c := range checks {
			if strings.HasPrefix(c.CheckID, registry.UnitCheckID("")) {
				unitChecks++
			}
		}
		if unitChecks != notPassing(states) {
			t.Errorf("%s: %d checks of a unit's own, want one for each unit not passing, %d", what, unitChecks, notPassing(states))
		}
		if len(health) != len(states) {
			t.Errorf("%s: %d units in the catalog's checks, want %d", what, len(health), len(states))
		}
		for name, st := range states {
			if want, _ := Health(st); health[name] != want {
				t.Errorf("%s: %s shows as %q in the catalog, want %s", what, name, health[name], want)
			}
		}
	}

	p.readLayout(ctx)
	sync("before the schema has machine keys", 0, 3)
	if _, err := client.KV().Put(&api.KVPair{Key: "fleet/schema", Value: fmt.Appendf(nil, `{"version":%d}`, registry.SchemaVersion)}, nil); err != nil {
		t.Fatal(err)
	}
	p.checked = time.Time{} // as if layoutCheck passed
	p.readLayout(ctx)
	if !p.byMachine {
		t.Fatal("a stamped schema with machine keys is not followed")
	}
	sync("moved to the machine key", 3, 0)
	unit("web@1.service", "failed")
	sync("a unit failed", 3, 0)
	delete(states, "web@2.service")
	sync("a unit removed", 2, 0)
	for i := range registry.MachineStatesMax + 1 {
		unit(fmt.Sprintf("many@%d.service", i), "active")
	}
	sync("more units than the key takes", registry.MachineStatesMax, 3)
	for name := range states {
		if strings.HasPrefix(name, "many@") {
			delete(states, name)
		}
	}
	sync("every unit of a service removed at once", 2, 0)
	node, _, err := client.Catalog().Node(registry.CatalogNode(id), nil)
	if err != nil || node == nil {
		t.Fatalf("catalog node: %v %v", node, err)
	}
	if svc := node.Services[registry.ServiceInstanceID("many")]; svc != nil {
		t.Errorf("service instance %s left on the node after all its units were removed", svc.ID)
	}
	if node.Services[registry.ServiceInstanceID("web")] == nil {
		t.Error("service instance of web, which still has units, is gone")
	}
	clear(states)
	p.node = []*api.TxnOp{registry.NodeDeleteOp(id)}
	sync("left", 0, 0)
}

// notPassing counts the units of states that are not passing.
func notPassing(states map[string]registry.UnitState) int {
	n := 0
	for _, st := range states {
		if status, _ := Health(st); status != api.HealthPassing {
			n++
		}
	}
	return n
}

func mustMachineKey(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var units map[string]json.RawMessage
	if err := json.Unmarshal(b, &units); err != nil {
		t.Fatalf("machine key %s: %v", b, err)
	}
	return units
}
