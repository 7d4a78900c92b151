package leader

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/sdk/xfleet"
)

// ActionKind says what an Action does to the schedule.
type ActionKind int

// The two schedule writes a leader makes.
const (
	Schedule   ActionKind = iota + 1 // put the unit on Machine
	Unschedule                       // take the unit off its machine
)

func (k ActionKind) String() string {
	return map[ActionKind]string{Schedule: "schedule", Unschedule: "unschedule"}[k]
}

// Action is one change to the schedule.
type Action struct {
	Kind    ActionKind
	Job     *registry.Job
	Machine string
	Cause   Cause  // why the unit leaves Machine (Unschedule), or CausePlaced
	Reason  string // Cause as a sentence: what the log says
	Policy  string // the policy that chose Machine (Schedule)
}

func (a Action) String() string {
	return fmt.Sprintf("%s %s on %s: %s", a.Kind, a.Job.Name, registry.ShortID(a.Machine), a.Reason)
}

// Unplaced is a unit no machine could take, and why.
type Unplaced struct {
	Job    *registry.Job
	Reason string // why, as fleetctl shows it
	Cause  Cause
}

// Plan is what one reconcile pass decided.
type Plan struct {
	Actions  []Action
	Unplaced []Unplaced
}

// Reconcile decides the schedule changes that bring s to what the user
// asked for. It does no I/O of its own (p's policies may load modules); the
// same snapshot and policies give the same plan.
//
// In order: units whose desired state is inactive leave their machine, and
// so do units on machines that are gone; a unit sharing a machine with a
// unit that replaces it leaves it; units that fleet's rules place (the
// built-in policy) and whose machine no longer satisfies them leave it;
// then every unit that should run and has no machine is offered to p, in
// name order (MachineOf followers last), in one placement pass that counts
// each placement in the load of the next.
func Reconcile(ctx context.Context, s *registry.Snapshot, p Placer) Plan {
	r := &reconciler{s: s, load: map[string][]string{}}
	r.sortOut()
	r.replace()
	r.recheck()
	r.place(ctx, p)
	return r.plan
}

// reconciler is one Reconcile: the plan so far, each live machine's units,
// and the units waiting for a machine.
type reconciler struct {
	s     *registry.Snapshot
	plan  Plan
	load  map[string][]string // machine -> units on it, in name order
	waits []*registry.Job
}

func (r *reconciler) leave(j *registry.Job, machine string, c Cause, why string) {
	r.plan.Actions = append(r.plan.Actions, Action{Kind: Unschedule, Job: j, Machine: machine, Cause: c, Reason: why})
}

// sortOut goes through the units in name order: a scheduled unit leaves
// its machine when it should not run or its machine is gone, else counts
// there; an unscheduled unit that should run waits for a machine. Then
// each machine counts the global units it runs (xfleet.Globals, as its
// agent decides), which weigh on its load and on the rules between units,
// as in fleet.
func (r *reconciler) sortOut() {
	s := r.s
	var globals []*xfleet.Spec
	for _, name := range s.JobNames() {
		j := s.Jobs[name]
		if j.Global() {
			// Global units are never scheduled: every eligible machine's
			// agent runs them. A target left from before it became global
			// goes.
			if j.Target != "" {
				r.leave(j, j.Target, CauseGlobal, "unit is global")
			}
			if j.Desired != registry.Inactive {
				globals = append(globals, j.Spec())
			}
			continue
		}
		switch {
		case j.Target != "" && j.Desired == registry.Inactive:
			r.leave(j, j.Target, CauseInactive, "desired state is inactive")
		case j.Target != "" && s.Machines[j.Target] == nil:
			r.leave(j, j.Target, CauseMachineGone, "machine went away")
			r.waits = append(r.waits, j)
		case j.Target != "":
			r.load[j.Target] = append(r.load[j.Target], j.Name)
		case j.Desired != registry.Inactive:
			r.waits = append(r.waits, j)
		}
	}
	if len(globals) == 0 {
		return
	}
	for _, id := range s.MachineIDs() {
		var scheduled []*xfleet.Spec
		for _, n := range r.load[id] {
			if sp := s.Jobs[n].Spec(); sp != nil {
				scheduled = append(scheduled, sp)
			}
		}
		for _, g := range xfleet.Globals(id, s.Machines[id].Metadata, scheduled, globals) {
			r.load[id] = append(r.load[id], g.Unit)
		}
		sort.Strings(r.load[id])
	}
}

// replace moves a unit whose machine also runs a unit that replaces it
// (fleet's Replaces), whichever policy placed it: the replacer stays, the
// replaced unit is placed again, and the rules keep it off its replacer's
// machine.
func (r *reconciler) replace() {
	s := r.s
	for _, id := range s.MachineIDs() {
		names := r.load[id]
		// Only a unit with Replaces replaces another: looking among those
		// alone keeps a machine's check linear in its units, not
		// quadratic, and finds the same replacer, in the same order.
		var replacers []string
		for _, n := range names {
			if j := s.Jobs[n]; j.Unit != nil && len(j.Spec().Replaces) > 0 {
				replacers = append(replacers, n)
			}
		}
		if len(replacers) == 0 {
			continue
		}
		kept := names[:0:0]
		for _, n := range names {
			j := s.Jobs[n]
			if j.Target == id && j.Unit != nil { // not a global unit: those are the agent's to drop
				if by := replacer(s, j, replacers); by != "" {
					rej := xfleet.Rejection{Reason: xfleet.ReplacedBy, Detail: by}
					r.leave(j, id, RuleCause(rej.Reason), rej.String())
					r.waits = append(r.waits, j)
					continue
				}
			}
			kept = append(kept, n)
		}
		r.load[id] = kept
	}
}

// replacer names the unit among others (units with a body and Replaces)
// that replaces j, or "".
func replacer(s *registry.Snapshot, j *registry.Job, others []string) string {
	for _, o := range others {
		if o != j.Name && s.Jobs[o].Spec().Replace(j.Spec()) {
			return o
		}
	}
	return ""
}

// recheck moves the units that fleet's rules place (the built-in policy)
// whose machine no longer satisfies them, as fleet's engine did: the
// machine's metadata changed, the target of their MachineOf moved, a
// conflicting unit is there. Units an uploaded policy placed stay where it
// put them: its rules are its own. Each machine's units are checked in name
// order, so of two conflicting units the first stays.
func (r *reconciler) recheck() {
	s := r.s
	for _, id := range s.MachineIDs() {
		m := &machine{s: s, m: s.Machines[id], there: r.load[id]}
		var stay []string
		for _, n := range m.there {
			j := s.Jobs[n]
			if j.Target == id && j.Unit != nil && s.PolicyOf(j) == registry.BuiltinPolicy {
				m.all = len(j.Spec().Conflicts) > 0
				if rej, failed := j.Spec().Check(m); failed {
					r.leave(j, id, RuleCause(rej.Reason), rej.String())
					r.waits = append(r.waits, j)
					continue
				}
			}
			m.keep(n)
			stay = append(stay, n)
		}
		r.load[id] = stay
	}
}

// machine is a live machine as the recheck sees it (xfleet.Machine): every
// unit there counts for MachineOf; the rules between units are checked
// against the units kept so far.
//
// The rules between units look at a neighbour only when the unit checked
// names conflicts (xfleet.Conflict, by the neighbour's name) or the
// neighbour binds its neighbours (xfleet.BindsNeighbours). So a unit
// that names none is checked against those neighbours alone (ruled, in
// the same order as kept): the
// same first match, at the cost of the machine's few units with rules,
// not of all its units; a pass over 3,000 units on each of 10 machines
// takes milliseconds, not seconds (BenchmarkReconcileDense).
type machine struct {
	s     *registry.Snapshot
	m     *registry.Machine
	there []string
	runs  map[string]bool // there, once Runs is asked
	kept  []string
	ruled []string // of kept, the units that bind their neighbours
	all   bool     // the unit checked names conflicts: Neighbours are every kept unit
}

func (o *machine) ID() string                  { return o.m.ID }
func (o *machine) Metadata() map[string]string { return o.m.Metadata }
func (o *machine) Runs(unit string) bool {
	if o.runs == nil {
		o.runs = make(map[string]bool, len(o.there))
		for _, n := range o.there {
			o.runs[n] = true
		}
	}
	return o.runs[unit]
}
func (o *machine) Neighbours() iter.Seq2[string, *xfleet.Spec] {
	names := o.ruled
	if o.all {
		names = o.kept
	}
	return func(yield func(string, *xfleet.Spec) bool) {
		for _, n := range names {
			if !yield(n, o.s.Jobs[n].Spec()) {
				return
			}
		}
	}
}

// keep counts unit n among the units the next ones are checked against.
func (o *machine) keep(n string) {
	o.kept = append(o.kept, n)
	if sp := o.s.Jobs[n].Spec(); sp != nil && xfleet.BindsNeighbours(sp) {
		o.ruled = append(o.ruled, n)
	}
}

// place offers every waiting unit to p in one placement pass: name order,
// except that units with MachineOf come after the rest, so a follower
// finds its target placed in the same pass.
func (r *reconciler) place(ctx context.Context, p Placer) {
	s := r.s
	sort.Slice(r.waits, func(a, b int) bool {
		fa, fb := follows(r.waits[a]), follows(r.waits[b])
		if fa != fb {
			return !fa
		}
		return r.waits[a].Name < r.waits[b].Name
	})
	var pass Pass
	for _, j := range r.waits {
		if j.Unit == nil {
			r.plan.Unplaced = append(r.plan.Unplaced, Unplaced{Job: j, Reason: "unit body missing from the store", Cause: CauseBodyMissing})
			continue
		}
		if pass == nil {
			pass = p.Begin(ctx, s, r.candidates())
		}
		d := pass.Place(j)
		if d.Machine == "" || s.Machines[d.Machine] == nil {
			why, c := whyUnplaced(d, len(s.Machines))
			r.plan.Unplaced = append(r.plan.Unplaced, Unplaced{Job: j, Reason: why, Cause: c})
			continue
		}
		pass.Placed(j, d.Machine)
		r.plan.Actions = append(r.plan.Actions, Action{Kind: Schedule, Job: j, Machine: d.Machine, Cause: CausePlaced,
			Reason: "placed by policy " + d.Policy, Policy: d.Policy})
	}
}

// candidates is every live machine, in ID order, with its units.
func (r *reconciler) candidates() []Candidate {
	ids := r.s.MachineIDs()
	cands := make([]Candidate, len(ids))
	for k, id := range ids {
		cands[k] = Candidate{Machine: r.s.Machines[id], Units: r.load[id]}
	}
	return cands
}

func follows(j *registry.Job) bool { return j.Unit != nil && len(j.Spec().Peers) > 0 }

// whyUnplaced says why decision d placed no unit, as fleetctl shows it, and
// its cause: for a decision that turned every machine down, the rule that
// turned down the most (ties to the first in fleet's order).
func whyUnplaced(d Decision, machines int) (string, Cause) {
	switch {
	case d.Error != "":
		return "placement failed: " + d.Error, CausePolicyError
	case machines == 0:
		return "no live machines", CauseNoMachines
	case d.Machine != "":
		return fmt.Sprintf("placement chose machine %s, which is not live", d.Machine), CauseNotLive
	case len(d.Rejected) == 0:
		return "no machine accepted the unit", CauseRefused
	}
	ids := make([]string, 0, len(d.Rejected))
	for id := range d.Rejected {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	var count [xfleet.Other + 1]int
	for i, id := range ids {
		parts[i] = registry.ShortID(id) + ": " + d.Rejected[id]
		count[xfleet.ParseRejection(d.Rejected[id]).Reason]++
	}
	most := xfleet.Other
	for r := xfleet.PinnedElsewhere; r < xfleet.Other; r++ {
		if count[r] > count[most] || (count[r] == count[most] && count[r] > 0) && r < most {
			most = r
		}
	}
	return "no machine fits (" + strings.Join(parts, "; ") + ")", RuleCause(most)
}
