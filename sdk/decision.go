package sdk

import "github.com/wasmfleet/fleet/sdk/wire"

// Rejection is why a policy turned a machine down for a unit.
type Rejection = wire.Rejection

// Decision is where a policy puts a unit: Machine is the chosen machine's
// ID, "" when none fits; Reject records why a machine was not chosen, which
// fleetctl shows when a unit cannot be placed.
type Decision struct {
	Machine  string
	Rejected []Rejection

	among []uint64 // LeastLoadedOf in a WebAssembly guest: the set fleetd chooses from
}

// leftToHost reports whether d is LeastLoadedOf's in a WebAssembly guest,
// untouched by the policy since: fleetd makes the choice (a deferred
// choice, docs/abi.md).
func (d *Decision) leftToHost() bool {
	return d.among != nil && d.Machine == "" && len(d.Rejected) == 0
}

// Reject records why m was not chosen.
func (d *Decision) Reject(m *Machine, reason string) {
	d.Rejected = append(d.Rejected, Rejection{Machine: m.ID, Reason: reason})
}

// RejectAll turns every machine down for one reason: for a mistake in the
// unit itself, which no machine could fix.
func (d *Decision) RejectAll(c *Cluster, reason string) {
	for _, m := range c.Machines() {
		d.Reject(m, reason)
	}
}

// Policy chooses a machine for a unit.
type Policy func(c *Cluster, u *Unit) Decision
