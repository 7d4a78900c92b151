package leader

import (
	"maps"
	"slices"

	"github.com/wasmfleet/fleet/internal/registry"
)

// Entries is every machine's schedule as it should be once plan is applied:
// the units scheduled to the machine and every global unit, each with its
// body's hash and desired state. A unit asked to be inactive is on no
// schedule, and a machine that is not live has none. An agent watches only
// its own machine's schedule, so a change elsewhere in the cluster never
// wakes it.
func Entries(s *registry.Snapshot, plan Plan) map[string]map[string]registry.Entry {
	target := map[string]string{}
	for name, j := range s.Jobs {
		if j.Target != "" {
			target[name] = j.Target
		}
	}
	for _, a := range plan.Actions {
		switch a.Kind {
		case Schedule:
			target[a.Job.Name] = a.Machine
		case Unschedule:
			delete(target, a.Job.Name)
		}
	}
	out := map[string]map[string]registry.Entry{}
	add := func(machine string, j *registry.Job) {
		if out[machine] == nil {
			out[machine] = map[string]registry.Entry{}
		}
		out[machine][j.Name] = entry(j)
	}
	for name, j := range s.Jobs {
		switch {
		case j.Desired == registry.Inactive:
		case j.Global():
			for id := range s.Machines {
				add(id, j)
			}
		case s.Machines[target[name]] != nil:
			add(target[name], j)
		}
	}
	return out
}

func entry(j *registry.Job) registry.Entry {
	return registry.Entry{Hash: j.Hash.String(), Desired: j.Desired}
}

// Writes are the Consul writes that apply plan to s: the schedule actions
// (each with its schedule entry), the entries that differ from Entries, the
// reasons units are unplaced, and the removal of placements whose unit is
// gone. It does no I/O, and the same snapshot and plan give the same writes
// in the same order (machines and units in name order), so the same
// transactions.
func Writes(r *registry.Registry, s *registry.Snapshot, plan Plan) []registry.Write {
	why := map[string]string{}
	for _, u := range plan.Unplaced {
		why[u.Job.Name] = u.Reason
	}
	var ws []registry.Write
	type key struct{ machine, name string }
	handled := map[key]bool{}   // entries the actions write
	placed := map[string]bool{} // units whose placement the actions write
	// One write per action, in the plan's order (write logs them so). A
	// unit moved is unscheduled, then scheduled: its Unschedule comes first
	// and removes the placement the Schedule then creates.
	for _, a := range plan.Actions {
		switch a.Kind {
		case Schedule:
			ws = append(ws, r.ScheduleWrite(a.Job, a.Machine, entry(a.Job)))
			handled[key{a.Machine, a.Job.Name}] = true
		case Unschedule:
			ws = append(ws, r.UnscheduleWrite(a.Job, why[a.Job.Name]))
			handled[key{a.Job.Target, a.Job.Name}] = true
		}
		placed[a.Job.Name] = true
	}
	want := Entries(s, plan)
	for _, machine := range sortedKeys(want) {
		es := want[machine]
		for _, name := range sortedKeys(es) {
			e := es[name]
			if handled[key{machine, name}] {
				continue
			}
			if have, ok := s.Schedule[machine][name]; !ok || have != e {
				ws = append(ws, r.EntryWrite(machine, name, &e))
			}
		}
	}
	for _, machine := range sortedKeys(s.Schedule) {
		for _, name := range sortedKeys(s.Schedule[machine]) {
			if _, ok := want[machine][name]; !ok && !handled[key{machine, name}] {
				ws = append(ws, r.EntryWrite(machine, name, nil))
			}
		}
	}
	for _, id := range s.MachineIDs() {
		if !s.Kept[id] {
			ws = append(ws, r.KeepWrite(id, true))
		}
	}
	for _, id := range sortedKeys(s.Kept) {
		if s.Machines[id] == nil {
			ws = append(ws, r.KeepWrite(id, false))
		}
	}
	for _, name := range s.JobNames() {
		j := s.Jobs[name]
		// A unit on a machine that stays there keeps its placement.
		if !placed[name] && j.Target == "" && (j.Unplaced != why[name] || j.Stale()) {
			ws = append(ws, r.UnplacedWrite(j, why[name]))
		}
	}
	for _, name := range sortedKeys(s.Orphans) {
		ws = append(ws, r.OrphanWrite(name, s.Orphans[name]))
	}
	return ws
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
