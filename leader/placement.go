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

// Placer chooses machines for the units of a reconcile pass.
type Placer interface {
	// Begin starts a pass over the live machines, each with the units on
	// it. The Placer may keep candidates until the pass ends; the caller
	// does not change them.
	Begin(candidates []Candidate) Pass
}

// Pass is a Placer's work during one reconcile pass: the cluster is given
// once, to Begin, and then each decision is followed by only what it
// changed, so a decision costs what the decision costs and not what the
// cluster's size does (a pass may place thousands of units).
type Pass interface {
	// Place chooses a machine for j, counting the placements of the pass
	// so far.
	Place(j *registry.Job) Decision
	// Placed records that j went to machine, which the pass's later
	// decisions count. A decision the caller does not take is not
	// recorded.
	Placed(j *registry.Job, machine string)
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

// Begin implements Placer.
func (LeastLoaded) Begin(candidates []Candidate) Pass {
	p := &leastLoadedPass{cands: candidates, units: make([]int, len(candidates)), index: make(map[string]int, len(candidates))}
	for k, c := range candidates {
		p.units[k] = len(c.Units)
		p.index[c.Machine.ID] = k
	}
	return p
}

// leastLoadedPass keeps each candidate's unit count through a pass.
type leastLoadedPass struct {
	cands []Candidate
	units []int          // units on cands[k], the pass's placements counted
	index map[string]int // machine ID -> position in cands
}

func (p *leastLoadedPass) Place(j *registry.Job) Decision {
	d := Decision{Rejected: map[string]string{}}
	var req map[string][]string
	if j.Unit != nil {
		req = j.Unit.MachineMetadata()
	}
	best := -1
	for k, c := range p.cands {
		if !unitfile.MatchesMetadata(req, c.Machine.Metadata) {
			d.Rejected[c.Machine.ID] = "metadata does not match MachineMetadata " + formatRequirement(req)
			continue
		}
		if best < 0 || p.units[k] < p.units[best] || p.units[k] == p.units[best] && c.Machine.ID < p.cands[best].Machine.ID {
			best = k
		}
	}
	if best >= 0 {
		d.Machine = p.cands[best].Machine.ID
	}
	return d
}

func (p *leastLoadedPass) Placed(_ *registry.Job, machine string) {
	if k, ok := p.index[machine]; ok {
		p.units[k]++
	}
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
