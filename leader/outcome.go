package leader

import "github.com/wasmfleet/fleet/internal/registry"

// Outcome is where passes leave a unit: on Machine, or on none for Reason.
type Outcome struct {
	Machine string
	Reason  string // why it has no machine, or why it left the one it had
	Cause   Cause
	Policy  string // the policy that chose Machine, when a pass did
}

// Outcomes is where plans, applied in order from s, leave each unit of s
// that should run, global units aside (machines choose those themselves):
// a unit placed where the last pass that placed it put it, a unit no pass
// touched where it is, a unit the passes could not place with the last
// pass's why.
func Outcomes(s *registry.Snapshot, plans ...Plan) map[string]Outcome {
	out := map[string]Outcome{}
	for name, j := range s.Jobs {
		if j.Desired != registry.Inactive && !j.Global() {
			out[name] = Outcome{Machine: j.Target, Reason: j.Unplaced}
		}
	}
	for _, plan := range plans {
		for _, a := range plan.Actions {
			o, ok := out[a.Job.Name]
			if !ok {
				continue
			}
			switch a.Kind {
			case Schedule:
				o.Machine, o.Cause, o.Policy = a.Machine, a.Cause, a.Policy
			case Unschedule:
				o = Outcome{Reason: a.Reason, Cause: a.Cause}
			}
			out[a.Job.Name] = o
		}
		for _, u := range plan.Unplaced {
			if _, ok := out[u.Job.Name]; ok {
				out[u.Job.Name] = Outcome{Reason: u.Reason, Cause: u.Cause}
			}
		}
	}
	return out
}

// Apply is s as it is once plan's writes have landed: each unit plan
// schedules on its machine, each it unschedules on none, each it could not
// place with why. s is not changed; the jobs plan changes are copies.
func Apply(s *registry.Snapshot, plan Plan) *registry.Snapshot {
	c := *s
	c.Jobs = make(map[string]*registry.Job, len(s.Jobs))
	for name, j := range s.Jobs {
		c.Jobs[name] = j
	}
	change := func(j *registry.Job, f func(*registry.Job)) {
		cp := *c.Jobs[j.Name]
		f(&cp)
		c.Jobs[j.Name] = &cp
	}
	for _, a := range plan.Actions {
		switch a.Kind {
		case Schedule:
			change(a.Job, func(j *registry.Job) { j.Target, j.Unplaced = a.Machine, "" })
		case Unschedule:
			change(a.Job, func(j *registry.Job) { j.Target = "" })
		}
	}
	for _, u := range plan.Unplaced {
		change(u.Job, func(j *registry.Job) { j.Unplaced = u.Reason })
	}
	return &c
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
