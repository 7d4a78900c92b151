package registry_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestDynamicMetadata sets and removes dynamic metadata against a real
// Consul and checks every read merges it over the published metadata, and
// that republishing the machine keeps it.
func TestDynamicMetadata(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := registry.New(client, "md-fleet")
	session := newSession(t, client)
	m := &registry.Machine{ID: "m1", IP: "127.0.0.1", Metadata: map[string]string{"region": "east", "disk": "ssd"}}
	if err := reg.PublishMachine(ctx, m, session); err != nil {
		t.Fatal(err)
	}
	reads := map[string]func() *registry.Machine{
		"Machines": func() *registry.Machine {
			ms, err := reg.Machines(ctx)
			if err != nil || len(ms) != 1 {
				t.Fatalf("Machines = %v, %v", ms, err)
			}
			return ms[0]
		},
		"Snapshot": func() *registry.Machine {
			s, err := reg.Snapshot(ctx, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			return s.Machines["m1"]
		},
	}
	check := func(step string, want, dynamic map[string]string) {
		t.Helper()
		for name, read := range reads {
			got := read()
			if !maps.Equal(got.Metadata, want) || !maps.Equal(got.Dynamic, dynamic) {
				t.Errorf("%s: %s: metadata %v (dynamic %v), want %v (dynamic %v)", step, name, got.Metadata, got.Dynamic, want, dynamic)
			}
		}
	}

	if err := reg.SetMachineMetadata(ctx, "m1", map[string]string{"region": "west", "gpu": "yes"}); err != nil {
		t.Fatal(err)
	}
	check("set", map[string]string{"region": "west", "disk": "ssd", "gpu": "yes"}, map[string]string{"region": "west", "gpu": "yes"})

	// The agent publishes its configured metadata again (a SIGHUP, a new
	// session): the dynamic pairs stay on top.
	m.Metadata = map[string]string{"region": "east", "disk": "hdd"}
	if err := reg.PublishMachine(ctx, m, session); err != nil {
		t.Fatal(err)
	}
	check("republished", map[string]string{"region": "west", "disk": "hdd", "gpu": "yes"}, map[string]string{"region": "west", "gpu": "yes"})

	md, index, err := reg.DynamicMetadata(ctx, "m1", 0, 0)
	if err != nil || !maps.Equal(md, map[string]string{"region": "west", "gpu": "yes"}) {
		t.Fatalf("DynamicMetadata = %v, %v", md, err)
	}
	changed := make(chan map[string]string, 1)
	go func() {
		md, _, _ := reg.DynamicMetadata(ctx, "m1", index, 10*time.Second)
		changed <- md
	}()
	// Whether the query is already waiting or starts after the delete, it
	// returns the new pairs: its index is older than the change.
	if err := reg.DeleteMachineMetadata(ctx, "m1", []string{"region", "nothing-here"}); err != nil {
		t.Fatal(err)
	}
	select {
	case md := <-changed:
		if !maps.Equal(md, map[string]string{"gpu": "yes"}) {
			t.Errorf("blocking DynamicMetadata after rm = %v", md)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking DynamicMetadata did not return after a change")
	}
	check("rm", map[string]string{"region": "east", "disk": "hdd", "gpu": "yes"}, map[string]string{"gpu": "yes"})

	for _, bad := range []map[string]string{{"a/b": "x"}, {"": "x"}, {"k": ""}, {"k": "a,b"}} {
		if err := reg.SetMachineMetadata(ctx, "m1", bad); err == nil {
			t.Errorf("SetMachineMetadata(%v) succeeded", bad)
		}
	}
	if err := reg.DeleteMachineMetadata(ctx, "m1", []string{"a b"}); err == nil {
		t.Error("DeleteMachineMetadata of an invalid key succeeded")
	}
	check("after bad writes", map[string]string{"region": "east", "disk": "hdd", "gpu": "yes"}, map[string]string{"gpu": "yes"})
}
