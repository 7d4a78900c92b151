package policies

import (
	"context"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/leader"
	defaultpolicy "github.com/wasmfleet/fleet/plugins/default"
)

// TestDefaultPolicyTakesInALargeCluster: a new instance of the default
// policy (a new leader's, or one made after an instance failed) takes in
// 100,000 units placed on 5,000 machines at once and places the next
// unit. Held to the memory cap of uploaded policies (64 MiB), it runs out
// of memory taking the cluster in, and so does every instance after it:
// the leader can place nothing more.
func TestDefaultPolicyTakesInALargeCluster(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{}) // fleetd's defaults
	s := startedAtOnce(t, 5000, 100000)
	// The unit scalebench starts, whose options are longer than
	// startedAtOnce's.
	next := placedAllBut(t, s, "[Unit]\nDescription=fleet scale benchmark %i\n\n[Service]\nExecStart=/bin/sleep infinity\n", 1)[0]
	p, err := h.Load(ctx, registry.BuiltinPolicy, defaultpolicy.Wasm, true)
	if err != nil {
		t.Fatal(err)
	}
	placer := &Placer{Builtin: func(context.Context) (*Policy, error) { return p, nil }}
	plan := leader.Reconcile(ctx, s, placer)
	if len(plan.Unplaced) > 0 {
		t.Fatalf("%s not placed: %s", plan.Unplaced[0].Job.Name, plan.Unplaced[0].Reason)
	}
	if len(plan.Actions) != 1 || plan.Actions[0].Job != next {
		t.Fatalf("placed %d units, want %s alone", len(plan.Actions), next.Name)
	}
}

// TestOutgrownPolicyFailsFast: when a new instance of a policy runs out of
// memory taking in the cluster, the pass's other units fail at once with
// that error, instead of each making a new instance that takes the whole
// cluster in and fails the same way; the next pass tries once more.
func TestOutgrownPolicyFailsFast(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{MemoryLimitMiB: 16})
	s := startedAtOnce(t, 1000, 40000)
	placedAllBut(t, s, "[Service]\nExecStart=/bin/true\n", 20) // no rule a machine may fail
	p, err := h.Load(ctx, "small", defaultpolicy.Wasm, false)  // an uploaded policy: 16 MiB
	if err != nil {
		t.Fatal(err)
	}
	placer := &Placer{Builtin: func(context.Context) (*Policy, error) { return p, nil }}
	for pass := range 2 {
		plan := leader.Reconcile(ctx, s, placer)
		if len(plan.Unplaced) != 20 {
			t.Fatalf("pass %d: %d units unplaced, want 20", pass, len(plan.Unplaced))
		}
		var oom, fast int
		for _, u := range plan.Unplaced {
			switch {
			case strings.Contains(u.Reason, "not tried again until the next pass"):
				fast++
			case strings.Contains(u.Reason, "ran out of memory"):
				oom++
			}
		}
		if oom != 1 || fast != 19 {
			t.Fatalf("pass %d: %d units failed making an instance that ran out of memory, %d at once; want 1 and 19; the first: %s", pass, oom, fast, plan.Unplaced[0].Reason)
		}
	}
}

// placedAllBut gives every unit of s the body source and places all but
// left of them on s's machines in turn; it returns those left.
func placedAllBut(t *testing.T, s *registry.Snapshot, source string, left int) []*registry.Job {
	t.Helper()
	body, err := unitfile.Parse(source)
	if err != nil {
		t.Fatal(err)
	}
	ids := s.MachineIDs()
	var unplaced []*registry.Job
	k := 0
	for _, j := range s.Jobs {
		j.Unit, j.Hash = body, body.Hash()
		if len(unplaced) < left {
			unplaced = append(unplaced, j)
			continue
		}
		j.Target = ids[k%len(ids)]
		k++
	}
	return unplaced
}
