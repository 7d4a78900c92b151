package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/watch"
)

// attemptPeriod is one "block attempt", as in fleet: --block-attempts=N
// waits at most N of these.
const attemptPeriod = 2 * time.Second

// blockOptions are the waiting flags of load, start, stop and unload.
type blockOptions struct {
	attempts int
	noBlock  bool
}

// machineLabel is how fleetctl shows a machine: 8 characters of its ID, "...",
// and its IP.
func machineLabel(machines map[string]*registry.Machine, id string, full bool) string {
	m := machines[id]
	label := registry.ShortID(id) + "..."
	if full {
		label = id
	}
	if m == nil {
		return label
	}
	ip := m.IP
	if ip == "" {
		ip = "-"
	}
	return label + "/" + ip
}

// waitItem is one thing a wait is for: a unit on the machine the leader
// scheduled it to (machine ""), or a global unit's copy on one machine.
type waitItem struct {
	name    string
	machine string
}

// waitFor blocks until every unit's current state is want, printing fleet's
// line for each as it gets there. With active it also waits for the init
// system to report the unit active. It reads as the cluster changes
// (watchUntil).
func (c *cli) waitFor(ctx context.Context, names []string, want registry.DesiredState, b blockOptions, active bool) error {
	items := make([]waitItem, len(names))
	for i, n := range names {
		items[i] = waitItem{name: n}
	}
	return c.waitForItems(ctx, items, want, b, active)
}

// waitForItems is waitFor for scheduled units and global units' copies
// alike. A global copy whose machine leaves, or stops running the unit, is
// no longer waited for. With two items or more, a terminal shows how many
// got there.
func (c *cli) waitForItems(ctx context.Context, items []waitItem, want registry.DesiredState, b blockOptions, active bool) error {
	r, err := c.reader()
	if err != nil {
		return err
	}
	w := c.newWaiting(items, want, b, active)
	total := len(w.pending)
	if total == 0 {
		return nil
	}
	if total > 1 {
		defer c.live.set(c.live.current())
	}
	err = c.watchUntil(ctx, r, w.read(r), func(s *registry.Snapshot) (bool, error) {
		for _, it := range items {
			if w.pending[it] {
				w.check(s, it)
			}
		}
		if len(w.pending) == 0 {
			return true, nil
		}
		if total > 1 {
			c.live.set(fmt.Sprintf("waiting: %d/%d units %s", total-len(w.pending), total, want))
		}
		return false, w.timedOut()
	})
	if err != nil {
		return err
	}
	return w.failure()
}

// watchUntil hands settled what read reads: at once, then after each
// change to fleet's keys, until settled reports true or an error. A read
// begins no sooner than four times as long as the last one took (at most
// gatherMost) after it ended, and takes what changed meanwhile: reading
// takes at most a fifth of the time however fast the cluster changes,
// while a change after a quiet spell is read at once. With no change for
// attemptPeriod it hands settled the last read again, so that a deadline
// is checked.
func (c *cli) watchUntil(ctx context.Context, r clusterReader, read func(context.Context) (*registry.Snapshot, error), settled func(*registry.Snapshot) (bool, error)) error {
	var index uint64
	var s *registry.Snapshot
	var took time.Duration // how long the last read took
	var ended time.Time    // when it ended
	for {
		now, err := r.Changed(ctx, index, attemptPeriod)
		if err != nil {
			return c.consulErr(err)
		}
		if s == nil || now != index {
			watch.Sleep(ctx, min(4*took, gatherMost)-time.Since(ended))
			start := time.Now()
			if s, err = read(ctx); err != nil {
				return c.consulErr(err)
			}
			ended = time.Now()
			took = ended.Sub(start)
		}
		index = max(now, 1)
		if done, err := settled(s); done || err != nil {
			return err
		}
	}
}

// gatherMost is the longest a wait holds a read back (watchUntil).
const gatherMost = 500 * time.Millisecond

// read is how the wait reads the cluster: only the units still waited
// for, where they are and what machines report of them
// (registry.Registry.Tracking), unless it waits for global units' copies,
// whose fate depends on every unit and machine (shouldRun).
func (w *waiting) read(r clusterReader) func(context.Context) (*registry.Snapshot, error) {
	for _, it := range w.items {
		if it.machine != "" {
			return func(ctx context.Context) (*registry.Snapshot, error) { return r.Snapshot(ctx, 0, 0) }
		}
	}
	return func(ctx context.Context) (*registry.Snapshot, error) {
		var names []string // those still waited for
		for _, it := range w.items {
			if w.pending[it] {
				names = append(names, it.name)
			}
		}
		return r.Tracking(ctx, names, w.want == registry.Inactive)
	}
}

// waiting is one wait of waitForItems in progress.
type waiting struct {
	c        *cli
	items    []waitItem
	want     registry.DesiredState
	active   bool      // wait for the init system to report the unit active too
	attempts int       // --block-attempts, for the timeout's message
	deadline time.Time // zero: wait for ever

	pending map[waitItem]bool
	told    map[string]string // unplaced reasons already printed, by unit
	failed  []string          // units that cannot get there
}

func (c *cli) newWaiting(items []waitItem, want registry.DesiredState, b blockOptions, active bool) *waiting {
	w := &waiting{c: c, items: items, want: want, active: active, attempts: b.attempts,
		pending: map[waitItem]bool{}, told: map[string]string{}}
	for _, it := range items {
		w.pending[it] = true
	}
	if b.attempts > 0 {
		w.deadline = time.Now().Add(time.Duration(b.attempts) * attemptPeriod)
	}
	return w
}

// check looks at a pending item in snapshot s: it says what became of it,
// and stops waiting for it once it got there, failed, or can no longer get
// there.
func (w *waiting) check(s *registry.Snapshot, it waitItem) {
	j := s.Jobs[it.name]
	if j == nil {
		w.destroyed(it)
		return
	}
	if j.Unplaced != "" && w.told[it.name] != j.Unplaced {
		w.told[it.name] = j.Unplaced
		w.c.live.printf(w.c.errOut, "Unit %s cannot be placed yet: %s; still waiting\n", it.name, j.Unplaced)
	}
	if w.want == registry.Inactive {
		if j.Target != "" || len(s.States[it.name]) > 0 {
			return // still on a machine, or still reported by one
		}
		w.c.live.printf(w.c.out, "Unit %s inactive\n", it.name)
		delete(w.pending, it)
		return
	}
	machine := j.Target
	if it.machine != "" {
		machine = it.machine
	}
	st := w.reached(s, j, it, machine)
	if st == nil {
		return
	}
	if w.active && st.Active != "active" {
		if st.Active == "failed" {
			w.c.live.printf(w.c.errOut, "Unit %s failed on %s: ACTIVE=%s SUB=%s\n", it.name, machineLabel(s.Machines, machine, false), st.Active, st.Sub)
			w.failed = append(w.failed, it.name)
			delete(w.pending, it)
		}
		return
	}
	w.c.live.printf(w.c.out, "Unit %s %s on %s\n", it.name, w.want, machineLabel(s.Machines, machine, false))
	delete(w.pending, it)
}

// destroyed settles an item whose unit is gone: what an unload waits for,
// a failure for anything else.
func (w *waiting) destroyed(it waitItem) {
	delete(w.pending, it)
	if w.want == registry.Inactive {
		w.c.live.printf(w.c.out, "Unit %s inactive\n", it.name)
		return
	}
	w.failed = append(w.failed, it.name)
	w.c.live.printf(w.c.errOut, "Unit %s was destroyed while waiting for it\n", it.name)
}

// reached returns the state machine reports for job j once the item has
// reached the wanted state there, else nil. A global copy whose machine
// left, or which its machine neither reports nor should run by fleet's
// rules, is no longer waited for.
func (w *waiting) reached(s *registry.Snapshot, j *registry.Job, it waitItem, machine string) *registry.UnitState {
	st := s.States[j.Name][machine]
	if it.machine == "" {
		if s.CurrentState(j) != w.want {
			return nil
		}
		return st
	}
	if s.Machines[machine] == nil || st == nil && !shouldRun(s, machine, j.Name) {
		delete(w.pending, it)
		return nil
	}
	if st == nil || st.Hash != j.Hash.String() || st.State != w.want {
		return nil
	}
	return st
}

// timedOut is the error of a wait whose block attempts ran out with items
// still pending, nil otherwise.
func (w *waiting) timedOut() error {
	if len(w.pending) == 0 || w.deadline.IsZero() || !time.Now().After(w.deadline) {
		return nil
	}
	var left []string
	for _, it := range w.items {
		if w.pending[it] && !slices.Contains(left, it.name) {
			left = append(left, it.name)
		}
	}
	return fmt.Errorf("units %v did not reach state %s after %d block attempts; they keep their desired state (fleetctl list-unit-files --fields unit,dstate,state,reason shows where they stand)", left, w.want, w.attempts)
}

// failure is the error of a finished wait in which some units failed or
// were destroyed, nil when every item got there.
func (w *waiting) failure() error {
	if len(w.failed) > 0 {
		return errors.New("some units did not reach the wanted state: " + fmt.Sprint(w.failed))
	}
	return nil
}

// shouldRun reports whether fleet's rules have live machine run the unit
// called name (registry.Snapshot.RunsOn).
func shouldRun(s *registry.Snapshot, machine, name string) bool {
	for _, j := range s.RunsOn(machine, s.Machines[machine].Metadata) {
		if j.Name == name {
			return true
		}
	}
	return false
}
