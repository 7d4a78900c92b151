package registry_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestTxnOps: a registry learns once, from the agent it talks to, how many
// operations a transaction may carry, and fills its transactions to that:
// 128 from Consul 1.14 on. A batch that fits in 64 asks nothing.
func TestTxnOps(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	ctx := context.Background()
	client, rec := recordedClient(t, consul)
	reg := registry.New(client, "")
	tpl := mustParse(t, "[Service]\nExecStart=/bin/sleep 1000\n")
	var jobs []registry.NewJob
	for i := range 20 { // 40 operations: no need to ask
		jobs = append(jobs, registry.NewJob{Name: fmt.Sprintf("few@%d.service", i), Unit: tpl, Desired: registry.Launched})
	}
	if err := reg.CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	if got := rec.txns(); !slices.Equal(got, []int{20 + 1 + 1}) { // 20 jobs, their body, the log entry
		t.Fatalf("20 units created in transactions of %v operations, want one of 22", got)
	}

	rec.reset()
	jobs = jobs[:0]
	for i := range 300 {
		jobs = append(jobs, registry.NewJob{Name: fmt.Sprintf("app@%d.service", i), Unit: tpl, Desired: registry.Launched})
	}
	if err := reg.CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	got := rec.txns()
	if len(got) == 0 || got[0] != 128 {
		t.Fatalf("transactions of %v operations: the first should be the read of 128 that asks how many Consul takes", got)
	}
	writes := got[1:]
	if slices.Max(writes) != 128 || len(writes) != 3 {
		t.Errorf("300 units created in transactions of %v operations, want 3 of up to 128", writes)
	}

	rec.reset()
	var names []string
	for i := range 250 {
		names = append(names, fmt.Sprintf("app@%d.service", i))
	}
	s, err := reg.JobsNamed(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Jobs) != 250 {
		t.Fatalf("%d units read, want 250", len(s.Jobs))
	}
	// Learned once: two reads of jobs and what goes with them (up to 256
	// operations), one of their body, and no second question.
	if got := rec.txns(); len(got) != 3 || slices.Max(got) != 128 {
		t.Errorf("250 units read in transactions of %v operations, want 3 of up to 128", got)
	}
}
