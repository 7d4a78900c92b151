//go:build !wasip1

package sdk

import "github.com/wasmfleet/fleet/sdk/kernel"

func least(set, keys []uint64) int { return kernel.Least(set, keys) }

// LeastLoadedOf is the decision for LeastLoaded(s): the machine of s with
// the fewest units, ties to the lower ID, or no machine and no reasons when
// s is empty. In a WebAssembly build the answer names s and fleetd makes the
// choice once the call has returned (docs/abi.md, "A deferred choice"),
// which saves a call into fleetd and back; natively it is chosen here.
func (c *Cluster) LeastLoadedOf(s Set) Decision {
	if m := c.LeastLoaded(s); m != nil {
		return Decision{Machine: m.ID}
	}
	return Decision{}
}

// Natively there is no guest memory for fleetd to read: LeastLoadedOf
// chooses at once, no answer is deferred, and the table of IDs stays empty.
func idRef(string) uint64 { return 0 }

func (r *runner) deferred([]uint64) []byte { panic("sdk: a deferred choice outside WebAssembly") }
