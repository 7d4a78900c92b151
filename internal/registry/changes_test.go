package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// logKeys lists the change log's keys.
func logKeys(t *testing.T, c *api.Client) []string {
	t.Helper()
	keys, _, err := c.KV().Keys("fleet/changes/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestFollowReadsTheLog: fleetctl's writes of units (create, desired
// state, destroy) leave entries in the change log; the Follower, once it
// read jobs/ and units/ whole, reads the entries and the keys they name,
// never those subtrees whole, and what it returns is what Consul holds;
// Forget removes the entries applied, and only for the lock's holder. A
// write without its entry makes the Follower read the subtree whole.
func TestFollowReadsTheLog(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := registry.New(client, "")
	session := lead(t, ctx, client, reg)
	tpl := mustParse(t, "[Service]\nExecStart=/bin/sleep 1000\n")
	var jobs []registry.NewJob
	for i := range 40 {
		jobs = append(jobs, registry.NewJob{Name: fmt.Sprintf("web@%d.service", i), Unit: tpl, Desired: registry.Loaded})
	}
	if err := reg.CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	if n := len(logKeys(t, client)); n == 0 {
		t.Fatal("creating 40 units left no entry in the change log")
	}

	watched, rec := recordedClient(t, consul)
	view, err := registry.New(watched, "").View(ctx, "placement/")
	if err != nil {
		t.Fatal(err)
	}
	// Blocking queries of 2 s: a restored snapshot wakes none (its index is
	// lower than the one waited past), and the test waits for their answer.
	follower := view.Follow(ctx, []string{"jobs/", "units/", "machines/"}, 2*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	readUntil(t, ctx, view, follower, "the 40 units", func(s *registry.Snapshot) bool { return len(s.Jobs) == 40 })
	if err := follower.Forget(ctx, session); err != nil {
		t.Fatal(err)
	}
	if keys := logKeys(t, client); len(keys) != 0 {
		t.Fatalf("after Forget the log holds %v, want nothing: every entry was read", keys)
	}

	snap, _, err := client.Snapshot().Save(nil)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := io.ReadAll(snap)
	snap.Close()
	if err != nil {
		t.Fatal(err)
	}

	// Units change as fleetctl changes them: some started, some destroyed,
	// one with a body of its own created.
	rec.reset()
	s0, err := reg.JobsNamed(ctx, []string{"web@1.service", "web@2.service", "web@3.service"})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetDesiredAll(ctx, slices.Collect(maps.Values(s0.Jobs)), registry.Launched); err != nil {
		t.Fatal(err)
	}
	if err := reg.DestroyJobs(ctx, []string{"web@4.service", "web@5.service"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.DestroyJob(ctx, "web@6.service"); err != nil {
		t.Fatal(err)
	}
	own := mustParse(t, "[Service]\nExecStart=/bin/sleep 2000\n")
	if err := reg.CreateJob(ctx, "db.service", own, registry.Launched); err != nil {
		t.Fatal(err)
	}
	s := readUntil(t, ctx, view, follower, "the changes", func(s *registry.Snapshot) bool {
		return s.Jobs["db.service"] != nil && s.Jobs["web@6.service"] == nil && len(s.Jobs) == 38
	})
	truth, err := reg.Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range truth.Jobs {
		got := s.Jobs[name]
		if got == nil || got.Desired != want.Desired || got.Hash != want.Hash || got.Unit == nil {
			t.Errorf("%s read from the log: %+v, Consul holds %+v", name, got, want)
		}
	}
	if len(s.Jobs) != len(truth.Jobs) {
		t.Errorf("%d units read from the log, Consul holds %d", len(s.Jobs), len(truth.Jobs))
	}
	if rec.sent("GET /v1/kv/fleet/jobs/?recurse") || rec.sent("GET /v1/kv/fleet/units/?recurse") {
		t.Errorf("a logged subtree read whole:\n%s", rec)
	}

	// A deposed leader removes nothing.
	other := newSession(t, client)
	if err := follower.Forget(ctx, other); !errors.Is(err, registry.ErrNotLeader) {
		t.Errorf("Forget by a session without the lock: %v, want ErrNotLeader", err)
	}
	if len(logKeys(t, client)) == 0 {
		t.Error("Forget by a session without the lock removed the log's entries")
	}
	if err := follower.Forget(ctx, session); err != nil {
		t.Fatal(err)
	}

	// A unit written without an entry (an older fleetctl) is read all the same.
	unlogged := fmt.Sprintf(`{"name":"old.service","hash":%q,"desired":"launched"}`, tpl.Hash().String())
	if _, err := client.KV().Put(&api.KVPair{Key: "fleet/jobs/old.service", Value: []byte(unlogged)}, nil); err != nil {
		t.Fatal(err)
	}
	readUntil(t, ctx, view, follower, "the unit written without an entry", func(s *registry.Snapshot) bool { return s.Jobs["old.service"] != nil })
	if !rec.sent("GET /v1/kv/fleet/jobs/?recurse") {
		t.Error("a write without an entry did not make the Follower read jobs/ whole")
	}

	// A snapshot restored takes Consul back to before these changes: no
	// log tells of that, and the Follower reads the subtrees whole.
	if err := reg.DestroyJob(ctx, "web@7.service"); err != nil {
		t.Fatal(err)
	}
	readUntil(t, ctx, view, follower, "web@7.service's destruction", func(s *registry.Snapshot) bool { return s.Jobs["web@7.service"] == nil })
	rec.reset()
	if err := client.Snapshot().Restore(nil, bytes.NewReader(saved)); err != nil {
		t.Fatal(err)
	}
	readUntil(t, ctx, view, follower, "the snapshot restored", func(s *registry.Snapshot) bool { return s.Jobs["web@7.service"] != nil })
	if !rec.sent("GET /v1/kv/fleet/jobs/?recurse") {
		t.Error("a restored snapshot did not make the Follower read jobs/ whole")
	}
}

// TestLogRefusedByACL: a client whose token may write units but not the
// change log (an operator policy from before it) writes its units all the
// same, without entries.
func TestLogRefusedByACL(t *testing.T) {
	const root = "root-token"
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{ACLToken: root})
	admin, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.DefaultConfig()
	cfg.Address = strings.TrimPrefix(consul.URL(), "http://")
	cfg.Token = testcluster.Token(t, admin, `key_prefix "fleet/" { policy = "read" }
key_prefix "fleet/units/" { policy = "write" }
key_prefix "fleet/jobs/" { policy = "write" }`)
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := registry.New(client, "")
	body := mustParse(t, "[Service]\nExecStart=/bin/true\n")
	if err := reg.CreateJobs(ctx, []registry.NewJob{{Name: "a.service", Unit: body}, {Name: "b.service", Unit: body}}); err != nil {
		t.Fatalf("create with a token that may not write the log: %v", err)
	}
	if err := reg.DestroyJob(ctx, "b.service"); err != nil {
		t.Fatalf("destroy with a token that may not write the log: %v", err)
	}
	s, err := registry.New(admin, "").Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(s.Jobs)); !slices.Equal(got, []string{"a.service"}) {
		t.Errorf("units %v, want a.service", got)
	}
	if keys := logKeys(t, admin); len(keys) != 0 {
		t.Errorf("log entries %v written with a token that may not", keys)
	}

	// A leader whose token may not remove the log's entries (a leader
	// policy from before the log) reads units whole instead of the log,
	// which would only grow.
	rec := &recorder{next: http.DefaultTransport}
	cfg.HttpClient = &http.Client{Transport: rec}
	cfg.Token = testcluster.Token(t, admin, `key_prefix "fleet/" { policy = "read" }
key "fleet/leader" { policy = "write" }`)
	leaderClient, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	session := newSession(t, admin)
	if ok, err := registry.New(leaderClient, "").AcquireLeader(ctx, session, "m1"); !ok || err != nil {
		t.Fatalf("leader lock: %v %v", ok, err)
	}
	logging := registry.New(admin, "")
	if err := logging.CreateJob(ctx, "c.service", body, registry.Launched); err != nil {
		t.Fatal(err)
	}
	view, err := registry.New(leaderClient, "").View(ctx, "placement/")
	if err != nil {
		t.Fatal(err)
	}
	follower := view.Follow(ctx, []string{"jobs/", "units/"}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	readUntil(t, ctx, view, follower, "c.service", func(s *registry.Snapshot) bool { return s.Jobs["c.service"] != nil })
	if err := follower.Forget(ctx, session); !errors.As(err, new(*registry.PermissionError)) {
		t.Fatalf("Forget with a token that may not remove entries: %v, want a PermissionError", err)
	}
	rec.reset()
	if err := logging.CreateJob(ctx, "d.service", body, registry.Launched); err != nil {
		t.Fatal(err)
	}
	readUntil(t, ctx, view, follower, "d.service", func(s *registry.Snapshot) bool { return s.Jobs["d.service"] != nil })
	if rec.sent("GET /v1/kv/fleet/changes/") || !rec.sent("GET /v1/kv/fleet/jobs/?recurse") {
		t.Errorf("after a refused removal the leader still reads the log, or not jobs/ whole:\n%s", rec)
	}
}

// TestFollowForgetsWhatItReadWhole: units written after a Read read the
// change log but before it read their subtree whole are in what it
// returns; their entry is applied, and Forget removes it with the others.
// No later change need come to take it out of the log.
func TestFollowForgetsWhatItReadWhole(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := registry.New(client, "")
	session := lead(t, ctx, client, reg)
	tpl := mustParse(t, "[Service]\nExecStart=/bin/sleep 1000\n")
	create := func(from int) error {
		var jobs []registry.NewJob
		for i := from; i < from+5; i++ {
			jobs = append(jobs, registry.NewJob{Name: fmt.Sprintf("web@%d.service", i), Unit: tpl, Desired: registry.Launched})
		}
		return reg.CreateJobs(ctx, jobs)
	}
	if err := create(0); err != nil {
		t.Fatal(err)
	}

	watched, rec := recordedClient(t, consul)
	var late error
	var once sync.Once
	rec.after = func(req string) {
		if strings.HasPrefix(req, "GET /v1/kv/fleet/changes/?recurse") {
			once.Do(func() { late = create(5) })
		}
	}
	view, err := registry.New(watched, "").View(ctx, "placement/")
	if err != nil {
		t.Fatal(err)
	}
	follower := view.Follow(ctx, []string{"jobs/", "units/"}, 2*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	<-follower.Changed()
	rd, err := follower.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if late != nil {
		t.Fatal(late)
	}
	if n := len(view.Snapshot(rd).Jobs); n != 10 {
		t.Fatalf("the first Read returned %d units, want the 5 logged before it read the log and the 5 after", n)
	}
	if !rec.sent("GET /v1/kv/fleet/jobs/?recurse") {
		t.Fatalf("the first Read did not read jobs/ whole:\n%s", rec)
	}
	if err := follower.Forget(ctx, session); err != nil {
		t.Fatal(err)
	}
	if keys := logKeys(t, client); len(keys) != 0 {
		t.Errorf("after the Read that returned every unit and Forget, the log holds %v, want nothing", keys)
	}
}
