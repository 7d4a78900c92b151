package registry_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestTxnOps: a registry fills its transactions to Consul 1.14's bound of
// 128 operations, and one that takes its agent's bound for more than it is
// (as a fleet that fills to 128 would an agent from before 1.14, which
// takes 64) learns the bound from the agent's refusal and cuts its writes
// and reads to it, losing none.
func TestTxnOps(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	ctx := context.Background()
	client, rec := recordedClient(t, consul)
	tpl := mustParse(t, "[Service]\nExecStart=/bin/sleep 1000\n")
	jobs := func(prefix string, n int) ([]registry.NewJob, []string) {
		var js []registry.NewJob
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("%s@%d.service", prefix, i))
			js = append(js, registry.NewJob{Name: names[i], Unit: tpl, Desired: registry.Launched})
		}
		return js, names
	}

	reg := registry.New(client, "")
	few, _ := jobs("few", 20)
	if err := reg.CreateJobs(ctx, few); err != nil {
		t.Fatal(err)
	}
	if got := rec.txns(); !slices.Equal(got, []int{20 + 1 + 1}) { // 20 jobs, their body, the log entry
		t.Fatalf("20 units created in transactions of %v operations, want one of 22", got)
	}
	rec.reset()
	many, _ := jobs("app", 300)
	if err := reg.CreateJobs(ctx, many); err != nil {
		t.Fatal(err)
	}
	if got := rec.txns(); len(got) != 3 || slices.Max(got) != 128 {
		t.Errorf("300 units created in transactions of %v operations, want 3 of up to 128", got)
	}

	// A registry that takes its agent to take 256 operations.
	rec.reset()
	wrong := registry.New(client, "")
	registry.SetTxnOps(wrong, 256)
	more, names := jobs("more", 300)
	if err := wrong.CreateJobs(ctx, more); err != nil {
		t.Fatalf("creating units with transactions larger than the agent takes: %v", err)
	}
	if got := rec.txns(); len(slices.DeleteFunc(slices.Clone(got), func(n int) bool { return n <= 128 })) != 1 {
		t.Errorf("300 units created in transactions of %v operations, want one refused above 128 and the rest of up to 128", got)
	}
	s, err := registry.New(client, "").JobsNamed(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Jobs) != len(names) {
		t.Fatalf("%d of the %d units created after the refusal exist", len(s.Jobs), len(names))
	}

	// Reads and the leader's writes learn it the same way.
	wrong = registry.New(client, "")
	registry.SetTxnOps(wrong, 256)
	rec.reset()
	if s, err = wrong.JobsNamed(ctx, names); err != nil {
		t.Fatalf("reading units in transactions larger than the agent takes: %v", err)
	}
	if len(s.Jobs) != len(names) {
		t.Fatalf("%d of %d units read after the refusal", len(s.Jobs), len(names))
	}
	if got := rec.txns(); len(slices.DeleteFunc(slices.Clone(got), func(n int) bool { return n <= 128 })) != 1 {
		t.Errorf("300 units read in transactions of %v operations, want one refused above 128 and the rest of up to 128", got)
	}
	wrong = registry.New(client, "")
	registry.SetTxnOps(wrong, 256)
	session := newSession(t, client)
	if ok, err := wrong.AcquireLeader(ctx, session, "m0"); !ok || err != nil {
		t.Fatalf("leader lock: %v %v", ok, err)
	}
	var ws []registry.Write
	for i, n := range names {
		j := s.Jobs[n]
		ws = append(ws, wrong.ScheduleWrite(j, fmt.Sprintf("m%d", i%3), registry.Entry{Hash: j.Hash.String(), Desired: j.Desired}))
	}
	done, err := wrong.WriteAll(ctx, session, ws)
	if err != nil {
		t.Fatalf("placing units in transactions larger than the agent takes: %v", err)
	}
	if n := len(slices.DeleteFunc(done, func(ok bool) bool { return ok })); n != 0 {
		t.Errorf("%d of %d placements not written after the refusal", n, len(done))
	}
}
