package policies

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/leader"
)

func snapshot(t *testing.T) *registry.Snapshot {
	t.Helper()
	s := &registry.Snapshot{Jobs: map[string]*registry.Job{}, Machines: map[string]*registry.Machine{}}
	for _, m := range threeMachines() {
		s.Machines[m.ID] = &registry.Machine{ID: m.ID, IP: m.IP, Metadata: m.Metadata}
	}
	for name, body := range map[string]string{
		"a.service": "[Service]\nExecStart=/bin/true\n",
		"b.service": "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=disk=hdd\n",
		"c.service": "[Service]\nExecStart=/bin/true\n",
	} {
		f, err := unitfile.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		s.Jobs[name] = &registry.Job{Name: name, Desired: registry.Launched, Unit: f, Hash: f.Hash()}
	}
	return s
}

// TestPlacerInReconcile runs the leader's reconcile with the default policy
// in WebAssembly, then with a policy that never returns: that one leaves
// every unit unplaced with the reason, in bounded time, and nothing panics.
func TestPlacerInReconcile(t *testing.T) {
	h := newHost(t, Config{CallTimeout: 100 * time.Millisecond})
	good := &Placer{Builtin: Builtin(h)}
	plan := leader.Reconcile(context.Background(), snapshot(t), good)
	got := map[string]string{}
	for _, a := range plan.Actions {
		got[a.Job.Name] = a.Machine
	}
	if got["a.service"] != "m1" || got["b.service"] != "m3" || got["c.service"] != "m2" || len(plan.Unplaced) != 0 {
		t.Fatalf("plan with the default policy: %v, unplaced %v", got, plan.Unplaced)
	}

	loop := wat(t, "loop")
	bad := &Placer{Builtin: func(ctx context.Context) (*Policy, error) { return h.Load(ctx, "loop", loop, false) }}
	// Bounded: the calls' 100 ms limits stop the loop. The margin, 30 s,
	// is a hundred times what three units' calls may take, so a busy host
	// does not fail it and a policy that is never stopped still does.
	start := time.Now()
	plan = leader.Reconcile(context.Background(), snapshot(t), bad)
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("reconcile with an endless policy took %s: the time limit did not stop it", took)
	}
	if len(plan.Actions) != 0 || len(plan.Unplaced) != 3 || plan.Unplaced[0].Cause != leader.CausePolicyError ||
		!strings.Contains(plan.Unplaced[0].Reason, "time limit") {
		t.Fatalf("plan with an endless policy: %+v", plan)
	}
}
