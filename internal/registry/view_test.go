package registry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestView: the leader's View follows what others write (a new unit wakes
// it), keeps what the leader writes without reading it back (its
// placements and schedules appear in the next Snapshot, which Poke asks
// for), and reads it again on Reload.
func TestView(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := registry.New(client, "")
	body, _ := unitfile.Parse("[Service]\nExecStart=/bin/true\n")
	if err := reg.CreateJob(ctx, "a.service", body, registry.Launched); err != nil {
		t.Fatal(err)
	}
	leader := newSession(t, client)
	if ok, err := reg.AcquireLeader(ctx, leader, "m1"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	view, err := reg.View(ctx, "placement/", "schedule/")
	if err != nil {
		t.Fatal(err)
	}
	follower := view.Follow(ctx, []string{"units/", "jobs/", "machines/", "leader"}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// until waits for a snapshot that holds; readings of earlier changes
	// may come first.
	until := func(what string, holds func(*registry.Snapshot) bool) *registry.Snapshot {
		t.Helper()
		var s *registry.Snapshot
		for limit := time.After(20 * time.Second); ; {
			select {
			case <-follower.Changed():
				rd, err := follower.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if s = view.Snapshot(rd); holds(s) {
					return s
				}
			case <-limit:
				t.Fatalf("no snapshot after %s; the last: %+v", what, s)
				return nil
			}
		}
	}
	s := until("the first read", func(s *registry.Snapshot) bool {
		j := s.Jobs["a.service"]
		return j != nil && j.Unit != nil && j.Target == "" && s.LeaderSession == leader
	})
	// The leader places the unit: the View keeps it, and a Poke shows it.
	done, err := view.WriteAll(ctx, leader, []registry.Write{reg.ScheduleWrite(s.Jobs["a.service"], "m1",
		registry.Entry{Hash: body.Hash().String(), Desired: registry.Launched}), reg.KeepWrite("m1", true)})
	if err != nil || !done[0] || !done[1] {
		t.Fatal(done, err)
	}
	view.Poke()
	s = until("a poke", func(s *registry.Snapshot) bool {
		return s.Jobs["a.service"].Target == "m1" && s.Schedule["m1"]["a.service"].Desired == registry.Launched && s.Kept["m1"]
	})
	// What the View kept is what Consul holds: the unit moves on a
	// second write, whose check-and-set needs the index the first left.
	if done, err := view.WriteAll(ctx, leader, []registry.Write{reg.UnscheduleWrite(s.Jobs["a.service"], "")}); err != nil || !done[0] {
		t.Fatalf("unschedule with the kept index: %v %v", done, err)
	}
	// Others' writes wake the View.
	if err := reg.SetDesired(ctx, "a.service", registry.Loaded); err != nil {
		t.Fatal(err)
	}
	until("fleetctl's write", func(s *registry.Snapshot) bool {
		j := s.Jobs["a.service"]
		return j.Desired == registry.Loaded && j.Target == ""
	})
	// Reload reads Consul again, and finds what was kept.
	full, err := reg.Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := view.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	view.Poke()
	until("a reload", func(s *registry.Snapshot) bool {
		return len(s.Schedule["m1"]) == len(full.Schedule["m1"]) && s.Kept["m1"] == full.Kept["m1"]
	})
}

// TestFollowReadsOncePerRead: the Follower reads a subtree's values only
// when asked, once for however many writes it was told of meanwhile, and
// a subtree that did not change is not read again; what it returns holds
// every write.
func TestFollowReadsOncePerRead(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	watched, rec := recordedClient(t, consul)
	reg := registry.New(client, "")
	body, _ := unitfile.Parse("[Service]\nExecStart=/bin/true\n")
	view, err := registry.New(watched, "").View(ctx, "placement/")
	if err != nil {
		t.Fatal(err)
	}
	follower := view.Follow(ctx, []string{"jobs/", "machines/"}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	<-follower.Changed()
	if _, err := follower.Read(ctx); err != nil {
		t.Fatal(err)
	}
	lists := func() (jobs, machines int) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, r := range rec.reqs {
			jobs += strings.Count(r, "GET /v1/kv/fleet/jobs/?recurse")
			machines += strings.Count(r, "GET /v1/kv/fleet/machines/?recurse")
		}
		return jobs, machines
	}
	jobs0, machines0 := lists()
	if jobs0 != 1 || machines0 != 1 {
		t.Fatalf("first read: jobs/ listed %d times, machines/ %d, want once each:\n%s", jobs0, machines0, strings.Join(rec.reqs, "\n"))
	}
	for i := range 20 {
		if err := reg.CreateJob(ctx, fmt.Sprintf("u%d.service", i), body, registry.Launched); err != nil {
			t.Fatal(err)
		}
	}
	// The watch tells of the writes; wait until it has seen the last.
	var s *registry.Snapshot
	for limit := time.After(20 * time.Second); s == nil || len(s.Jobs) < 20; {
		select {
		case <-follower.Changed():
		case <-limit:
			t.Fatalf("the 20 writes were not all told of: %d read", len(s.Jobs))
		}
		if jobs, _ := lists(); jobs != jobs0 {
			t.Fatalf("jobs/ listed before Read was called")
		}
		rd, err := follower.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s = view.Snapshot(rd)
		jobs0++
		if jobs, machines := lists(); jobs != jobs0 || machines != 1 {
			t.Fatalf("after Read: jobs/ listed %d times, machines/ %d; want %d and 1", jobs, machines, jobs0)
		}
	}
	if jobs0 > 1+20 {
		t.Errorf("%d reads of jobs/ for 20 writes", jobs0)
	}
}
