// Package kernel holds the loops a policy's decision spends its time in,
// written once and run natively in both builds of a policy: a native build
// calls them directly, a WebAssembly build asks fleetd to run them over the
// guest's own memory (the "fleet" host module, docs/abi.md). Go compiled to
// WebAssembly runs such loops several times slower than native code; this
// way the guest composes the decision and the heavy scan costs what it costs
// natively.
package kernel

import "math/bits"

// Least returns the slot with the smallest key among the slots whose bit is
// set in set, or -1 when there is none. Slots without a key (beyond keys)
// are skipped. Keys are unique per slot in fleet's use (load<<32 | rank), so
// the answer does not depend on the order of the scan.
func Least(set, keys []uint64) int {
	best, bestKey := -1, uint64(0)
	for i, w := range set {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &= w - 1
			slot := i*64 + b
			if slot >= len(keys) {
				return best
			}
			if k := keys[slot]; best < 0 || k < bestKey {
				best, bestKey = slot, k
			}
		}
	}
	return best
}
