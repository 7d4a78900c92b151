package scale

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// BenchOptions configure Run.
type BenchOptions struct {
	Fleetd, Fleetctl string // the binaries (testcluster.BuildBinaries)
	// CompareFleetctl, when set, is another fleetctl binary (an earlier
	// build, say) whose list commands are timed too, each run beside
	// Fleetctl's, against the same cluster.
	CompareFleetctl string
	Machines        int // simulated machines, beside the two real fleetds
	Units           int // units started, instances of one template
	// FleetdArgs are more flags for the leading fleetd (such as the one
	// that selects the native build of the default policy).
	FleetdArgs []string
	TTL        time.Duration // the simulated machines' heartbeat TTL; 30s when zero
	FleetdTTL  time.Duration // the real fleetds' --agent-ttl; fleetd's default (10s) when zero
	// Timeout bounds the time from the first submit until every unit is
	// acknowledged; 15 minutes when zero.
	Timeout time.Duration
	Chunk   int // units per fleetctl start; 500 when zero
	// SubmitPause, when set, submits the template this long before the
	// first start, and the time is counted from that start: the starts
	// then find the leader after a quiet spell, as when an operator starts
	// instances of a template submitted earlier.
	SubmitPause time.Duration
	// Wait makes each fleetctl start wait until its units run, as it does
	// unless told --no-block, before the next command.
	Wait     bool
	Dir      string    // unit file, logs; a temporary directory when empty
	Progress io.Writer // what Run is doing; discarded when nil
	// Baseline is how long the idle cluster is watched before the submit,
	// to tell its own traffic (heartbeats) from the units'; 5s when zero.
	Baseline time.Duration
	// ConsulAgents is how many Consul client agents the simulated
	// machines are spread over (Options.ConsulAgents); with zero they all
	// talk to the server's agent. The real fleetds talk to the server's.
	ConsulAgents int
	// AgentHCL is more configuration for each client agent, one block
	// per element, after the harness's own.
	AgentHCL []string
	// SettleLimit bounds the wait, after the last acknowledgement, for
	// Consul's raft log to stop growing; 3 minutes when zero.
	SettleLimit time.Duration
	// ConsulDev runs the server in Consul's dev mode, as the tests and
	// fleetd dev do. By default it is a single-node server as a real
	// cluster runs one, its raft log and snapshots in memory (/dev/shm)
	// where there is one: dev mode also pretty-prints every HTTP answer,
	// which at 10,000 units makes reads about twice the bytes.
	ConsulDev bool
	// CPUProfile, when set, receives a CPU profile of this process (the
	// simulated machines and the harness) from the first submit until
	// every unit is acknowledged.
	CPUProfile io.Writer
}

// Result is what Run measured.
type Result struct {
	Machines, Units int  // Machines counts the two real fleetds
	ConsulAgents    int  // Consul client agents the simulated machines use
	ConsulDev       bool // the server ran in dev mode (BenchOptions.ConsulDev)
	Wait            bool // each fleetctl start waited for its units (BenchOptions.Wait)
	// Elapsed is from the first fleetctl command (submitting the template)
	// to every unit reported launched and active by its machine.
	Elapsed time.Duration
	// Submit is the wall time of the fleetctl commands, and SubmitCPU
	// their CPU time.
	Submit    time.Duration
	SubmitCPU time.Duration
	// Seen is how the end of Elapsed was seen, by StateLog.Counts: the
	// simulated machines' state writes observed in this process as they
	// returned, and Run's blocking reads of the two real fleetds' own
	// states ("read"), whose writes this process does not see.
	Seen map[string]int64

	// Consul's operations from the first submit until the cluster settled:
	// Raft is Consul's raft log entries (writes) by kind, HTTP its HTTP
	// requests by method and path (to the server and every client agent);
	// Baseline is what an idle cluster does in the same time, measured
	// before the submit.
	Raft, HTTP, Baseline   map[string]float64
	Window, BaselineWindow time.Duration
	// Requests by client: fleetctl (its --debug lines), the simulated
	// agents (counted in this process), and Run's own (the real fleetds'
	// states and the settle scrapes' reads), over Window.
	Fleetctl, Agents, Bench map[string]int64
	AgentsBaseline          map[string]int64 // the agents' requests while idle, over BaselineWindow

	ListUnits, ListUnitFiles []time.Duration // 5 runs each
	// ListUnitsCPU is the CPU each list-units run took (fleetctl's user and
	// system time), and ListUnitsBusy the cores the rest of the host (the
	// cluster's other processes: Consul's, the fleetds', the simulated
	// machines') used while it ran.
	ListUnitsCPU  []time.Duration
	ListUnitsBusy []float64
	// The same with BenchOptions.CompareFleetctl; nil without it.
	CompareListUnits, CompareListUnitFiles []time.Duration
	// Unsettled is how fast Consul's raft log still grew (entries/s) when
	// Run stopped waiting for it to settle; 0 when it settled.
	Unsettled            float64
	LeaderRSS, LeaderHWM int64 // kB, once settled
	IdleRSS, IdleHWM     int64 // kB
	// ConsulRSS is the Consul server's VmRSS and AgentsRSS the client
	// agents' added up, HarnessRSS this process's (the simulated
	// machines), in kB.
	ConsulRSS, AgentsRSS, HarnessRSS int64
	Goroutines, OpenFiles            int                // this process's, once settled
	CPU                              map[string]float64 // CPU seconds from the first submit to every unit acknowledged
	IdleCPU                          map[string]float64 // CPU seconds over BaselineWindow, before the submit
	// SettledCPU is the CPU seconds from the first submit until Consul
	// settled, over SettledWindow: what the units cost, trailing catalog
	// syncs included.
	SettledCPU    map[string]float64
	SettledWindow time.Duration
	Leader        Metrics // the leader's metrics delta over Window
	// LeaderBaseline is the leader's metrics delta over BaselineWindow.
	LeaderBaseline Metrics
	PerMachine     map[string]int
	// Simulated is how many units each simulated machine's driver runs
	// (by machine ID) once Consul settled.
	Simulated map[string]int
}

// PlacementsPerSecond is units over Elapsed.
func (r *Result) PlacementsPerSecond() float64 { return float64(r.Units) / r.Elapsed.Seconds() }

// Run starts Consul, the leading fleetd, an idle fleetd (--disable-engine)
// and the simulated machines, starts o.Units units with fleetctl, waits
// until each is acknowledged by its machine, measures, and stops
// everything it started.
func Run(ctx context.Context, o BenchOptions) (res *Result, err error) {
	if o.Chunk == 0 {
		o.Chunk = 500
	}
	for _, bin := range []*string{&o.Fleetd, &o.Fleetctl, &o.CompareFleetctl} {
		if *bin == "" {
			continue // no fleetctl to compare with
		}
		if *bin, err = filepath.Abs(*bin); err != nil {
			return nil, err
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "fleet-scale-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(o.Dir)
	} else if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	b := &bench{o: o, res: &Result{Machines: o.Machines + 2, Units: o.Units, ConsulAgents: o.ConsulAgents, ConsulDev: o.ConsulDev, Wait: o.Wait, CPU: map[string]float64{}}}
	defer b.stop()
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	if err := b.run(ctx); err != nil {
		return nil, err
	}
	return b.res, nil
}

type bench struct {
	o      BenchOptions
	res    *Result
	consul *testcluster.Consul
	leader *testcluster.Machine
	idle   *testcluster.Machine
	sim    *Harness
	reg    *registry.Registry
	client *api.Client
	own    *RequestCounter // Run's own requests
	logs   []*os.File
	// dataDir is the Consul server's data, removed at the end; "" in dev
	// mode.
	dataDir string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Progress, "scale: "+format+"\n", args...)
}

func (b *bench) logFile(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(b.o.Dir, name))
	if err == nil {
		b.logs = append(b.logs, f)
	}
	return f, err
}

// consulHCL raises the per-client connection limit (every simulated
// machine's blocking queries come from 127.0.0.1; Consul allows 200) as far
// as the open-file limit lets Consul, and keeps Prometheus counters, which
// are cumulative, for the deltas.
func consulHCL() []string {
	conns := uint64(4096)
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur > 2*conns {
		conns = lim.Cur - 1024
	}
	return []string{
		fmt.Sprintf("limits { http_max_conns_per_client = %d }", conns),
		`telemetry { prometheus_retention_time = "24h", disable_hostname = true }`,
	}
}

func (b *bench) start(ctx context.Context) error {
	clog, err := b.logFile("consul.log")
	if err != nil {
		return err
	}
	b.logf("starting Consul")
	var dataDir string
	if !b.o.ConsulDev {
		if dataDir, err = os.MkdirTemp(memDir(), "fleet-consul-server-"); err != nil {
			return err
		}
		b.dataDir = dataDir
	}
	bin, err := testcluster.ConsulBinary(ctx, b.o.Progress)
	if err != nil {
		return err
	}
	// pprof at /debug/pprof (enable_debug), as the dev server and the
	// client agents have it: where Consul's CPU goes is the question at
	// scale.
	if b.consul, err = testcluster.StartConsul(ctx, testcluster.ConsulOptions{Binary: bin, Log: clog, HCL: append(consulHCL(), "enable_debug = true"), DataDir: dataDir,
		// Consul's own failure detection, not dev mode's tenfold one: the
		// client agents share two cores with everything else, and a
		// client agent taken for failed invalidates the sessions of every
		// machine on it.
		Gossip: testcluster.ConsulDefaultGossip}); err != nil {
		return err
	}
	b.logf("Consul at %s (pid %d)", b.consul.URL(), b.consul.PID())
	b.own = &RequestCounter{}
	if b.client, _, err = newClient(b.consul.URL(), 4, b.own, nil); err != nil {
		return err
	}
	b.reg = registry.New(b.client, "")
	// The leader first, so it holds the lock before anything else joins.
	b.logf("starting the leading fleetd")
	if b.leader, err = b.fleetd("leader", "127.0.3.1", b.o.FleetdArgs...); err != nil {
		return err
	}
	if err := b.waitLeader(ctx, b.leader.ID); err != nil {
		return err
	}
	b.logf("leader %s (pid %d)", registry.ShortID(b.leader.ID), b.leader.PID())
	b.logf("starting an idle fleetd (--disable-engine)")
	if b.idle, err = b.fleetd("idle", "127.0.3.2", "--disable-engine"); err != nil {
		return err
	}
	alog, err := b.logFile("agents.log")
	if err != nil {
		return err
	}
	if b.o.ConsulAgents > 0 {
		b.logf("starting %d simulated machines on %d Consul client agents", b.o.Machines, b.o.ConsulAgents)
	} else {
		b.logf("starting %d simulated machines on the server's Consul agent", b.o.Machines)
	}
	t := time.Now()
	if b.sim, err = Start(ctx, Options{Endpoint: b.consul.URL(), Machines: b.o.Machines, TTL: b.o.TTL, Log: alog,
		ConsulAgents: b.o.ConsulAgents, Join: b.consul.SerfLANAddr, ConsulBinary: b.consul.Bin(),
		// pprof at /debug/pprof, as the dev server has it.
		ConsulHCL: append(append(consulHCL(), "enable_debug = true"), b.o.AgentHCL...), AgentLogs: b.o.Dir,
		Progress: b.o.Progress}); err != nil {
		return err
	}
	if err := b.sim.Wait(ctx); err != nil {
		return err
	}
	if err := b.waitMachines(ctx, b.o.Machines+2); err != nil {
		return err
	}
	b.logf("%d machines joined in %s", b.o.Machines, time.Since(t).Round(time.Millisecond))
	return nil
}

// waitMachines waits until n machines are published.
func (b *bench) waitMachines(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var index uint64
	for {
		keys, meta, err := b.client.KV().Keys(b.reg.Prefix()+"machines/", "", (&api.QueryOptions{WaitIndex: index}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("waiting for %d machines: %w (logs in %s)", n, err, b.o.Dir)
		}
		if len(keys) == n {
			return nil
		}
		index = meta.LastIndex
	}
}

func (b *bench) fleetd(name, ip string, extra ...string) (*testcluster.Machine, error) {
	return testcluster.StartMachine(testcluster.MachineOptions{
		Fleetd: b.o.Fleetd, ConsulURL: b.consul.URL(), IP: ip, Metadata: "hostname=" + name,
		Dir: filepath.Join(b.o.Dir, name), Extra: extra, TTL: b.o.FleetdTTL,
	})
}

// waitLeader waits until machine id holds the leader lock.
func (b *bench) waitLeader(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var index uint64
	for {
		holder, i, err := b.reg.Leader(ctx, index)
		if err != nil {
			return fmt.Errorf("the leading fleetd did not take the lock (see %s/leader/fleetd.log): %w", b.o.Dir, err)
		}
		if holder == id {
			return nil
		}
		index = max(i, 1)
	}
}

func (b *bench) stop() {
	if b.sim != nil {
		b.sim.Stop(false)
	}
	var wg sync.WaitGroup
	for _, m := range []*testcluster.Machine{b.leader, b.idle} {
		if m != nil {
			wg.Add(1)
			go func() { defer wg.Done(); m.Stop() }()
		}
	}
	wg.Wait()
	if b.consul != nil {
		b.consul.Stop()
	}
	if b.dataDir != "" {
		os.RemoveAll(b.dataDir)
	}
	for _, f := range b.logs {
		f.Close()
	}
}

// run starts the units and measures, in the order the figures need: the
// idle cluster first, then the submit until every unit is acknowledged,
// then the cluster once it settled.
func (b *bench) run(ctx context.Context) error {
	names, err := b.writeUnits()
	if err != nil {
		return err
	}
	at, err := b.baseline(ctx)
	if err != nil {
		return err
	}
	start, err := b.submit(ctx, names, at.leaderURL)
	if err != nil {
		return err
	}
	b.res.CPU = b.cpuSince(at.cpu)
	after, err := b.settle(ctx)
	if err != nil {
		return err
	}
	b.res.Window = time.Since(start)
	b.res.SettledCPU, b.res.SettledWindow = b.cpuSince(at.cpu), time.Since(at.cpuAt)
	b.countOperations(ctx, at, after)
	// After the measured window: one read of the whole cluster.
	if err := b.verify(ctx, names); err != nil {
		return err
	}
	if err := b.timeLists(ctx, len(names)); err != nil {
		return err
	}
	return b.readMemory()
}

// marks are the counters as they were before the submit: the figures of
// the run are deltas from them.
type marks struct {
	agentsIdle map[string]int64   // the simulated agents' requests when the baseline began
	consul     Metrics            // Consul's telemetry
	leaderURL  string             // where the leading fleetd serves its metrics
	leader     Metrics            // its metrics; nil when they could not be read
	cpu        map[string]float64 // b.cpu()
	cpuAt      time.Time          // when cpu was read
	agents     map[string]int64   // the simulated agents' requests
	own        map[string]int64   // Run's own requests
}

// writeUnits writes the units' template into Dir and returns the names of
// the Units instances to start.
func (b *bench) writeUnits() ([]string, error) {
	tpl := "[Unit]\nDescription=fleet scale benchmark %i\n\n[Service]\nExecStart=/bin/sleep infinity\n"
	if err := os.WriteFile(filepath.Join(b.o.Dir, "bench@.service"), []byte(tpl), 0o644); err != nil {
		return nil, err
	}
	names := make([]string, b.o.Units)
	for i := range names {
		names[i] = fmt.Sprintf("bench@%d.service", i+1)
	}
	return names, nil
}

// baseline measures what the idle cluster does (heartbeats) over
// BaselineWindow, to tell it from the units' cost, and returns the
// counters the run's figures start from.
func (b *bench) baseline(ctx context.Context) (marks, error) {
	b.waitLeaderQuiet(ctx)
	idle0, err := b.scrapeConsul(ctx)
	if err != nil {
		return marks{}, err
	}
	at := marks{agentsIdle: b.sim.Requests.Counts(), leaderURL: b.leaderMetricsURL(ctx)}
	leader0, _ := Scrape(ctx, at.leaderURL)
	b.res.BaselineWindow = cmp.Or(b.o.Baseline, 5*time.Second)
	idleCPU := b.cpu()
	sleep(ctx, b.res.BaselineWindow)
	b.res.IdleCPU = b.cpuSince(idleCPU)
	if at.consul, err = b.scrapeConsul(ctx); err != nil {
		return marks{}, err
	}
	b.res.Baseline = idle0.Delta(at.consul)
	if at.leader, err = Scrape(ctx, at.leaderURL); err == nil && leader0 != nil {
		b.res.LeaderBaseline = leader0.Delta(at.leader)
	}
	at.cpu, at.cpuAt = b.cpu(), time.Now()
	at.agents, at.own = b.sim.Requests.Counts(), b.own.Counts()
	return at, nil
}

// waitLeaderQuiet waits, at most 30 s, until the leading fleetd uses less
// than a tenth of a core over half a second: it compiles its policy when
// it starts, which must not count as what the idle cluster does.
func (b *bench) waitLeaderQuiet(ctx context.Context) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		cpu0 := cpuSeconds(b.leader.PID())
		sleep(ctx, 500*time.Millisecond)
		if cpuSeconds(b.leader.PID())-cpu0 < 0.05 {
			return
		}
	}
}

// submit starts the units with fleetctl, the template (SubmitPause before
// the rest) and then Chunk units per command, waits until each is
// acknowledged by its machine, and returns when it started.
func (b *bench) submit(ctx context.Context, names []string, leaderURL string) (time.Time, error) {
	b.res.Fleetctl = map[string]int64{} // b.fleetctl counts its requests there
	b.logf("starting %d units with fleetctl, %d per command", b.o.Units, b.o.Chunk)
	acked := b.sim.States.Await(names)
	// The real fleetds run units too, and their state writes do not pass
	// through this process: read each one's own states/<id>/, which
	// changes only with its own units.
	readCtx, stopReads := context.WithCancel(ctx)
	var reads sync.WaitGroup
	for _, m := range []*testcluster.Machine{b.leader, b.idle} {
		reads.Add(1)
		go func() { defer reads.Done(); b.followStates(readCtx, m.ID) }()
	}
	defer func() { stopReads(); reads.Wait() }()
	if b.o.CPUProfile != nil {
		if err := pprof.StartCPUProfile(b.o.CPUProfile); err != nil {
			return time.Now(), fmt.Errorf("scale: CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if b.o.SubmitPause > 0 {
		if err := b.fleetctl(ctx, "submit", "bench@.service"); err != nil {
			return time.Now(), err
		}
		sleep(ctx, b.o.SubmitPause)
	}
	start := time.Now()
	waitCtx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	var done time.Time
	waited := make(chan error, 1)
	go func() {
		var err error
		done, err = b.waitAcked(waitCtx, acked, len(names), leaderURL)
		waited <- err
	}()
	if b.o.SubmitPause == 0 {
		if err := b.fleetctl(ctx, "submit", "bench@.service"); err != nil {
			return start, err
		}
	}
	for i := 0; i < len(names); i += b.o.Chunk {
		t := time.Now()
		chunk := names[i:min(i+b.o.Chunk, len(names))]
		args := []string{"start", "--no-block"}
		if b.o.Wait {
			args = args[:1]
		}
		if err := b.fleetctl(ctx, append(args, chunk...)...); err != nil {
			return start, err
		}
		if len(names) > 4*b.o.Chunk {
			b.logf("fleetctl start: %d units in %s", len(chunk), time.Since(t).Round(time.Millisecond))
		}
	}
	b.res.Submit = time.Since(start)
	b.logf("fleetctl done in %s", b.res.Submit.Round(time.Millisecond))
	if err := <-waited; err != nil {
		return start, err
	}
	b.res.Elapsed = done.Sub(start)
	b.res.Seen = b.sim.States.Counts()
	b.logf("all %d units acknowledged in %s: %.0f placements/s", len(names), b.res.Elapsed.Round(time.Millisecond), b.res.PlacementsPerSecond())
	return start, nil
}

// countOperations records what the run cost since at: Consul's raft
// entries and HTTP requests until after, the leader's metrics, the
// simulated agents' requests (and theirs while idle) and Run's own.
func (b *bench) countOperations(ctx context.Context, at marks, after Metrics) {
	b.res.Raft, b.res.HTTP = map[string]float64{}, map[string]float64{}
	for k, v := range at.consul.Delta(after) {
		switch {
		case k == "consul_raft_apply":
			b.res.Raft["total"] = v
		case raftKind(k) != "":
			b.res.Raft[raftKind(k)] = v
		case strings.HasPrefix(k, "consul_api_http_count{"):
			b.res.HTTP[Label(k, "method")+" "+Label(k, "path")] = v
		}
	}
	if leaderAfter, err := Scrape(ctx, at.leaderURL); err == nil {
		b.res.Leader = at.leader.Delta(leaderAfter)
	}
	b.res.Agents, b.res.AgentsBaseline = map[string]int64{}, map[string]int64{}
	for k, v := range b.sim.Requests.Counts() {
		if x := v - at.agents[k]; x != 0 {
			b.res.Agents[k] = x
		}
		if x := at.agents[k] - at.agentsIdle[k]; x != 0 {
			b.res.AgentsBaseline[k] = x
		}
	}
	b.res.Bench = map[string]int64{}
	for k, v := range b.own.Counts() {
		if x := v - at.own[k]; x != 0 {
			b.res.Bench[k] = x
		}
	}
}

// timeLists times fleetctl list-units and list-unit-files, five runs
// each, and checks that each lists at least the units started; with
// CompareFleetctl, that binary's runs are interleaved with them.
func (b *bench) timeLists(ctx context.Context, units int) error {
	b.logf("timing fleetctl list-units and list-unit-files")
	type timed struct {
		bin, cmd string
		into     *[]time.Duration
	}
	lists := []timed{{b.o.Fleetctl, "list-units", &b.res.ListUnits}, {b.o.Fleetctl, "list-unit-files", &b.res.ListUnitFiles}}
	if b.o.CompareFleetctl != "" {
		lists = append(lists, timed{b.o.CompareFleetctl, "list-units", &b.res.CompareListUnits}, timed{b.o.CompareFleetctl, "list-unit-files", &b.res.CompareListUnitFiles})
	}
	for range 5 {
		for _, l := range lists {
			took, used, busy, rows, err := b.list(ctx, l.bin, l.cmd)
			if err != nil {
				return err
			}
			if rows < units {
				return fmt.Errorf("%s %s printed %d rows, want at least %d", l.bin, l.cmd, rows, units)
			}
			*l.into = append(*l.into, took)
			if l.into == &b.res.ListUnits {
				b.res.ListUnitsCPU = append(b.res.ListUnitsCPU, used)
				b.res.ListUnitsBusy = append(b.res.ListUnitsBusy, busy)
			}
		}
	}
	return nil
}

// readMemory records the two fleetds' resident memory and its high-water
// mark, and what the rest of the cluster holds.
func (b *bench) readMemory() (err error) {
	b.res.ConsulRSS, _ = procStatusKB(b.consul.PID(), "VmRSS")
	for _, a := range b.sim.Agents {
		kb, _ := procStatusKB(a.PID(), "VmRSS")
		b.res.AgentsRSS += kb
	}
	b.res.HarnessRSS, _ = procStatusKB(os.Getpid(), "VmRSS")
	b.res.Goroutines, b.res.OpenFiles = runtime.NumGoroutine(), openFiles()
	if b.res.LeaderRSS, err = procStatusKB(b.leader.PID(), "VmRSS"); err != nil {
		return err
	}
	b.res.LeaderHWM, _ = procStatusKB(b.leader.PID(), "VmHWM")
	if b.res.IdleRSS, err = procStatusKB(b.idle.PID(), "VmRSS"); err != nil {
		return err
	}
	b.res.IdleHWM, _ = procStatusKB(b.idle.PID(), "VmHWM")
	return nil
}

// scrapeConsul is Consul's telemetry: the server's, with every client
// agent's added series by series (HTTP requests are counted by the agent
// that serves them; raft entries by the server alone).
func (b *bench) scrapeConsul(ctx context.Context) (Metrics, error) {
	m, err := b.scrapeServer(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range b.sim.Agents {
		am, err := b.scrapeAgent(ctx, a.URL())
		if err != nil {
			return nil, err
		}
		for k, v := range am {
			m[k] += v
		}
	}
	return m, nil
}

// scrapeServer is the Consul server's telemetry alone.
func (b *bench) scrapeServer(ctx context.Context) (Metrics, error) {
	return b.scrapeAgent(ctx, b.consul.URL())
}

// scrapeAgent reads the telemetry of the Consul agent at url, counting the
// read as Run's own.
func (b *bench) scrapeAgent(ctx context.Context, url string) (Metrics, error) {
	const path = "/v1/agent/metrics"
	b.own.add("GET " + Endpoint(path))
	return Scrape(ctx, url+path+"?format=prometheus")
}

// cpu is the CPU seconds used so far by the Consul server, the Consul
// client agents, the two fleetds and this process (the simulated machines
// and Run's own reads).
func (b *bench) cpu() map[string]float64 {
	var agents float64
	for _, a := range b.sim.Agents {
		agents += cpuSeconds(a.PID())
	}
	return map[string]float64{
		"consul":  cpuSeconds(b.consul.PID()),
		"agents":  agents,
		"leader":  cpuSeconds(b.leader.PID()),
		"idle":    cpuSeconds(b.idle.PID()),
		"harness": cpuSeconds(os.Getpid()),
	}
}

// cpuSince is the CPU seconds used since cpu0, an earlier b.cpu().
func (b *bench) cpuSince(cpu0 map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range b.cpu() {
		d[k] = v - cpu0[k]
	}
	return d
}

// fleetctl runs fleetctl as an operator would, with --debug to count its
// requests to Consul.
func (b *bench) fleetctl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, b.o.Fleetctl, append([]string{"--endpoint", b.consul.URL(), "--debug"}, args...)...)
	cmd.Dir = b.o.Dir
	var out bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &out
	err := cmd.Run()
	if cmd.ProcessState != nil {
		b.res.SubmitCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	var other []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 4 && f[0] == "DEBUG" && f[1] == "consul" {
			path, _, _ := strings.Cut(strings.TrimSuffix(f[3], ":"), "?")
			b.res.Fleetctl[f[2]+" "+Endpoint(path)]++
			continue
		}
		other = append(other, sc.Text())
	}
	if err != nil {
		return fmt.Errorf("fleetctl %s: %w\n%s", args[0], err, strings.Join(other, "\n"))
	}
	return nil
}

// list runs "fleetctl CMD" and returns its wall time, its CPU, the cores
// the rest of the host used meanwhile (the cluster's other processes;
// counted in clock ticks, to within 0.01 s of CPU), and how many rows it
// printed (the header left out).
func (b *bench) list(ctx context.Context, fleetctl, cmdName string) (took, cpu time.Duration, busy float64, rows int, err error) {
	// The output goes to a file, as with fleetctl list-units > FILE: through
	// a pipe, the time would include how soon this busy process reads it.
	out, err := os.CreateTemp(b.o.Dir, "list-*.txt")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.CommandContext(ctx, fleetctl, "--endpoint", b.consul.URL(), cmdName)
	cmd.Stdout = out
	host0, err0 := testcluster.HostBusyTime()
	t := time.Now()
	err = cmd.Run()
	took = time.Since(t)
	if host, err1 := testcluster.HostBusyTime(); err0 == nil && err1 == nil {
		busy = (host - host0).Seconds()
	}
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("fleetctl %s: %w", cmdName, err)
	}
	printed, err := os.ReadFile(out.Name())
	if err != nil {
		return 0, 0, 0, 0, err
	}
	cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return took, cpu, max(busy-cpu.Seconds(), 0) / took.Seconds(), bytes.Count(printed, []byte("\n")) - 1, nil
}

// waitAcked waits until every unit is acknowledged, as the state log sees
// the machines' writes, at most Timeout, and returns when the write that
// acknowledged the last one returned. Every 10 s it logs the progress and where the time
// goes: the processes' CPU, and the leader's passes and reads (from its
// metrics at leaderURL, which cost Consul nothing).
func (b *bench) waitAcked(ctx context.Context, acked *Await, n int, leaderURL string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(b.o.Timeout, 15*time.Minute))
	defer cancel()
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	cpu, t, was := b.cpu(), time.Now(), n-acked.Missing()
	leader, _ := Scrape(ctx, leaderURL)
	for {
		select {
		case <-acked.Done():
			return acked.At(), nil
		case <-progress.C:
			now, done := time.Now(), n-acked.Missing()
			d, w := b.cpuSince(cpu), now.Sub(t).Seconds()
			line := fmt.Sprintf("%d of %d units acknowledged (%.0f/s); cores used: consul server %.2f, client agents %.2f, leader %.2f, harness %.2f",
				done, n, float64(done-was)/w, d["consul"]/w, d["agents"]/w, d["leader"]/w, d["harness"]/w)
			if m, err := Scrape(ctx, leaderURL); err == nil && leader != nil {
				ld := leader.Delta(m)
				line += fmt.Sprintf("; leader %.0f passes (%.1f s in them), %.1f MB read", ld.Sum("fleet_leader_reconcile_duration_seconds_count"),
					ld.Sum("fleet_leader_reconcile_duration_seconds_sum"), ld.Sum("fleet_consul_read_bytes_total")/1e6)
				leader = m
			}
			b.logf("%s", line)
			cpu, t, was = b.cpu(), now, done
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d of %d units acknowledged (state writes seen: %v; logs in %s): %w",
				n-acked.Missing(), n, b.sim.States.Counts(), b.o.Dir, ctx.Err())
		}
	}
}

// followStates reads machine's states with blocking queries into the
// state log until ctx ends, at most one read per followPause: a prefix
// with no keys answers with the whole KV table's index, so without a
// pause every state written anywhere would wake the read.
func (b *bench) followStates(ctx context.Context, machine string) {
	prefix := b.reg.Prefix() + "states/" + machine + "/"
	var index uint64
	for ctx.Err() == nil {
		pairs, meta, err := b.client.KV().List(prefix, (&api.QueryOptions{WaitIndex: index, WaitTime: 30 * time.Second}).WithContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				b.logf("reading %s: %v", prefix, err)
				sleep(ctx, time.Second)
			}
			continue
		}
		states := make(map[string][]byte, len(pairs))
		for _, p := range pairs {
			unit := strings.TrimPrefix(p.Key, prefix)
			if unit != "" {
				states[unit] = p.Value
				continue
			}
			var keyed map[string]json.RawMessage // the machine key
			if json.Unmarshal(p.Value, &keyed) == nil {
				for u, v := range keyed {
					states[u] = v
				}
			}
		}
		b.sim.States.observe(machine, states, time.Now())
		// An index that went back (a Consul restored from a snapshot)
		// starts the wait over.
		if meta.LastIndex < index {
			index = 0
		} else {
			index = max(meta.LastIndex, 1)
		}
		sleep(ctx, followPause)
	}
}

// followPause is the least time between two reads of a real fleetd's
// states: a unit acknowledged there is seen up to this late.
const followPause = 100 * time.Millisecond

// verify checks, from one snapshot, that every unit is placed on a live
// machine that reports it launched and active with the unit's body, and
// counts the units per machine.
func (b *bench) verify(ctx context.Context, names []string) error {
	s, err := b.reg.Snapshot(ctx, 0, 0)
	if err != nil {
		return err
	}
	b.res.PerMachine = map[string]int{}
	var bad []string
	for _, n := range names {
		j := s.Jobs[n]
		switch {
		case j == nil:
			bad = append(bad, n+": missing")
		case j.Target == "" || s.Machines[j.Target] == nil:
			bad = append(bad, n+": not on a live machine")
		case s.States[n][j.Target] == nil || s.States[n][j.Target].Hash != j.Hash.String() ||
			s.States[n][j.Target].State != registry.Launched || s.States[n][j.Target].Active != "active":
			bad = append(bad, n+": not acknowledged by its machine")
		default:
			b.res.PerMachine[j.Target]++
		}
	}
	b.res.Simulated = map[string]int{}
	for _, m := range b.sim.Machines {
		for _, st := range m.Driver.Units() {
			if st.Active == "active" {
				b.res.Simulated[m.ID]++
			}
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%d units not acknowledged, such as %s", len(bad), strings.Join(bad[:min(5, len(bad))], "; "))
	}
	return nil
}

// settle waits until Consul's raft log grows no faster than the idle
// cluster's did (catalog syncs of the units' services can trail their
// states), reading the server's telemetry once a second (the raft log is
// the server's), and returns a scrape of every agent's. When it keeps
// growing for SettleLimit it returns anyway and records the rate in
// Result.Unsettled: the figures per unit then count only what was
// written by then.
func (b *bench) settle(ctx context.Context) (Metrics, error) {
	var last Metrics
	var lastT time.Time
	quiet := 0
	idle := b.res.Baseline["consul_raft_apply"] / b.res.BaselineWindow.Seconds()
	start := time.Now()
	limit := cmp.Or(b.o.SettleLimit, 3*time.Minute)
	for deadline := start.Add(limit); ; {
		m, err := b.scrapeServer(ctx)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		if last != nil && m["consul_raft_apply"]-last["consul_raft_apply"] <= 1.5*idle+1 {
			if quiet++; quiet == 2 {
				return b.scrapeConsul(ctx)
			}
		} else {
			quiet = 0
		}
		if last != nil && time.Now().After(deadline) {
			b.res.Unsettled = (m["consul_raft_apply"] - last["consul_raft_apply"]) / now.Sub(lastT).Seconds()
			b.logf("Consul's raft log still grows %.0f entries/s (%s) %s after every unit was acknowledged (idle: %.1f/s); measuring anyway",
				b.res.Unsettled, raftRates(last.Delta(m)), limit, idle)
			return b.scrapeConsul(ctx)
		}
		if last != nil && int(time.Since(start).Seconds())%15 == 0 {
			b.logf("settling: raft %s per second", raftRates(last.Delta(m)))
		}
		last, lastT = m, now
		sleep(ctx, time.Second)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// raftRates is the raft entries by kind in d (a one-second delta).
func raftRates(d Metrics) string {
	var parts []string
	for _, k := range sortedKeys(d) {
		if kind := raftKind(k); kind != "" {
			parts = append(parts, fmt.Sprintf("%s %.0f", kind, d[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// raftKind is the kind of raft entry that Consul's series k counts
// (consul_fsm_register_count: "register"; consul_fsm_kvs_count{op="lock"}:
// `kvs{op="lock"}`), or "" when k counts none: the FSM's snapshots
// (consul_fsm_persist) are not entries.
func raftKind(k string) string {
	if !strings.HasPrefix(k, "consul_fsm_") || !strings.Contains(k, "_count") || strings.HasPrefix(k, "consul_fsm_persist") {
		return ""
	}
	return strings.Replace(strings.TrimPrefix(k, "consul_fsm_"), "_count", "", 1)
}

// catalogKinds are the raft entries that change only Consul's catalog: a
// node, service or check registered or removed outside a transaction.
var catalogKinds = []string{"register", "deregister"}

// leaderMetricsURL is where the leading fleetd serves its metrics, from
// its fleet-agent service's meta.
func (b *bench) leaderMetricsURL(ctx context.Context) string {
	svc, _, err := b.client.Agent().Service("fleet-agent:"+b.leader.ID, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || svc.Meta["metrics-addr"] == "" {
		return ""
	}
	return "http://" + svc.Meta["metrics-addr"] + "/metrics"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
