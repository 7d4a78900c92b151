package registry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/testcluster"
)

// BenchmarkTxnOps writes 1,000 units as fleetctl does, reads them back by
// name, and places them as the leader does (10 machines), in transactions
// of Consul's bound before 1.14 (64 operations) and of its bound since
// (128), against one real Consul: time and the Consul server's CPU per
// 1,000 units. The keys are removed between iterations, untimed.
//
//	go test -run '^$' -bench TxnOps -count 6 ./internal/registry/
func BenchmarkTxnOps(b *testing.B) {
	consul := testcluster.StartConsulT(b)
	client, err := registry.NewClient(consul.URL(), "")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tpl := mustParse(b, "[Service]\nExecStart=/bin/sleep infinity\n")
	session := newSession(b, client)
	if ok, err := registry.New(client, "").AcquireLeader(ctx, session, "m0"); !ok || err != nil {
		b.Fatalf("leader lock: %v %v", ok, err)
	}
	for _, ops := range []int{64, 128} {
		b.Run(fmt.Sprintf("ops=%d", ops), func(b *testing.B) {
			reg := registry.New(client, "")
			registry.SetTxnOps(reg, ops)
			var used time.Duration
			for b.Loop() {
				c0 := testcluster.CPUTimeT(b, consul.PID())
				placeThousand(b, ctx, reg, session, tpl)
				used += testcluster.CPUTimeT(b, consul.PID()) - c0
				b.StopTimer()
				for _, sub := range []string{"jobs/", "placement/", "schedule/", "changes/"} {
					if _, err := client.KV().DeleteTree("fleet/"+sub, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(used.Microseconds())/1000/float64(b.N), "consul-cpu-ms/op")
		})
	}
}

// placeThousand creates 1,000 units, reads them by name and places them on
// 10 machines, fenced on session's leader lock.
func placeThousand(b *testing.B, ctx context.Context, reg *registry.Registry, session string, tpl *unitfile.File) {
	jobs := make([]registry.NewJob, 1000)
	names := make([]string, len(jobs))
	for i := range jobs {
		names[i] = fmt.Sprintf("bench@%d.service", i)
		jobs[i] = registry.NewJob{Name: names[i], Unit: tpl, Desired: registry.Launched}
	}
	if err := reg.CreateJobs(ctx, jobs); err != nil {
		b.Fatal(err)
	}
	s, err := reg.JobsNamed(ctx, names)
	if err != nil {
		b.Fatal(err)
	}
	ws := make([]registry.Write, len(names))
	for i, n := range names {
		j := s.Jobs[n]
		if j == nil {
			b.Fatalf("%s not read back", n)
		}
		ws[i] = reg.ScheduleWrite(j, fmt.Sprintf("m%d", i%10), registry.Entry{Hash: j.Hash.String(), Desired: j.Desired})
	}
	done, err := reg.WriteAll(ctx, session, ws)
	if err != nil {
		b.Fatal(err)
	}
	for i, ok := range done {
		if !ok {
			b.Fatalf("placement of %s not written", names[i])
		}
	}
}
