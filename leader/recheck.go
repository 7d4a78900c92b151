package leader

import (
	"slices"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// RuleChecker is a Placer that says which units fleet's own rules place.
// Those are checked again where they run on every reconcile, as fleet's
// engine did: a unit whose machine no longer satisfies it moves. Units a
// custom policy placed are left where it put them, and so are all units of
// a Placer that is not a RuleChecker.
type RuleChecker interface {
	FleetRules(j *registry.Job) bool
}

// mayStay says why scheduled unit j cannot stay on machine m, or "" when it
// can: fleet's rules for a unit that already runs there. there is every
// unit on m (global ones included, which can satisfy MachineOf); kept is
// the scheduled units on m already checked, in name order, which a
// conflict is checked against (so of two conflicting units the first
// stays).
func mayStay(s *registry.Snapshot, j *registry.Job, m *registry.Machine, there, kept []string) string {
	f := j.Unit
	if id := f.MachineIDFor(j.Name); id != "" && id != m.ID && (len(m.ID) < 8 || m.ID[:8] != id) {
		return "unit is pinned to MachineID " + id
	}
	if !unitfile.MatchesMetadata(f.MachineMetadataFor(j.Name), m.Metadata) {
		return "machine metadata no longer matches MachineMetadata"
	}
	for _, p := range f.PeersFor(j.Name) {
		if !slices.Contains(there, p) {
			return "MachineOf " + p + " is not on this machine"
		}
	}
	for _, o := range kept {
		if oj := s.Jobs[o]; oj != nil && oj.Unit != nil && unitfile.Conflict(j.Name, f, o, oj.Unit) {
			return "conflicts with " + o
		}
	}
	return ""
}

// recheck unschedules the scheduled units whose machine no longer
// satisfies them (see mayStay), in name order per machine. load is each
// machine's units; it returns the units that left, and load without them.
func recheck(s *registry.Snapshot, p Placer, load map[string][]string) (moved []Action, left []*registry.Job) {
	rc, ok := p.(RuleChecker)
	if !ok {
		return nil, nil
	}
	for _, id := range s.MachineIDs() {
		there := load[id]
		var kept, stay []string
		for _, n := range there {
			j := s.Jobs[n]
			if j.Target != id { // a global unit: its machine's agent decides
				stay = append(stay, n)
				continue
			}
			if j.Unit != nil && rc.FleetRules(j) {
				if why := mayStay(s, j, s.Machines[id], there, kept); why != "" {
					moved = append(moved, Action{Kind: Unschedule, Job: j, Machine: id, Reason: why})
					left = append(left, j)
					continue
				}
			}
			kept = append(kept, n)
			stay = append(stay, n)
		}
		load[id] = stay
	}
	return moved, left
}
