package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/agent/execdriver"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/testcluster"
)

// testMachine is what an agent test needs: a real Consul, a registry on
// it, an exec driver and a running heartbeat for one machine.
type testMachine struct {
	id, ip string
	client *api.Client
	reg    *registry.Registry
	drv    *execdriver.Driver
	hb     *agent.Heartbeat
	log    *slog.Logger
}

// startTestMachine starts Consul and the machine's heartbeat; both stop
// when ctx is done or the test ends.
func startTestMachine(t *testing.T, ctx context.Context, id, ip string, meta map[string]string) *testMachine {
	t.Helper()
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	m := &testMachine{id: id, ip: ip, client: client, reg: registry.New(client, ""), log: slog.New(slog.DiscardHandler)}
	dir := t.TempDir()
	if m.drv, err = execdriver.New(filepath.Join(dir, "units"), filepath.Join(dir, "logs"), id, m.log); err != nil {
		t.Fatal(err)
	}
	m.hb = agent.NewHeartbeat(client, id, ip, meta, 2*time.Second, m.log)
	if err := m.hb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	go m.hb.Run(ctx)
	return m
}

// runAgent runs the machine's agent until ctx is done; the function it
// returns cancels ctx and waits for the agent to return.
func (m *testMachine) runAgent(ctx context.Context, cancel context.CancelFunc) (stop func()) {
	a := agent.New(agent.Config{Registry: m.reg, Machine: registry.Machine{ID: m.id, IP: m.ip}, Driver: m.drv, Heartbeat: m.hb, Log: m.log})
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// TestSessionReplaced invalidates a running agent's session behind its back,
// as an operator in the Consul UI or a long outage would. The agent must
// notice, take a new session, and publish its machine and unit states again,
// without restarting its unit.
func TestSessionReplaced(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	ctx, cancel := context.WithCancel(context.Background())
	m := startTestMachine(t, ctx, id, "127.0.0.5", map[string]string{"region": "east"})
	client, reg, drv, hb := m.client, m.reg, m.drv, m.hb
	defer m.runAgent(ctx, cancel)()

	// Schedule a unit to it by hand, as a leader would.
	f, _ := unitfile.Parse("[Service]\nExecStart=/bin/sleep 60\n")
	if err := reg.CreateJob(ctx, "s.service", f, registry.Launched); err != nil {
		t.Fatal(err)
	}
	lock, _, _ := client.Session().Create(&api.SessionEntry{LockDelay: time.Millisecond}, nil)
	if ok, _ := reg.AcquireLeader(ctx, lock, "test"); !ok {
		t.Fatal("no lock")
	}
	j, err := reg.Job(ctx, "s.service")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := reg.Schedule(ctx, j, id, lock); !ok || err != nil {
		t.Fatalf("schedule: %v %v", ok, err)
	}
	running := func() error {
		s, err := reg.Snapshot(ctx, 0, 0)
		if err != nil {
			return err
		}
		st := s.States["s.service"][id]
		if s.Machines[id] == nil || st == nil || st.Active != "active" {
			return fmt.Errorf("machine %v, state %+v", s.Machines[id], st)
		}
		return nil
	}
	testcluster.Eventually(t, 20*time.Second, running)
	pid := drv.MainPID("s.service")
	if pid == 0 {
		t.Fatal("no main PID for a running unit")
	}

	replaceSession(t, client, hb, running)
	if got := drv.MainPID("s.service"); got != pid {
		t.Errorf("unit restarted across the session change: PID %d, was %d", got, pid)
	}
	// The health check shows in Consul as the machine's service.
	checks, _, err := client.Health().Checks("fleet-agent", nil)
	if err != nil || len(checks) != 1 || checks[0].CheckID != hb.CheckID() || checks[0].Status != api.HealthPassing {
		t.Fatalf("fleet service checks = %+v, %v", checks, err)
	}
}

// replaceSession destroys hb's session behind its back and waits until hb
// holds another and then holds.
func replaceSession(t *testing.T, client *api.Client, hb *agent.Heartbeat, then func() error) {
	t.Helper()
	old := hb.ID()
	if _, err := client.Session().Destroy(old, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		if hb.ID() == old {
			return fmt.Errorf("still on the destroyed session")
		}
		return then()
	})
}

// TestStaleSessionForgotten leaves an earlier session of the machine alive
// and holding the machine's key, as happens when fleetd takes a Consul
// server's brief "no such session" during a restart for an invalidation and
// makes a new session (found by TestRandomFaults). The agent must destroy
// the stale session and publish with its own; a session by another name
// (a second fleetd claiming the same machine ID) is left alone.
func TestStaleSessionForgotten(t *testing.T) {
	const id = "fedcba9876543210fedcba9876543210"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := startTestMachine(t, ctx, id, "127.0.0.6", nil)
	client, reg, hb := m.client, m.reg, m.hb
	holder := func() string {
		p, _, err := client.KV().Get(reg.Prefix()+"machines/"+id, nil)
		if err != nil || p == nil {
			return ""
		}
		return p.Session
	}
	squat := func(name string) string {
		s, _, err := client.Session().Create(&api.SessionEntry{Name: name, Behavior: api.SessionBehaviorDelete, LockDelay: time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A key freed by a destroyed session stays locked for its
		// lock-delay (1 ms): retry.
		testcluster.Eventually(t, 5*time.Second, func() error { return reg.PublishMachine(ctx, &registry.Machine{ID: id}, s) })
		return s
	}

	// Another fleetd with the same machine ID: never destroyed.
	other := squat("some other fleetd")
	if hb.ForgetStale(ctx, other) {
		t.Fatal("destroyed a session that is not this machine's")
	}
	if _, err := client.Session().Destroy(other, nil); err != nil {
		t.Fatal(err)
	}

	stale := squat("fleet machine " + id)
	defer m.runAgent(ctx, cancel)()
	testcluster.Eventually(t, 20*time.Second, func() error {
		if h := holder(); h != hb.ID() {
			return fmt.Errorf("the machine key is held by %q, want the agent's session %q", h, hb.ID())
		}
		return nil
	})
	if se, _, _ := client.Session().Info(stale, nil); se != nil {
		t.Error("the stale session is still alive")
	}
}

// countingTransport counts the requests a Consul client makes, by path.
type countingTransport struct {
	next  http.RoundTripper
	mu    sync.Mutex
	paths map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.paths[req.URL.Path]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

// count is how many requests went to paths starting with prefix.
func (c *countingTransport) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for p, k := range c.paths {
		if strings.HasPrefix(p, prefix) {
			n += k
		}
	}
	return n
}

// TestSessionReadOnChange runs a heartbeat against a real Consul and counts
// its requests: it renews its check at every beat, but asks the servers
// about its session once and then waits on it (a blocking query), instead
// of reading it at every beat, which costs Consul's servers a read per
// machine every third of the TTL. It still replaces its session at once
// when the session is destroyed.
func TestSessionReadOnChange(t *testing.T) {
	const id = "00112233445566778899aabbccddeeff"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consul := testcluster.StartConsulT(t)
	rt := &countingTransport{paths: map[string]int{}}
	client, err := registry.NewClientWith(consul.HTTPAddr, "", registry.ClientOptions{
		Wrap: func(next http.RoundTripper) http.RoundTripper { rt.next = next; return rt },
	})
	if err != nil {
		t.Fatal(err)
	}
	hb := agent.NewHeartbeat(client, id, "127.0.0.7", nil, 2*time.Second, slog.New(slog.DiscardHandler))
	if err := hb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { hb.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	const beats = 6
	testcluster.Eventually(t, 60*time.Second, func() error {
		if n := rt.count("/v1/agent/check/update/"); n < 1+beats { // Start's own, then the beats
			return fmt.Errorf("%d check updates, want %d beats", n, beats)
		}
		return nil
	})
	// The first read answers at once, the second waits: at most one more
	// may have been retried after a hiccup.
	if n := rt.count("/v1/session/info/"); n > 3 {
		t.Errorf("%d reads of the session over %d beats: the heartbeat reads its session at every beat", n, beats)
	}

	replaceSession(t, client, hb, func() error {
		se, _, err := client.Session().Info(hb.ID(), nil)
		if err != nil || se == nil {
			return fmt.Errorf("new session %s: %v, %v", hb.ID(), se, err)
		}
		return nil
	})
}

// TestStopLeavesNoSession stops a running heartbeat, as fleetd does when it
// leaves the cluster: Run must be over by the time Stop destroys the
// session, or it would take the destroyed session for an invalidated one
// and open another, or register the machine again.
func TestStopLeavesNoSession(t *testing.T) {
	const id = "ffeeddccbbaa99887766554433221100"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := startTestMachine(t, ctx, "unused0123456789unused0123456789", "127.0.0.8", nil)
	client := m.client
	hb := agent.NewHeartbeat(client, id, "127.0.0.9", nil, 2*time.Second, slog.New(slog.DiscardHandler))
	if err := hb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { hb.Run(ctx); close(done) }()
	// Let Run wait on the session, as it does between changes.
	testcluster.Eventually(t, 20*time.Second, func() error {
		if se, _, err := client.Session().Info(hb.ID(), nil); err != nil || se == nil {
			return fmt.Errorf("session %s: %v, %v", hb.ID(), se, err)
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond)

	hb.Stop(ctx)
	select {
	case <-done:
	default:
		t.Fatal("Run is still going after Stop")
	}
	node, err := client.Agent().NodeName()
	if err != nil {
		t.Fatal(err)
	}
	ss, _, err := client.Session().Node(node, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Name == "fleet machine "+id {
			t.Errorf("session %s of the stopped machine is alive", s.ID)
		}
	}
	services, err := client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := services[hb.ServiceID()]; ok {
		t.Errorf("the stopped machine's service %s is still registered", hb.ServiceID())
	}
}

// TestHeartbeatLeavesTheCatalogAlone: renewing the heartbeat changes
// nothing the machine's Consul agent would write back to the catalog. An
// agent defers a change of a check's output alone by check_update_interval
// (five minutes by default) and then registers the check with its
// service again, a catalog write that has the servers count every
// fleet-agent instance in the cluster: at thousands of machines, one
// such write per machine is a storm minutes after they start.
func TestHeartbeatLeavesTheCatalogAlone(t *testing.T) {
	const update = 300 * time.Millisecond // the agent's deferral: half to one and a half of it
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{HCL: []string{fmt.Sprintf("check_update_interval = %q", update)}})
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A renewal every second: a machine would have to stall for two
	// before the check went critical, a status change the test would
	// take for a write-back.
	hb := agent.NewHeartbeat(client, "m1", "127.0.0.1", nil, 3*time.Second, slog.New(slog.DiscardHandler))
	if err := hb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	go hb.Run(ctx)
	catalogCheck := func() *api.HealthCheck {
		t.Helper()
		checks, _, err := client.Health().Checks("fleet-agent", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range checks {
			if c.CheckID == hb.CheckID() {
				return c
			}
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	first := catalogCheck() // as the registration wrote it
	for ; first == nil; first = catalogCheck() {
		if time.Now().After(deadline) {
			t.Fatal("the heartbeat's check never reached the catalog")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Three renewals; what the first changes is written back within
	// 450 ms of it.
	time.Sleep(3 * time.Second)
	last := catalogCheck()
	if last.ModifyIndex != first.ModifyIndex {
		t.Errorf("the catalog's heartbeat check was written again while the machine only renewed it: output %q -> %q, status %s -> %s",
			first.Output, last.Output, first.Status, last.Status)
	}
	if last.Status != api.HealthPassing {
		t.Errorf("heartbeat check %s, want passing", last.Status)
	}
}
