package registry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/testcluster"
)

func mustParse(t testing.TB, body string) *unitfile.File {
	t.Helper()
	f, err := unitfile.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newSession(t testing.TB, c *api.Client) string {
	t.Helper()
	id, _, err := c.Session().Create(&api.SessionEntry{Behavior: api.SessionBehaviorDelete, LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// lead takes the leader lock for reg with a new session of c's, and
// returns the session.
func lead(t testing.TB, ctx context.Context, c *api.Client, reg *registry.Registry) string {
	t.Helper()
	session := newSession(t, c)
	if ok, err := reg.AcquireLeader(ctx, session, "m1"); !ok || err != nil {
		t.Fatalf("leader lock: %v %v", ok, err)
	}
	return session
}

func dump(t *testing.T, c *api.Client) map[string]string {
	t.Helper()
	pairs, _, err := c.KV().List("", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range pairs {
		m[p.Key] = string(p.Value) + "|" + p.Session
	}
	return m
}

// TestRegistry runs the registry's reads and writes against a real Consul.
func TestRegistry(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := registry.New(client, "test-fleet")
	web := mustParse(t, "[Service]\nExecStart=/bin/sleep 100\n")

	t.Run("create, then create again fails and changes nothing", func(t *testing.T) {
		if err := reg.CreateJob(ctx, "web.service", web, registry.Loaded); err != nil {
			t.Fatal(err)
		}
		before := dump(t, client)
		other := mustParse(t, "[Service]\nExecStart=/bin/sleep 5\n")
		if err := reg.CreateJob(ctx, "web.service", other, registry.Launched); !errors.Is(err, registry.ErrExists) {
			t.Fatalf("second create: %v, want ErrExists", err)
		}
		after := dump(t, client)
		// The body of the refused unit may not be left behind either.
		if len(after) != len(before) {
			t.Errorf("refused create changed Consul: %d keys before, %d after", len(before), len(after))
		}
		j, err := reg.Job(ctx, "web.service")
		if err != nil {
			t.Fatal(err)
		}
		if j.Hash != web.Hash() || j.Desired != registry.Loaded || j.Unit.String() != web.String() {
			t.Errorf("job = %+v", j)
		}
	})

	t.Run("desired state of a missing unit", func(t *testing.T) {
		before := dump(t, client)
		if err := reg.SetDesired(ctx, "nope.service", registry.Launched); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("SetDesired: %v, want ErrNotFound", err)
		}
		if after := dump(t, client); len(after) != len(before) {
			t.Errorf("refused SetDesired wrote keys")
		}
	})

	t.Run("schedule writes are fenced on the leader lock", func(t *testing.T) {
		leader, other := newSession(t, client), newSession(t, client)
		ok, err := reg.AcquireLeader(ctx, leader, "m1")
		if err != nil || !ok {
			t.Fatalf("acquire: %v %v", ok, err)
		}
		if ok, _ := reg.AcquireLeader(ctx, other, "m2"); ok {
			t.Fatal("a second session took a held lock")
		}
		webJob, err := reg.Job(ctx, "web.service")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Schedule(ctx, webJob, "m2", other); !errors.Is(err, registry.ErrNotLeader) {
			t.Fatalf("schedule by non-leader: %v, want ErrNotLeader", err)
		}
		if ok, err := reg.Schedule(ctx, webJob, "m1", leader); err != nil || !ok {
			t.Fatalf("schedule by leader: %v %v", ok, err)
		}
		if ok, err := reg.Schedule(ctx, webJob, "m2", leader); err != nil || ok {
			t.Fatalf("scheduling a scheduled unit again: ok=%v err=%v, want refused", ok, err)
		}
		if ok, _ := reg.Schedule(ctx, &registry.Job{Name: "gone.service"}, "m1", leader); ok {
			t.Fatal("scheduled a unit that does not exist")
		}
		s, err := reg.Snapshot(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		j := s.Jobs["web.service"]
		if j.Target != "m1" || s.Leader != "m1" || s.LeaderSession != leader {
			t.Fatalf("snapshot: target %q leader %q", j.Target, s.Leader)
		}
		// The machine's schedule names the unit, and only that machine's.
		if e := s.Schedule["m1"]["web.service"]; e.Hash != j.Hash.String() || e.Desired != j.Desired || len(s.Schedule) != 1 {
			t.Fatalf("schedule entries after scheduling on m1: %+v", s.Schedule)
		}
		mine, err := reg.MachineSchedule(ctx, "m1", 0, 0)
		if err != nil || mine.Jobs["web.service"] == nil || mine.Jobs["web.service"].Unit == nil || len(mine.Jobs) != 1 || len(mine.Rejected) != 0 {
			t.Fatalf("m1's schedule: %+v %v", mine, err)
		}
		// The deposed leader's session dies: its lock goes, and it can no
		// longer unschedule.
		if _, err := client.Session().Destroy(leader, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Unschedule(ctx, j, leader); !errors.Is(err, registry.ErrNotLeader) {
			t.Fatalf("unschedule by deposed leader: %v", err)
		}
		// Free once the session's (1ms) lock-delay has passed.
		testcluster.Eventually(t, 5*time.Second, func() error {
			if ok, err := reg.AcquireLeader(ctx, other, "m2"); !ok {
				return fmt.Errorf("lock not free after the leader's session died (%v)", err)
			}
			return nil
		})
		if ok, err := reg.Unschedule(ctx, j, other); err != nil || !ok {
			t.Fatalf("unschedule by new leader: %v %v", ok, err)
		}
		if mine, err := reg.MachineSchedule(ctx, "m1", 0, 0); err != nil || len(mine.Jobs) != 0 {
			t.Fatalf("m1's schedule after the unit left: %+v %v", mine, err)
		}

		// Many writes share transactions; one whose unit changed fails
		// alone.
		var ws []registry.Write
		for i := range 100 {
			ws = append(ws, reg.EntryWrite("m3", fmt.Sprintf("u%d.service", i), &registry.Entry{Hash: j.Hash.String(), Desired: registry.Launched}))
		}
		gone := reg.ScheduleWrite(&registry.Job{Name: "gone.service"}, "m3", registry.Entry{Hash: j.Hash.String(), Desired: registry.Launched}) // no such unit
		ws = append(ws[:50], append([]registry.Write{gone}, ws[50:]...)...)
		done, err := reg.WriteAll(ctx, other, ws)
		if err != nil {
			t.Fatal(err)
		}
		for i, ok := range done {
			if ok != (i != 50) {
				t.Errorf("write %d (%s) applied: %v", i, ws[i].Name, ok)
			}
		}
		if s, err := reg.Snapshot(ctx, 0, 0); err != nil || len(s.Schedule["m3"]) != 100 || s.Schedule["m3"]["gone.service"] != (registry.Entry{}) {
			t.Errorf("m3's schedule after WriteAll: %d entries, %v", len(s.Schedule["m3"]), err)
		}

		// A machine's writes go together: of 120 entries for three
		// machines, in turn, each machine's 40 go in one transaction, so
		// that it learns of its units at once.
		ws = nil
		for i := range 120 {
			m := fmt.Sprintf("m%d", 4+i%3)
			ws = append(ws, reg.EntryWrite(m, fmt.Sprintf("g%d.service", i), &registry.Entry{Hash: j.Hash.String(), Desired: registry.Launched}))
		}
		if done, err := reg.WriteAll(ctx, other, ws); err != nil || slices.Contains(done, false) {
			t.Fatalf("WriteAll: %v %v", done, err)
		}
		for _, m := range []string{"m4", "m5", "m6"} {
			pairs, _, err := client.KV().List(reg.Prefix()+"schedule/"+m+"/", nil)
			if err != nil || len(pairs) != 40 {
				t.Fatalf("%s's schedule: %d entries, %v", m, len(pairs), err)
			}
			for _, p := range pairs {
				if p.ModifyIndex != pairs[0].ModifyIndex {
					t.Errorf("%s's entries were written in more than one transaction (%s at %d, %s at %d)", m, pairs[0].Key, pairs[0].ModifyIndex, p.Key, p.ModifyIndex)
					break
				}
			}
		}
	})

	t.Run("machine and state keys vanish with their session", func(t *testing.T) {
		sess := newSession(t, client)
		m := &registry.Machine{ID: "abcdef0123456789", IP: "127.0.0.9", Metadata: map[string]string{"region": "east"}, Version: "v1.2.3"}
		if err := reg.PublishMachine(ctx, m, sess); err != nil {
			t.Fatal(err)
		}
		if err := reg.PublishMachine(ctx, m, newSession(t, client)); err == nil {
			t.Fatal("a second live session published the same machine ID")
		}
		st := &registry.UnitState{Name: "web.service", Machine: m.ID, Hash: web.Hash().String(), State: registry.Launched, Active: "active"}
		if errs, err := reg.Publish(ctx, []registry.Write{reg.StateWrite(st, sess)}); err != nil || errs[0] != nil {
			t.Fatal(err, errs)
		}
		// Another live session cannot take the state: the failure names
		// the session holding it.
		var held *registry.HeldError
		if errs, err := reg.Publish(ctx, []registry.Write{reg.StateWrite(st, newSession(t, client))}); err != nil || !errors.As(errs[0], &held) || held.Holder != sess {
			t.Fatalf("a second session published a held state: %v %v", err, errs)
		}
		ms, _ := reg.Machines(ctx)
		if len(ms) != 1 || ms[0].Metadata["region"] != "east" || ms[0].Version != "v1.2.3" {
			t.Fatalf("machines = %+v", ms)
		}
		if _, err := client.Session().Destroy(sess, nil); err != nil {
			t.Fatal(err)
		}
		s, _ := reg.Snapshot(ctx, 0, 0)
		if len(s.Machines) != 0 || len(s.States) != 0 {
			t.Fatalf("after the session died: machines %v states %v", s.Machines, s.States)
		}
	})

	t.Run("a machine's report in few transactions, its catalog entries with it", func(t *testing.T) {
		sess := newSession(t, client)
		m := &registry.Machine{ID: "0123456789abcdef", IP: "127.0.0.10"}
		ws := []registry.Write{registry.MachineWrite(m.ID, registry.NodeDeleteOp(m.ID), registry.NodeOp(m, nil))}
		for i := range 150 {
			name := fmt.Sprintf("w%03d.service", i)
			st := &registry.UnitState{Name: name, Machine: m.ID, State: registry.Launched, Active: "active"}
			ops := []*api.TxnOp{registry.CheckOp(m.ID, "w", name, api.HealthPassing, "up")}
			if i == 0 {
				ops = append([]*api.TxnOp{registry.ServiceOp(m.ID, api.AgentService{Service: "w"})}, ops...)
			}
			ws = append(ws, reg.StateWrite(st, sess, ops...))
		}
		// One write refused (a check of a service that is not there)
		// fails alone.
		ws = append(ws, reg.StateWrite(&registry.UnitState{Name: "bad.service", Machine: m.ID}, sess, registry.CheckOp("elsewhere", "w", "bad.service", api.HealthPassing, "")))
		errs, err := reg.Publish(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		for i, err := range errs {
			if (err != nil) != (i == len(ws)-1) {
				t.Errorf("write %d (%s): %v", i, ws[i].Name, err)
			}
		}
		checks, _, err := client.Health().Checks("w", nil)
		if err != nil || len(checks) != 150 || checks.AggregatedStatus() != api.HealthPassing {
			t.Fatalf("catalog: %d checks of w, %v", len(checks), err)
		}
		s, _ := reg.Snapshot(ctx, 0, 0)
		if n := len(s.States); n != 150 {
			t.Fatalf("%d states published, want 150", n)
		}
		// The machine leaves: its node goes, with every unit on it.
		if errs, err := reg.Publish(ctx, []registry.Write{registry.MachineWrite(m.ID, registry.NodeDeleteOp(m.ID))}); err != nil || errs[0] != nil {
			t.Fatal(err, errs)
		}
		if checks, _, _ := client.Health().Checks("w", nil); len(checks) != 0 {
			t.Fatalf("%d checks left after the node was removed", len(checks))
		}
		_, _ = client.Session().Destroy(sess, nil)
	})

	t.Run("blocking snapshot wakes on a change", func(t *testing.T) {
		s, _ := reg.Snapshot(ctx, 0, 0)
		done := make(chan *registry.Snapshot)
		go func() {
			next, _ := reg.Snapshot(ctx, s.Index, 30*time.Second)
			done <- next
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if err := reg.SetDesired(ctx, "web.service", registry.Launched); err != nil {
			t.Fatal(err)
		}
		next := <-done
		// Woken by the change, not by the end of the read's 30 s.
		if time.Since(start) > 20*time.Second || next == nil || next.Jobs["web.service"].Desired != registry.Launched {
			t.Fatalf("blocking query did not return the change promptly")
		}
	})

	t.Run("destroy", func(t *testing.T) {
		if err := reg.DestroyJob(ctx, "web.service"); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Job(ctx, "web.service"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("after destroy: %v", err)
		}
	})
}

// TestCreateJobs: many units share transactions; one that exists already is
// reported and the rest are created.
func TestCreateJobs(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := registry.New(client, "")
	tpl, _ := unitfile.Parse("[Service]\nExecStart=/bin/sleep 1000\n")
	other, _ := unitfile.Parse("[Service]\nExecStart=/bin/true\n")
	if err := reg.CreateJob(ctx, "app@7.service", other, registry.Loaded); err != nil {
		t.Fatal(err)
	}
	var jobs []registry.NewJob
	for i := range 100 {
		jobs = append(jobs, registry.NewJob{Name: fmt.Sprintf("app@%d.service", i), Unit: tpl, Desired: registry.Launched})
	}
	if err := reg.CreateJobs(ctx, jobs); !errors.Is(err, registry.ErrExists) || !strings.Contains(err.Error(), "app@7.service") {
		t.Fatalf("CreateJobs with app@7 already there: %v", err)
	}
	s, err := reg.Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Jobs) != 100 {
		t.Fatalf("%d units after CreateJobs, want 100", len(s.Jobs))
	}
	for name, j := range s.Jobs {
		want, desired := tpl.Hash(), registry.Launched
		if name == "app@7.service" {
			want, desired = other.Hash(), registry.Loaded // left as it was
		}
		if j.Hash != want || j.Desired != desired || j.Unit == nil {
			t.Errorf("%s: hash %s desired %s body %v", name, j.Hash.Short(), j.Desired, j.Unit != nil)
		}
	}
}

// TestSetDesiredAllAndDestroyJobs: desired states set for many units at
// once, one of which changed since it was read (set again from what is
// there now), and one already there (untouched); then many destroyed at once.
func TestSetDesiredAllAndDestroyJobs(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := registry.New(client, "")
	tpl, _ := unitfile.Parse("[Service]\nExecStart=/bin/sleep 1000\n")
	other, _ := unitfile.Parse("[Service]\nExecStart=/bin/true\n")
	var jobs []registry.NewJob
	for i := range 150 {
		jobs = append(jobs, registry.NewJob{Name: fmt.Sprintf("app@%d.service", i), Unit: tpl, Desired: registry.Loaded})
	}
	jobs[3].Desired = registry.Launched
	if err := reg.CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	s, err := reg.Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	read := make([]*registry.Job, 0, len(s.Jobs))
	for _, n := range s.JobNames() {
		read = append(read, s.Jobs[n])
	}
	// Changed after it was read: a new body, still loaded.
	if err := reg.ReplaceJob(ctx, s.Jobs["app@9.service"], other); err != nil {
		t.Fatal(err)
	}
	before, _, _ := client.KV().Get(registry.DefaultPrefix+"jobs/app@3.service", nil)
	if err := reg.SetDesiredAll(ctx, read, registry.Launched); err != nil {
		t.Fatal(err)
	}
	after, err := reg.Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for n, j := range after.Jobs {
		want := tpl.Hash()
		if n == "app@9.service" {
			want = other.Hash() // set again on what it became, not on what was read
		}
		if j.Desired != registry.Launched || j.Hash != want {
			t.Errorf("%s: desired %s, hash %s", n, j.Desired, j.Hash.Short())
		}
	}
	if p, _, _ := client.KV().Get(registry.DefaultPrefix+"jobs/app@3.service", nil); p.ModifyIndex != before.ModifyIndex {
		t.Errorf("app@3, launched already, was written again")
	}
	names := after.JobNames()
	if err := reg.DestroyJobs(ctx, names[:140]); err != nil {
		t.Fatal(err)
	}
	left, err := reg.Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := left.JobNames(); !slices.Equal(got, names[140:]) {
		t.Errorf("after destroying 140 of 150 units: %v left", got)
	}
}

// TestPlacementOutlivesItsUnit: fleetctl destroy removes a unit's job only;
// its placement, which only the leader writes, is an orphan until the leader
// removes it, and a unit submitted again under the name meanwhile is not
// taken as placed where the old one was.
func TestPlacementOutlivesItsUnit(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := registry.New(client, "")
	leader := newSession(t, client)
	if ok, err := reg.AcquireLeader(ctx, leader, "m1"); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	body := mustParse(t, "[Service]\nExecStart=/bin/sleep 100\n")
	if err := reg.CreateJob(ctx, "db.service", body, registry.Launched); err != nil {
		t.Fatal(err)
	}
	j, err := reg.Job(ctx, "db.service")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := reg.Schedule(ctx, j, "m1", leader); err != nil || !ok {
		t.Fatalf("schedule: %v %v", ok, err)
	}
	if j, err := reg.Job(ctx, "db.service"); err != nil || j.Target != "m1" || j.Stale() {
		t.Fatalf("after scheduling: %+v %v", j, err)
	}

	// Destroyed: the placement stays, as an orphan.
	if err := reg.DestroyJob(ctx, "db.service"); err != nil {
		t.Fatal(err)
	}
	s, err := reg.Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Jobs["db.service"] != nil || s.Orphans["db.service"] == 0 {
		t.Fatalf("after destroy: job %+v, orphans %v", s.Jobs["db.service"], s.Orphans)
	}
	orphan := s.Orphans["db.service"]

	// Submitted again before the leader cleaned up: not placed, and its
	// placement is the old unit's.
	if err := reg.CreateJob(ctx, "db.service", body, registry.Launched); err != nil {
		t.Fatal(err)
	}
	s, err = reg.Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	again := s.Jobs["db.service"]
	if again == nil || again.Target != "" || !again.Stale() || len(s.Orphans) != 0 {
		t.Fatalf("resubmitted unit: %+v, orphans %v", again, s.Orphans)
	}
	// The leader records it unplaced, which replaces the stale placement;
	// the orphan's removal, from the read before, is refused then.
	if done, err := reg.WriteAll(ctx, leader, []registry.Write{reg.UnplacedWrite(again, "no machine")}); err != nil || !done[0] {
		t.Fatalf("unplaced write: applied %v, %v", done, err)
	}
	if done, err := reg.WriteAll(ctx, leader, []registry.Write{reg.OrphanWrite("db.service", orphan)}); err != nil || done[0] {
		t.Fatalf("orphan removal after the placement changed: applied %v, %v", done, err)
	}
	j, err = reg.Job(ctx, "db.service")
	if err != nil || j.Target != "" || j.Unplaced != "no machine" || j.Stale() {
		t.Fatalf("after the unplaced write: %+v %v", j, err)
	}
	// A write from the stale read is refused: the placement changed.
	if done, err := reg.WriteAll(ctx, leader, []registry.Write{reg.ScheduleWrite(again, "m1", registry.Entry{Hash: body.Hash().String(), Desired: registry.Launched})}); err != nil || done[0] {
		t.Fatalf("schedule from a stale read: applied %v, %v", done, err)
	}

	// Destroyed again, the leader removes the orphan.
	if err := reg.DestroyJob(ctx, "db.service"); err != nil {
		t.Fatal(err)
	}
	s, _ = reg.Snapshot(ctx, 0, 0)
	if done, err := reg.WriteAll(ctx, leader, []registry.Write{reg.OrphanWrite("db.service", s.Orphans["db.service"])}); err != nil || !done[0] {
		t.Fatalf("orphan removal: applied %v, %v", done, err)
	}
	if keys, _, err := client.KV().Keys("fleet/placement/", "", nil); err != nil || len(keys) != 0 {
		t.Fatalf("placement keys left: %v %v", keys, err)
	}
}
