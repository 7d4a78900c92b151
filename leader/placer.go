package leader

import (
	"context"

	"github.com/wasmfleet/fleet/internal/registry"
)

// Candidate is a live machine and the units on it.
type Candidate struct {
	Machine *registry.Machine
	Units   []string // units on it, sorted: those scheduled to it and the global units it runs
}

// Decision is where a Placer puts a unit.
type Decision struct {
	Machine  string            // chosen machine ID; "" when none fits
	Rejected map[string]string // machine ID -> why it was not chosen, as the policy said
	// Error is why the placer could not decide at all (a policy that does
	// not load, traps or runs out of time); the unit stays unplaced with it.
	Error string
	// Policy is the name of the policy that decided (or failed to).
	Policy string
}

// Placer chooses machines for the units of a reconcile pass: fleetd's is
// policies.Placer, which runs each unit's placement policy.
type Placer interface {
	// Begin starts a placement pass. s is the snapshot the pass decides on
	// (its units, which the rules between units need, and its policies);
	// candidates are the live machines, in ID order, each with the units
	// on it once the pass's moves are made. The Placer may keep both
	// until the pass ends; the caller does not change them.
	Begin(ctx context.Context, s *registry.Snapshot, candidates []Candidate) Pass
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
