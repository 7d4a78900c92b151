package main

import (
	"context"
	"errors"
	"fmt"
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

// waitFor blocks until every unit's current state is want, printing fleet's
// line for each as it gets there. With active it also waits for the init
// system to report the unit active. Blocking queries wake it on every change.
func (c *cli) waitFor(ctx context.Context, names []string, want registry.DesiredState, b blockOptions, active bool) error {
	reg, err := c.registry()
	if err != nil {
		return err
	}
	pending := map[string]bool{}
	for _, n := range names {
		pending[n] = true
	}
	told := map[string]string{} // unplaced reasons already printed
	var failed []string
	var deadline time.Time
	if b.attempts > 0 {
		deadline = time.Now().Add(time.Duration(b.attempts) * attemptPeriod)
	}
	var index uint64
	for len(pending) > 0 {
		s, err := reg.Snapshot(ctx, index, attemptPeriod)
		if err != nil {
			return c.consulErr(err)
		}
		if s.Index < index {
			index = 0
			continue
		}
		index = max(s.Index, 1)
		for _, name := range names {
			if !pending[name] {
				continue
			}
			j := s.Jobs[name]
			if j == nil {
				delete(pending, name)
				if want != registry.Inactive {
					failed = append(failed, name)
					fmt.Fprintf(c.errOut, "Unit %s was destroyed while waiting for it\n", name)
				} else {
					fmt.Fprintf(c.out, "Unit %s inactive\n", name)
				}
				continue
			}
			if j.Unplaced != "" && told[name] != j.Unplaced {
				told[name] = j.Unplaced
				fmt.Fprintf(c.errOut, "Unit %s cannot be placed yet: %s; still waiting\n", name, j.Unplaced)
			}
			if want == registry.Inactive {
				if j.Target != "" || len(s.States[name]) > 0 {
					continue // still on a machine, or still reported by one
				}
				fmt.Fprintf(c.out, "Unit %s inactive\n", name)
				delete(pending, name)
				continue
			}
			if s.CurrentState(j) != want {
				continue
			}
			st := s.States[name][j.Target]
			if active && st.Active != "active" {
				if st.Active == "failed" {
					fmt.Fprintf(c.errOut, "Unit %s failed on %s: ACTIVE=%s SUB=%s\n", name, machineLabel(s, j.Target, false), st.Active, st.Sub)
					failed = append(failed, name)
					delete(pending, name)
				}
				continue
			}
			fmt.Fprintf(c.out, "Unit %s %s on %s\n", name, want, machineLabel(s, j.Target, false))
			delete(pending, name)
		}
		if len(pending) > 0 && !deadline.IsZero() && time.Now().After(deadline) {
			var left []string
			for _, n := range names {
				if pending[n] {
					left = append(left, n)
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
