package leader

import "github.com/wasmfleet/fleet/internal/registry"

// Outcome is where a pass leaves a unit: on Machine, or on none for Reason.
type Outcome struct {
	Machine string
	Reason  string // why it has no machine, or why it moved
	Cause   Cause  // CausePlaced when a policy chose Machine in this pass
	Policy  string // the policy that chose Machine in this pass
}

// Outcomes is where plan leaves each unit of s that should run, global
// units aside (machines choose those themselves): a placed unit where the
// pass put it, a unit the pass left alone where it is, a unit the pass could
// not place with why.
func Outcomes(s *registry.Snapshot, plan Plan) map[string]Outcome {
	out := map[string]Outcome{}
	for name, j := range s.Jobs {
		if j.Desired != registry.Inactive && !j.Global() {
			out[name] = Outcome{Machine: j.Target}
		}
	}
	for _, a := range plan.Actions {
		if _, ok := out[a.Job.Name]; !ok {
			continue
		}
		switch a.Kind {
		case Schedule:
			out[a.Job.Name] = Outcome{Machine: a.Machine, Reason: out[a.Job.Name].Reason, Cause: a.Cause, Policy: a.Policy}
		case Unschedule:
			out[a.Job.Name] = Outcome{Reason: a.Reason, Cause: a.Cause}
		}
	}
	for _, u := range plan.Unplaced {
		out[u.Job.Name] = Outcome{Reason: u.Reason, Cause: u.Cause}
	}
	return out
}

// Anew is s with every unit that is not global off its machine: what a
// pass decides when every unit waits at once (a cluster started from
// scratch), which fleetctl policy simulate shows by default. s is not
// changed.
func Anew(s *registry.Snapshot) *registry.Snapshot {
	c := *s
	c.Jobs = make(map[string]*registry.Job, len(s.Jobs))
	for name, j := range s.Jobs {
		if j.Target != "" && !j.Global() {
			cp := *j
			cp.Target, cp.Unplaced = "", ""
			j = &cp
		}
		c.Jobs[name] = j
	}
	return &c
}
