package leader

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// ActionKind says what an Action does to the schedule.
type ActionKind int

// The two schedule writes a leader makes.
const (
	Schedule   ActionKind = iota + 1 // put the unit on Machine
	Unschedule                       // take the unit off its machine
)

// Action is one change to the schedule.
type Action struct {
	Kind    ActionKind
	Job     *registry.Job
	Machine string
	Reason  string
}

func (a Action) String() string {
	verb := map[ActionKind]string{Schedule: "schedule", Unschedule: "unschedule"}[a.Kind]
	return fmt.Sprintf("%s %s on %s: %s", verb, a.Job.Name, registry.ShortID(a.Machine), a.Reason)
}

// Unplaced is a unit no machine could take, and why.
type Unplaced struct {
	Job    *registry.Job
	Reason string
}

// Plan is what one reconcile pass decided.
type Plan struct {
	Actions  []Action
	Unplaced []Unplaced
}

// Reconcile decides the schedule changes that bring s to what the user
// asked for. It does no I/O; the same snapshot gives the same plan.
//
// In order: units whose desired state is inactive leave their machine; units
// on machines that are gone leave them; a unit sharing a machine with a unit
// that replaces it leaves it; units fleet's rules place whose machine no
// longer satisfies them leave it (recheck); then every unit that should run
// and has no machine is offered to p, in name order (MachineOf followers
// last), in one placement pass (Placer.Begin) that counts each placement in
// the load of the next.
func Reconcile(s *registry.Snapshot, p Placer) Plan {
	var plan Plan
	load := map[string][]string{}
	var unplaced []*registry.Job
	for _, name := range s.JobNames() {
		j := s.Jobs[name]
		if j.Unit != nil && j.Unit.IsGlobal(j.Name) {
			// Global units are never scheduled: every eligible machine's
			// agent runs them. A target left from before it became global
			// goes. Where they run they count, as in fleet: toward a
			// machine's load, and for the policy's rules between units.
			if j.Target != "" {
				plan.Actions = append(plan.Actions, Action{Kind: Unschedule, Job: j, Machine: j.Target, Reason: "unit is global"})
			}
			if j.Desired != registry.Inactive {
				for id := range s.States[j.Name] {
					if s.Machines[id] != nil {
						load[id] = append(load[id], j.Name)
					}
				}
			}
			continue
		}
		switch {
		case j.Target != "" && j.Desired == registry.Inactive:
			plan.Actions = append(plan.Actions, Action{Kind: Unschedule, Job: j, Machine: j.Target, Reason: "desired state is inactive"})
		case j.Target != "" && s.Machines[j.Target] == nil:
			plan.Actions = append(plan.Actions, Action{Kind: Unschedule, Job: j, Machine: j.Target, Reason: "machine went away"})
			unplaced = append(unplaced, j)
		case j.Target != "":
			load[j.Target] = append(load[j.Target], j.Name)
		case j.Desired != registry.Inactive:
			unplaced = append(unplaced, j)
		}
	}
	// A unit whose machine also runs a unit that replaces it moves (fleet's
	// Replaces): the replacer stays, the replaced unit is placed again, and
	// the policy keeps it off its replacer's machine.
	for _, id := range s.MachineIDs() {
		names := load[id]
		kept := names[:0:0]
		for _, n := range names {
			if s.Jobs[n].Target != id { // a global unit: not the leader's to move
				kept = append(kept, n)
				continue
			}
			if by := replacer(s, n, names); by != "" {
				j := s.Jobs[n]
				plan.Actions = append(plan.Actions, Action{Kind: Unschedule, Job: j, Machine: id, Reason: "replaced by " + by})
				unplaced = append(unplaced, j)
				continue
			}
			kept = append(kept, n)
		}
		load[id] = kept
	}
	// Units whose machine no longer satisfies them (its metadata changed,
	// the target of their MachineOf moved, a conflicting unit was there
	// first) move, as in fleet's engine.
	moved, left := recheck(s, p, load)
	plan.Actions = append(plan.Actions, moved...)
	unplaced = append(unplaced, left...)
	from := map[*registry.Job]string{} // rechecked units: the machine they leave
	for _, a := range moved {
		from[a.Job] = a.Machine
	}
	// Name order, except that units with MachineOf come after the rest, so
	// a follower finds its target placed in the same pass.
	sort.Slice(unplaced, func(a, b int) bool {
		fa, fb := follows(unplaced[a]), follows(unplaced[b])
		if fa != fb {
			return !fa
		}
		return unplaced[a].Name < unplaced[b].Name
	})
	// One placement pass: the Placer is given the machines and their load
	// once, then each placement it makes, which it counts in the next.
	var pass Pass
	for _, j := range unplaced {
		if j.Unit == nil {
			plan.Unplaced = append(plan.Unplaced, Unplaced{Job: j, Reason: "unit body missing from the store"})
			continue
		}
		if pass == nil {
			pass = p.Begin(candidates(s, load))
		}
		d := pass.Place(j)
		if d.Machine == "" || s.Machines[d.Machine] == nil {
			plan.Unplaced = append(plan.Unplaced, Unplaced{Job: j, Reason: whyUnplaced(d, len(s.Machines))})
			continue
		}
		pass.Placed(j, d.Machine)
		if from[j] == d.Machine {
			// The placer puts a rechecked unit back where it was: it
			// disagrees with fleet's rules, and moving it would only churn.
			plan.Actions = slices.DeleteFunc(plan.Actions, func(a Action) bool { return a.Job == j })
			continue
		}
		plan.Actions = append(plan.Actions, Action{Kind: Schedule, Job: j, Machine: d.Machine, Reason: "least loaded eligible machine"})
	}
	return plan
}

// candidates is every live machine, in ID order, with its units in load.
func candidates(s *registry.Snapshot, load map[string][]string) []Candidate {
	ids := s.MachineIDs()
	cands := make([]Candidate, len(ids))
	for k, id := range ids {
		cands[k] = Candidate{Machine: s.Machines[id], Units: load[id]}
	}
	return cands
}

func follows(j *registry.Job) bool { return j.Unit != nil && len(j.Unit.PeersFor(j.Name)) > 0 }

// replacer names the unit among others that replaces unit name, or "".
func replacer(s *registry.Snapshot, name string, others []string) string {
	j := s.Jobs[name]
	if j.Unit == nil {
		return ""
	}
	for _, o := range others {
		oj := s.Jobs[o]
		if o != name && oj.Unit != nil && unitfile.Replaces(o, oj.Unit, name, j.Unit) {
			return o
		}
	}
	return ""
}

func whyUnplaced(d Decision, machines int) string {
	if d.Error != "" {
		return "placement failed: " + d.Error
	}
	if machines == 0 {
		return "no live machines"
	}
	if d.Machine != "" {
		return fmt.Sprintf("placement chose machine %s, which is not live", d.Machine)
	}
	ids := make([]string, 0, len(d.Rejected))
	for id := range d.Rejected {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, registry.ShortID(id)+": "+d.Rejected[id])
	}
	if len(parts) == 0 {
		return "no machine accepted the unit"
	}
	return "no machine fits (" + strings.Join(parts, "; ") + ")"
}
