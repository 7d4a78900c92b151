package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
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
func machineLabel(s *registry.Snapshot, id string, full bool) string {
	m := s.Machines[id]
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
// system to report the unit active. Blocking queries wake it on every change.
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
	pending := map[waitItem]bool{}
	for _, it := range items {
		pending[it] = true
	}
	total := len(pending)
	if total > 1 {
		defer c.live.set(c.live.current())
	}
	told := map[string]string{} // unplaced reasons already printed
	var failed []string
	var deadline time.Time
	if b.attempts > 0 {
		deadline = time.Now().Add(time.Duration(b.attempts) * attemptPeriod)
	}
	var index uint64
	for len(pending) > 0 {
		if total > 1 {
			c.live.set(fmt.Sprintf("waiting: %d/%d units %s", total-len(pending), total, want))
		}
		s, err := r.Snapshot(ctx, index, attemptPeriod)
		if err != nil {
			return c.consulErr(err)
		}
		if s.Index < index {
			index = 0
			continue
		}
		index = max(s.Index, 1)
		for _, it := range items {
			if !pending[it] {
				continue
			}
			name := it.name
			j := s.Jobs[name]
			if j == nil {
				delete(pending, it)
				if want != registry.Inactive {
					failed = append(failed, name)
					c.live.printf(c.errOut, "Unit %s was destroyed while waiting for it\n", name)
				} else {
					c.live.printf(c.out, "Unit %s inactive\n", name)
				}
				continue
			}
			if j.Unplaced != "" && told[name] != j.Unplaced {
				told[name] = j.Unplaced
				c.live.printf(c.errOut, "Unit %s cannot be placed yet: %s; still waiting\n", name, j.Unplaced)
			}
			machine := j.Target
			if it.machine != "" {
				machine = it.machine
			}
			if want == registry.Inactive {
				if j.Target != "" || len(s.States[name]) > 0 {
					continue // still on a machine, or still reported by one
				}
				c.live.printf(c.out, "Unit %s inactive\n", name)
				delete(pending, it)
				continue
			}
			st := s.States[name][machine]
			if it.machine != "" {
				if s.Machines[machine] == nil || st == nil {
					delete(pending, it) // the machine left, or no longer runs it
					continue
				}
				if st.Hash != j.Hash.String() || st.State != want {
					continue
				}
			} else if s.CurrentState(j) != want {
				continue
			}
			if active && st.Active != "active" {
				if st.Active == "failed" {
					c.live.printf(c.errOut, "Unit %s failed on %s: ACTIVE=%s SUB=%s\n", name, machineLabel(s, machine, false), st.Active, st.Sub)
					failed = append(failed, name)
					delete(pending, it)
				}
				continue
			}
			c.live.printf(c.out, "Unit %s %s on %s\n", name, want, machineLabel(s, machine, false))
			delete(pending, it)
		}
		if len(pending) > 0 && !deadline.IsZero() && time.Now().After(deadline) {
			var left []string
			for _, it := range items {
				if pending[it] && !slices.Contains(left, it.name) {
					left = append(left, it.name)
				}
			}
			return fmt.Errorf("units %v did not reach state %s after %d block attempts; they keep their desired state (fleetctl list-unit-files --fields unit,dstate,state,reason shows where they stand)", left, want, b.attempts)
		}
	}
	if len(failed) > 0 {
		return errors.New("some units did not reach the wanted state: " + fmt.Sprint(failed))
	}
	return nil
}
