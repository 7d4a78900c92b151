package agent

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/watch"
)

// Config is what an Agent needs.
type Config struct {
	Registry *registry.Registry
	// Machine is what the agent publishes; its Metadata is the machine's
	// configured metadata, which SetMetadata replaces. Dynamic metadata
	// (fleetctl machine-metadata) is read from Consul and merged over it.
	Machine   registry.Machine
	Driver    Driver
	Heartbeat *Heartbeat
	Log       *slog.Logger
	// LeaveOnStop unloads every unit when Run returns. Without it units
	// keep running so a restarted fleetd adopts them (the systemd driver);
	// with it the machine is drained (the exec driver, whose units are
	// fleetd's children and die with it anyway).
	LeaveOnStop bool
	// Metrics records unit states and driver calls; nil records nothing.
	Metrics *Metrics
	// Isolation tells the agent when its machine is cut off from the
	// cluster, so that it stops its units before the cluster starts them
	// elsewhere (isolation.go). Nil is a GossipWatch on Registry's Consul
	// client and Machine.IP: what a real machine runs.
	Isolation IsolationWatch
}

// Agent runs the units the leader schedules to its machine.
type Agent struct {
	cfg  Config
	have map[string]Have
	pub  *publisher

	configured chan map[string]string        // SetMetadata hands new metadata to Run
	dynamic    map[string]string             // the machine's dynamic metadata; nil until read
	last       *registry.Snapshot            // the newest schedule read
	rejected   map[string]registry.Rejection // schedule entries rejected and reported (trust.go)

	// What decides the agent's mode (Mode).
	want   map[string]Want // what the newest schedule asks of this machine; nil until read
	stale  bool            // want was read before the machine was last cut off
	fenced bool            // the machine is cut off (the isolation watch)
}

// New returns an Agent; call Run.
func New(cfg Config) *Agent {
	return &Agent{cfg: cfg, have: map[string]Have{}, pub: newPublisher(cfg), configured: make(chan map[string]string, 1)}
}

// SetMetadata replaces the machine's configured metadata, as a
// configuration reload does: Run publishes the machine again with it and
// decides again which global units the machine runs. Units scheduled here
// by the leader stay until the leader moves them (it sees the new metadata
// too). Safe to call from any goroutine.
func (a *Agent) SetMetadata(md map[string]string) {
	watch.Offer(context.Background(), a.configured, maps.Clone(md))
}

// metadata is the machine's metadata as the cluster sees it: configured,
// with the dynamic pairs merged over it.
func (a *Agent) metadata() map[string]string {
	return registry.MergeMetadata(a.cfg.Machine.Metadata, a.dynamic)
}

// watchWait bounds one blocking query, so a lost connection is noticed.
const watchWait = 5 * time.Minute

// Mode is what an agent does with its machine's schedule. Run moves
// between the modes on what it hears (a schedule read, metadata, the
// isolation watch) and after each event does what the mode asks (act).
type Mode int

// The modes, and what moves the agent between them.
const (
	// Starting: the schedule, or the machine's dynamic metadata (which
	// decides its global units), is not read yet. Nothing runs that was
	// not running. Both read: Following.
	Starting Mode = iota
	// Following: the agent runs what its schedule asks. Cut off: CutOff.
	Following
	// CutOff: the machine reaches neither Consul nor any other machine.
	// It stops every unit, leaving them loaded, before the cluster starts
	// them elsewhere. Back in reach: Returning, or Following if a schedule
	// was read meanwhile.
	CutOff
	// Returning: back in reach after being cut off; the schedule read
	// before may be out of date, as the units may have moved. It starts
	// nothing until a schedule is read again: then Following.
	Returning
)

var modeNames = [...]string{"starting", "following", "cut off", "returning"}

func (m Mode) String() string { return modeNames[m] }

// mode is the agent's mode, from what it has read: its schedule (want),
// whether the schedule predates a cut-off (stale), its dynamic metadata,
// and the isolation watch (fenced).
func (a *Agent) mode() Mode {
	switch {
	case a.want == nil:
		return Starting
	case a.fenced:
		return CutOff
	case a.stale:
		return Returning
	case a.dynamic == nil:
		return Starting
	}
	return Following
}

// act does what the agent's mode asks.
func (a *Agent) act(ctx context.Context) {
	switch a.mode() {
	case Following:
		a.reconcile(ctx, a.want)
	case CutOff:
		a.reconcile(ctx, fencedWant(a.want))
	}
}

// Run publishes the machine, then follows its schedule until ctx is done.
// Units it finds installed are adopted; those no longer scheduled here are
// stopped before the machine is published. A machine cut off from every
// other machine stops its units (isolation.go). On the way out, with
// LeaveOnStop, it unloads every unit it runs, so the leader can place them
// elsewhere at once.
func (a *Agent) Run(ctx context.Context) error {
	snaps := make(chan *registry.Snapshot, 1)
	go a.watch(ctx, snaps)
	dynamic := make(chan map[string]string, 1)
	go a.watchMetadata(ctx, a.cfg.Machine.ID, dynamic)
	a.adopt(ctx)
	replaced := a.cfg.Heartbeat.Replaced()
	a.publishStates(true) // the machine first, then its units' states
	pubDone := make(chan struct{})
	go func() { a.pub.run(ctx); close(pubDone) }()
	resync := time.NewTicker(30 * time.Second)
	defer resync.Stop()
	cutoff := make(chan bool)
	go a.isolationWatch().Watch(ctx, cutoff)
	for {
		select {
		case <-ctx.Done():
			<-pubDone
			if a.cfg.LeaveOnStop {
				a.shutdown()
			}
			return nil
		case s := <-snaps:
			a.scheduleRead(s)
		case md := <-a.configured:
			if !a.configuredChanged(md) {
				continue
			}
		case md := <-dynamic:
			if !a.dynamicChanged(md) {
				continue
			}
		case fenced := <-cutoff:
			a.cutOff(ctx, fenced, snaps)
		case <-a.cfg.Driver.Changes():
			a.publishStates(false)
			continue
		case <-replaced:
			// A new session holds nothing: publish everything again.
			replaced = a.cfg.Heartbeat.Replaced()
			a.publishStates(true)
			continue
		case <-resync.C:
			a.publishStates(false)
		}
		a.act(ctx)
	}
}

// adopt takes over the units it finds installed. A machine that comes back
// with units (after a reboot, or a fleetd down too long) stops the copies
// that moved away while it was gone before it shows itself to the cluster.
func (a *Agent) adopt(ctx context.Context) {
	have, err := a.cfg.Driver.Existing(ctx)
	if err != nil {
		a.cfg.Log.Error("reading units already installed failed; they will be reloaded", "err", err)
		return
	}
	for name, h := range have {
		a.have[name] = h
		a.cfg.Log.Info("adopted unit already installed", "unit", name, "launched", h.Launched)
	}
	if len(a.have) > 0 {
		if s := a.firstSchedule(ctx); s != nil {
			a.want = a.wanted(s)
			a.reconcile(ctx, a.want)
		}
	}
}

// scheduleRead takes a new read of the machine's schedule.
func (a *Agent) scheduleRead(s *registry.Snapshot) {
	a.last = s
	a.reportRejected(s.Rejected)
	a.want, a.stale = a.wanted(s), false
}

// configuredChanged takes the machine's new configured metadata
// (SetMetadata): it publishes it and decides its global units again. It
// reports whether the metadata changed.
func (a *Agent) configuredChanged(md map[string]string) bool {
	if maps.Equal(md, a.cfg.Machine.Metadata) {
		return false
	}
	a.cfg.Log.Info("configured metadata changed", "metadata", md)
	a.cfg.Machine.Metadata = md
	a.pub.setMachine(a.cfg.Machine, a.metadata())
	if a.last != nil {
		a.want = a.wanted(a.last)
	}
	return true
}

// dynamicChanged takes the machine's dynamic metadata, as read from
// Consul, and reports whether it changed.
func (a *Agent) dynamicChanged(md map[string]string) bool {
	if a.dynamic != nil && maps.Equal(md, a.dynamic) {
		return false
	}
	before := a.metadata()
	a.dynamic = md
	if now := a.metadata(); !maps.Equal(before, now) {
		a.cfg.Log.Info("dynamic metadata changed", "dynamic", md, "metadata", now)
		a.pub.setMeta(now)
	}
	if a.last != nil {
		a.want = a.wanted(a.last)
	}
	return true
}

// cutOff takes the isolation watch's verdict: cut off, or in reach again,
// when it reads the schedule afresh.
func (a *Agent) cutOff(ctx context.Context, fenced bool, snaps chan *registry.Snapshot) {
	a.fenced = fenced
	if fenced {
		a.stale = true
		a.cfg.Log.Warn("machine is cut off from Consul and every other machine: stopping its units before the cluster starts them elsewhere")
		return
	}
	a.cfg.Log.Info("machine reaches the cluster again: reading its schedule before it starts anything")
	go a.refresh(ctx, snaps)
}

// watch follows the jobs with blocking queries and hands the newest snapshot
// over, dropping older unread ones.
func (a *Agent) watch(ctx context.Context, out chan *registry.Snapshot) {
	watch.Follow(ctx, a.cfg.Log, "watching the schedule failed; units keep running, retrying", out,
		func(index uint64) (*registry.Snapshot, uint64, error) {
			s, err := a.cfg.Registry.MachineSchedule(ctx, a.cfg.Machine.ID, index, watchWait)
			if err != nil {
				return nil, 0, err
			}
			return s, s.Index, nil
		})
}

// watchMetadata follows the machine's dynamic metadata the same way.
func (a *Agent) watchMetadata(ctx context.Context, machine string, out chan map[string]string) {
	kept := false
	watch.Follow(ctx, a.cfg.Log, "watching the machine's dynamic metadata failed, retrying", out,
		func(index uint64) (map[string]string, uint64, error) {
			if !kept { // so the watch does not wake on every write elsewhere
				if err := a.cfg.Registry.KeepMetadataDir(ctx, machine); err != nil {
					return nil, 0, err
				}
				kept = true
			}
			return a.cfg.Registry.DynamicMetadata(ctx, machine, index, watchWait)
		})
}

// firstSchedule reads the schedule for a fleetd that found units installed
// when it started. When Consul does not answer within firstScheduleWait
// (an outage) it returns nil and the units keep running until it does.
func (a *Agent) firstSchedule(ctx context.Context) *registry.Snapshot {
	ctx, cancel := context.WithTimeout(ctx, firstScheduleWait)
	defer cancel()
	s := a.readSchedule(ctx, 500*time.Millisecond)
	if s == nil {
		a.cfg.Log.Warn("could not read the schedule at start; keeping the units found until it can be read")
		return nil
	}
	// The global units this machine keeps depend on its dynamic metadata.
	for {
		md, _, err := a.cfg.Registry.DynamicMetadata(ctx, a.cfg.Machine.ID, 0, 0)
		if err == nil {
			a.dynamic = md
			break
		}
		if ctx.Err() != nil {
			a.cfg.Log.Warn("could not read the machine's dynamic metadata at start; keeping the units found until it can be read")
			return nil
		}
		watch.Sleep(ctx, 500*time.Millisecond)
	}
	a.last = s
	a.reportRejected(s.Rejected)
	return s
}

// firstScheduleWait bounds firstSchedule.
const firstScheduleWait = 15 * time.Second

// refresh reads the schedule once, without waiting for a change, and hands
// it over: a machine that was cut off must not act on what it read before.
// The blocking query in flight may not return for minutes when nothing
// changed meanwhile.
func (a *Agent) refresh(ctx context.Context, out chan *registry.Snapshot) {
	if s := a.readSchedule(ctx, time.Second); s != nil {
		watch.Offer(ctx, out, s)
	}
}

// readSchedule reads the schedule without waiting for a change, retrying
// after pause until it is read; nil when ctx ends first.
func (a *Agent) readSchedule(ctx context.Context, pause time.Duration) *registry.Snapshot {
	for {
		s, err := a.cfg.Registry.MachineSchedule(ctx, a.cfg.Machine.ID, 0, 0)
		if err == nil {
			return s
		}
		if ctx.Err() != nil {
			return nil
		}
		a.cfg.Log.Warn("reading the schedule failed, retrying", "err", err)
		watch.Sleep(ctx, pause)
	}
}

// wanted picks out what the snapshot asks of this machine (Wanted): the
// agent, not the leader, decides which global units run here, as in fleet.
func (a *Agent) wanted(s *registry.Snapshot) map[string]Want {
	return Wanted(s, a.cfg.Machine.ID, a.metadata())
}

// Wanted is what a machine should run (registry.Snapshot.RunsOn), with each
// unit's body, hash and whether to start it.
func Wanted(s *registry.Snapshot, machine string, metadata map[string]string) map[string]Want {
	want := map[string]Want{}
	for _, j := range s.RunsOn(machine, metadata) {
		want[j.Name] = Want{Unit: j.Unit, Hash: j.Hash, Launched: j.Desired == registry.Launched}
	}
	return want
}

// taskWorkers bounds how many tasks of one kind run at once. systemd runs
// the jobs queued together in parallel, as it does for one
// "systemctl start --no-block" of many units; a task itself mostly waits on
// a D-Bus round trip or a job's result.
const taskWorkers = 64

// reconcile does the tasks that turn what the machine has into want: the
// unloads, then the loads, one Sync for both, then the stops and the
// starts. The tasks of one kind run together; a unit whose step failed
// waits for the next pass.
func (a *Agent) reconcile(ctx context.Context, want map[string]Want) {
	tasks := Plan(want, a.have)
	failed := map[string]bool{}
	changed := false // loads or unloads the init system has not seen yet
	for _, kind := range []TaskKind{Unload, Load, Stop, Start} {
		var batch []Task
		for _, t := range tasks {
			if t.Kind == kind && !failed[t.Name] {
				batch = append(batch, t)
			}
		}
		if len(batch) == 0 {
			continue
		}
		if changed && (kind == Stop || kind == Start) {
			a.sync(ctx)
			changed = false
		}
		a.run(ctx, batch, failed)
		changed = changed || kind == Unload || kind == Load
	}
	if changed {
		a.sync(ctx)
	}
	a.publishStates(false)
}

// run does tasks, up to taskWorkers at once, then records each result in
// order: what the machine has, metrics, the log, and failed.
func (a *Agent) run(ctx context.Context, tasks []Task, failed map[string]bool) {
	errs := make([]error, len(tasks))
	sem := make(chan struct{}, taskWorkers)
	var wg sync.WaitGroup
	for i, t := range tasks {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = a.drive(ctx, t)
		}()
	}
	wg.Wait()
	for i, t := range tasks {
		err := errs[i]
		a.cfg.Metrics.driverOp(t.Kind.String(), err)
		if err != nil {
			failed[t.Name] = true
			a.cfg.Log.Error("unit task failed", "unit", t.Name, "task", t.Kind.String(), "err", err)
			continue
		}
		a.done(t)
		a.cfg.Log.Info("unit task done", "unit", t.Name, "task", t.Kind.String())
	}
}

// sync makes the init system see the loads and unloads made (systemd's
// daemon-reload).
func (a *Agent) sync(ctx context.Context) {
	err := a.cfg.Driver.Sync(ctx)
	a.cfg.Metrics.driverOp("sync", err)
	if err != nil {
		a.cfg.Log.Error("reloading the init system failed", "err", err)
	}
}

// drive asks the driver to do t.
func (a *Agent) drive(ctx context.Context, t Task) error {
	d := a.cfg.Driver
	switch t.Kind {
	case Unload:
		return d.Unload(ctx, t.Name)
	case Load:
		return d.Load(ctx, t.Name, t.Want.Unit)
	case Start:
		return d.Start(ctx, t.Name)
	case Stop:
		return d.Stop(ctx, t.Name)
	}
	return nil
}

// done records what a task the driver did changed on the machine.
func (a *Agent) done(t Task) {
	switch t.Kind {
	case Unload:
		delete(a.have, t.Name)
	case Load:
		a.have[t.Name] = Have{Hash: t.Want.Hash}
	case Start:
		a.have[t.Name] = Have{Hash: a.have[t.Name].Hash, Launched: true}
	case Stop:
		a.have[t.Name] = Have{Hash: a.have[t.Name].Hash}
	}
}

// shutdown unloads every unit this agent runs.
func (a *Agent) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name := range a.have {
		err := a.cfg.Driver.Unload(ctx, name)
		a.cfg.Metrics.driverOp(Unload.String(), err)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			a.cfg.Log.Error("unloading unit at shutdown failed", "unit", name, "err", err)
		}
	}
	a.have = map[string]Have{}
	a.pub.leave(ctx)
}
