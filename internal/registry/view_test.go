package registry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

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
	until := func(what string, holds func(*registry.Snapshot) bool) *registry.Snapshot {
		t.Helper()
		return readUntil(t, ctx, view, follower, what, holds)
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

// readUntil reads f until a snapshot holds, or fails after 20 s;
// readings of earlier changes may come first.
func readUntil(t *testing.T, ctx context.Context, view *registry.View, f *registry.Follower, what string, holds func(*registry.Snapshot) bool) *registry.Snapshot {
	t.Helper()
	var s *registry.Snapshot
	for limit := time.After(20 * time.Second); ; {
		select {
		case <-f.Changed():
			rd, err := f.Read(ctx)
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

// TestFollowReadsOncePerRead: the Follower reads a subtree's values only
// when asked, once for however many writes it was told of meanwhile, and
// a subtree that did not change is not read again; what it returns holds
// every write. Its watch asks Consul again only once a Read took what it
// told of, not at each write. (Subtrees whose writes are logged, jobs/
// and units/, are read from the log after the first read:
// TestFollowReadsTheLog.)
func TestFollowReadsOncePerRead(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	watched, rec := recordedClient(t, consul)
	view, err := registry.New(watched, "").View(ctx, "placement/")
	if err != nil {
		t.Fatal(err)
	}
	follower := view.Follow(ctx, []string{"policies/", "machines/"}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	<-follower.Changed()
	if _, err := follower.Read(ctx); err != nil {
		t.Fatal(err)
	}
	lists := func() (policies, machines int) {
		return rec.count("GET /v1/kv/fleet/policies/?recurse"), rec.count("GET /v1/kv/fleet/machines/?recurse")
	}
	watches := func() int { return rec.count("GET /v1/kv/fleet/policies?") } // the policies/ watch's blocking queries
	policies0, machines0 := lists()
	if policies0 != 1 || machines0 != 1 {
		t.Fatalf("first read: policies/ listed %d times, machines/ %d, want once each:\n%s", policies0, machines0, strings.Join(rec.reqs, "\n"))
	}
	for i := range 20 {
		if _, err := client.KV().Put(&api.KVPair{Key: fmt.Sprintf("fleet/policies/p%d", i), Value: []byte("{}")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The watch tells of the writes; wait until it has seen the last.
	var s *registry.Snapshot
	for limit := time.After(20 * time.Second); s == nil || len(s.Policies) < 20; {
		select {
		case <-follower.Changed():
		case <-limit:
			t.Fatalf("the 20 writes were not all told of: %d read", len(s.Policies))
		}
		if policies, _ := lists(); policies != policies0 {
			t.Fatalf("policies/ listed before Read was called")
		}
		rd, err := follower.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s = view.Snapshot(rd)
		policies0++
		if policies, machines := lists(); policies != policies0 || machines != 1 {
			t.Fatalf("after Read: policies/ listed %d times, machines/ %d; want %d and 1", policies, machines, policies0)
		}
	}
	if policies0 > 1+20 {
		t.Errorf("%d reads of policies/ for 20 writes", policies0)
	}
	// The first Read lets the watch ask for the index (with 0, answered at
	// once), then wait on it until the first write; each Read after lets it
	// ask again: at once with the index it answered last, which returns at
	// once if anything changed since, then blocking. A watch asking again
	// at each write would ask about 20 times.
	if n, reads := watches(), policies0-1; n > 3+2*reads {
		t.Errorf("the policies/ watch queried Consul %d times for 20 writes read in %d Reads:\n%s", n, reads, rec)
	}
}
