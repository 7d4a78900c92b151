package registry_test

import (
	"context"
	"io"
	"log/slog"
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
	reads := make(chan *registry.Reading, 1)
	go view.Follow(ctx, []string{"units/", "jobs/", "machines/", "leader"}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)), reads)
	// until waits for a snapshot that holds; readings of earlier changes
	// may come first.
	until := func(what string, holds func(*registry.Snapshot) bool) *registry.Snapshot {
		t.Helper()
		var s *registry.Snapshot
		for limit := time.After(20 * time.Second); ; {
			select {
			case rd := <-reads:
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
