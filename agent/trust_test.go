package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/testcluster"
	"github.com/wasmfleet/fleet/testcluster/scale"
)

// recordingDriver runs nothing (scale.MemDriver acknowledges every call)
// and remembers every unit name the agent passed it, so a test sees exactly
// which units reached the driver.
type recordingDriver struct {
	*scale.MemDriver
	mu    sync.Mutex
	names map[string]bool
}

func newRecordingDriver() *recordingDriver {
	return &recordingDriver{MemDriver: scale.NewMemDriver(), names: map[string]bool{}}
}

func (d *recordingDriver) saw(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names[name] = true
}

func (d *recordingDriver) Load(ctx context.Context, name string, f *unitfile.File) error {
	d.saw(name)
	return d.MemDriver.Load(ctx, name, f)
}
func (d *recordingDriver) Start(ctx context.Context, name string) error {
	d.saw(name)
	return d.MemDriver.Start(ctx, name)
}
func (d *recordingDriver) Stop(ctx context.Context, name string) error {
	d.saw(name)
	return d.MemDriver.Stop(ctx, name)
}
func (d *recordingDriver) Unload(ctx context.Context, name string) error {
	d.saw(name)
	return d.MemDriver.Unload(ctx, name)
}

// touched is every unit name the agent passed to the driver, sorted.
func (d *recordingDriver) touched() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(maps.Keys(d.names))
}

func (d *recordingDriver) active(name string) string { return d.State(name).Active }

func (d *recordingDriver) has(name string) bool {
	_, ok := d.Units()[name]
	return ok
}

// logLines collects an slog JSON handler's output.
type logLines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// with returns the records whose msg is msg.
func (l *logLines) with(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func metricValue(t *testing.T, r prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := testcluster.MetricSum(fams, name)
	return v
}

// TestAgentTrustsItsScheduleOnly plants in Consul what a leader never
// writes: entries in machine A's schedule with names that are paths or hold
// a NUL, a bad hash, a hash with no body, a body that does not parse or is
// not its hash's, a desired state that is a shell command, a value that is
// not JSON; a valid entry in machine B's schedule; a jobs/ target naming A
// with no schedule entry; a unit state under A written by someone else.
// Only the one valid entry of A's schedule reaches A's driver. Each bad
// entry of A's schedule is logged once, with its key and why, and counted
// in the metrics; the agent keeps running, and later schedule changes still
// apply (a bad entry changed is reported again; one made valid runs; a
// running unit whose entry turns bad is unloaded, and the log says so).
func TestAgentTrustsItsScheduleOnly(t *testing.T) {
	const (
		idA = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
		idB = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := startTestMachine(t, ctx, idA, "127.0.0.7", nil)
	client, reg := m.client, m.reg
	prefix := reg.Prefix()
	kv := client.KV()

	// The legitimate writes: fleetctl's jobs and a leader's fenced
	// schedule entries.
	unit := func(exec string) *unitfile.File {
		f, err := unitfile.Parse("[Service]\nExecStart=" + exec + "\n")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	good, other := unit("/bin/sleep 60"), unit("/bin/sleep 61")
	for name, f := range map[string]*unitfile.File{"good.service": good, "b.service": other, "x.service": other, "later.service": good} {
		if err := reg.CreateJob(ctx, name, f, registry.Launched); err != nil {
			t.Fatal(err)
		}
	}
	lock, _, err := client.Session().Create(&api.SessionEntry{LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Session().Destroy(lock, nil)
	if ok, err := reg.AcquireLeader(ctx, lock, "test-leader"); !ok || err != nil {
		t.Fatalf("leader lock: %v %v", ok, err)
	}
	schedule := func(name, machine string) {
		t.Helper()
		j, err := reg.Job(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := reg.Schedule(ctx, j, machine, lock); !ok || err != nil {
			t.Fatalf("schedule %s on %s: %v %v", name, machine, ok, err)
		}
	}
	schedule("good.service", idA)
	schedule("b.service", idB) // valid, and another machine's

	// What no leader writes, straight into Consul.
	entry := func(hash string, desired string) []byte {
		b, _ := json.Marshal(map[string]string{"hash": hash, "desired": desired})
		return b
	}
	goodHash := good.Hash().String()
	missing := strings.Repeat("5a", 20)       // no body stored under it
	unparsable := strings.Repeat("c3", 20)    // a body that does not parse
	forged := strings.Repeat("f0", 20)        // a valid body, not this hash's
	sched := prefix + "schedule/" + idA + "/" // A's schedule
	planted := []struct {
		name   string // key under A's schedule
		value  []byte
		reason string // in the reported reason
	}{
		{"../../etc/evil.service", entry(goodHash, "launched"), "invalid unit name"},
		{"evil\x00.service", entry(goodHash, "launched"), "invalid unit name"},
		{"sub/dir.service", entry(goodHash, "launched"), "invalid unit name"},
		{"badhash.service", entry("not-a-hash", "launched"), "invalid unit hash"},
		{"nobody.service", entry(missing, "launched"), "missing from Consul"},
		{"unparsable.service", entry(unparsable, "launched"), "does not parse"},
		{"forged.service", entry(forged, "launched"), "not the body of that hash"},
		{"rmrf.service", entry(goodHash, "rm -rf /"), "unknown desired state"},
		{"garbage.service", []byte(`{"hash": "` + goodHash), "not a schedule entry"},
	}
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: prefix + "units/" + unparsable, Value: []byte("not a unit file\x00")}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: prefix + "units/" + forged, Value: []byte(good.String())}},
		// A unit placed on A that A's schedule does not name.
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: prefix + "placement/x.service", Value: []byte(`{"machine":"` + idA + `","job":1}`)}},
		// A state under A that A's agent never published.
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: prefix + "states/" + idA + "/foreign.service",
			Value: []byte(`{"name":"foreign.service","machine":"` + idA + `","hash":"` + goodHash + `","state":"launched"}`)}},
	}
	for _, p := range planted {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: sched + p.name, Value: p.value}})
	}
	if ok, resp, _, err := client.Txn().Txn(ops, nil); !ok || err != nil {
		t.Fatalf("planting: %v %v", resp, err)
	}
	// Consul keeps the keys as written: the agent's read sees them all.
	pairs, _, err := kv.List(sched, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range planted {
		if !slices.ContainsFunc(pairs, func(kp *api.KVPair) bool { return kp.Key == sched+p.name }) {
			t.Fatalf("Consul does not hold the planted key %q", sched+p.name)
		}
	}

	var logs logLines
	mreg := prometheus.NewRegistry()
	drv := newRecordingDriver()
	a := agent.New(agent.Config{Registry: reg, Machine: registry.Machine{ID: idA, IP: "127.0.0.7"}, Driver: drv,
		Heartbeat: m.hb, Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: agent.NewMetrics(mreg)})
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	defer stop()

	// reported returns, for each planted key, the rejection log lines
	// that name it.
	reported := func() map[string][]map[string]any {
		out := map[string][]map[string]any{}
		for _, rec := range logs.with(t, "schedule entry rejected") {
			key, _ := rec["key"].(string)
			out[key] = append(out[key], rec)
		}
		return out
	}
	settled := func(rejected float64, running ...string) func() error {
		return func() error {
			for _, name := range running {
				if got := drv.active(name); got != "active" {
					return fmt.Errorf("%s is %s in the driver, want active", name, got)
				}
			}
			if n := metricValue(t, mreg, "fleet_agent_schedule_rejected"); n != rejected {
				return fmt.Errorf("fleet_agent_schedule_rejected = %v, want %v", n, rejected)
			}
			return nil
		}
	}
	testcluster.Eventually(t, 20*time.Second, settled(float64(len(planted)), "good.service"))
	if got := drv.touched(); !slices.Equal(got, []string{"good.service"}) {
		t.Errorf("units that reached the driver: %q, want only good.service", got)
	}
	rep := reported()
	for _, p := range planted {
		recs := rep[sched+p.name]
		if len(recs) != 1 {
			t.Errorf("%q reported %d times, want once", sched+p.name, len(recs))
			continue
		}
		reason, _ := recs[0]["reason"].(string)
		if !strings.Contains(reason, p.reason) {
			t.Errorf("%q rejected because %q, want a reason containing %q", sched+p.name, reason, p.reason)
		}
		if recs[0]["action"] != "ignored, not run" || recs[0]["level"] != "WARN" {
			t.Errorf("%q logged as %v", sched+p.name, recs[0])
		}
	}
	if len(rep) != len(planted) {
		t.Errorf("%d keys reported, want the %d planted: %v", len(rep), len(planted), slices.Sorted(maps.Keys(rep)))
	}
	if n := metricValue(t, mreg, "fleet_agent_schedule_rejections_total"); n != float64(len(planted)) {
		t.Errorf("fleet_agent_schedule_rejections_total = %v, want %d", n, len(planted))
	}

	// The agent goes on following its schedule: a unit scheduled later
	// runs, a changed desired state applies, a bad entry rewritten is
	// reported again, and one made valid runs.
	schedule("later.service", idA)
	testcluster.Eventually(t, 20*time.Second, settled(float64(len(planted)), "good.service", "later.service"))
	if _, err := reg.WriteAll(ctx, lock, []registry.Write{reg.EntryWrite(idA, "good.service", &registry.Entry{Hash: goodHash, Desired: registry.Loaded})}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		if got := drv.active("good.service"); got != "inactive" {
			return fmt.Errorf("good.service is %s, want stopped (inactive)", got)
		}
		return nil
	})
	if _, err := kv.Put(&api.KVPair{Key: sched + "garbage.service", Value: []byte("[1, 2")}, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		if n := len(reported()[sched+"garbage.service"]); n != 2 {
			return fmt.Errorf("the rewritten garbage entry is reported %d times, want 2", n)
		}
		return nil
	})
	if _, err := kv.Put(&api.KVPair{Key: sched + "rmrf.service", Value: entry(goodHash, "launched")}, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, settled(float64(len(planted)-1), "later.service", "rmrf.service"))
	// An entry of a unit the machine runs turned bad is no longer trusted:
	// the unit is unloaded, and the log says so.
	if _, err := kv.Put(&api.KVPair{Key: sched + "later.service", Value: []byte("{")}, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		if drv.has("later.service") {
			return fmt.Errorf("later.service, its entry now garbage, is still in the driver")
		}
		return settled(float64(len(planted)), "rmrf.service")()
	})
	if recs := reported()[sched+"later.service"]; len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["action"]), "unloaded") {
		t.Errorf("later.service's bad entry reported as %v, want once, saying the unit is unloaded", recs)
	}

	if got, want := drv.touched(), []string{"good.service", "later.service", "rmrf.service"}; !slices.Equal(got, want) {
		t.Errorf("units that reached the driver: %q, want %q", got, want)
	}
	rep = reported()
	for _, p := range planted {
		want := 1
		if p.name == "garbage.service" {
			want = 2
		}
		if n := len(rep[sched+p.name]); n != want {
			t.Errorf("%q reported %d times over several reads, want %d", sched+p.name, n, want)
		}
	}
	if n := metricValue(t, mreg, "fleet_agent_schedule_rejections_total"); n != float64(len(planted)+2) {
		t.Errorf("fleet_agent_schedule_rejections_total = %v, want %d (the planted, the garbage again, later.service)", n, len(planted)+2)
	}
	if len(logs.with(t, "rejected schedule entry is gone or now valid")) != 1 {
		t.Error("the entry made valid was not logged as such")
	}
	select {
	case <-done:
		t.Fatal("the agent stopped")
	default:
	}
}
