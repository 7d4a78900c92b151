package leader

import (
	"fmt"
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// Candidate is a live machine and how loaded it is.
type Candidate struct {
	Machine *registry.Machine
	Units   []string // units scheduled to it (not inactive), sorted
}

// Decision is where a Placer puts a unit.
type Decision struct {
	Machine  string            // chosen machine ID; "" when none fits
	Rejected map[string]string // machine ID -> why it was not chosen
	// Error is why the placer could not decide at all (a policy that
	// trapped or ran out of time); the unit stays unplaced with it.
	Error string
}

// Placer chooses a machine for a unit among the live machines.
type Placer interface {
	Place(j *registry.Job, candidates []Candidate) Decision
}

// Observer is a Placer that wants each snapshot before a reconcile (to learn
// which policies exist, say).
type Observer interface {
	Observe(s *registry.Snapshot)
}

// LeastLoaded is fleet's placement rule: among the machines whose metadata
// satisfies the unit's MachineMetadata, the one with the fewest units, ties
// broken by the lower machine ID.
type LeastLoaded struct{}

// Place implements Placer.
func (LeastLoaded) Place(j *registry.Job, candidates []Candidate) Decision {
	d := Decision{Rejected: map[string]string{}}
	var req map[string][]string
	if j.Unit != nil {
		req = j.Unit.MachineMetadata()
	}
	fits := make([]Candidate, 0, len(candidates))
	for _, c := range candidates {
		if !unitfile.MatchesMetadata(req, c.Machine.Metadata) {
			d.Rejected[c.Machine.ID] = "metadata does not match MachineMetadata " + formatRequirement(req)
			continue
		}
		fits = append(fits, c)
	}
	sort.Slice(fits, func(a, b int) bool {
		if len(fits[a].Units) != len(fits[b].Units) {
			return len(fits[a].Units) < len(fits[b].Units)
		}
		return fits[a].Machine.ID < fits[b].Machine.ID
	})
	if len(fits) > 0 {
		d.Machine = fits[0].Machine.ID
	}
	return d
}

func formatRequirement(req map[string][]string) string {
	keys := make([]string, 0, len(req))
	for k := range req {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%s", k, strings.Join(req[k], "|")))
	}
	return strings.Join(parts, ",")
}
