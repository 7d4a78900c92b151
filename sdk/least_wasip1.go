//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// hostLeast is kernel.Least run by fleetd natively over the guest's memory.
//
//go:wasmimport fleet least
//go:noescape
func hostLeast(set unsafe.Pointer, setWords uint32, keys unsafe.Pointer, nKeys uint32) int32

func least(set, keys []uint64) int {
	if len(set) == 0 || len(keys) == 0 {
		return -1
	}
	return int(hostLeast(unsafe.Pointer(unsafe.SliceData(set)), uint32(len(set)), unsafe.Pointer(unsafe.SliceData(keys)), uint32(len(keys))))
}

// LeastLoadedOf is the decision for LeastLoaded(s): the machine of s with
// the fewest units, ties to the lower ID, or no machine and no reasons when
// s is empty. In this WebAssembly build the answer names s and fleetd makes
// the choice once the call has returned (docs/abi.md, "A deferred choice"),
// which saves a call into fleetd and back. s must not change before the
// policy returns.
func (c *Cluster) LeastLoadedOf(s Set) Decision {
	c.Machines() // ranks are current
	return Decision{among: s.words}
}

// idRef is where id's bytes are in this guest's memory, as the deferred
// choice's table of IDs holds it: address << 32 | length. The string lives
// as long as its machine.
func idRef(id string) uint64 {
	if id == "" {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.StringData(id))))<<32 | uint64(len(id))
}

// addr is the address of w's first word in this guest's memory.
func addr(w []uint64) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(w)))) }

// deferred is the answer that leaves the choice among set to fleetd
// (wire.Deferred). It is written as three 64-bit words, which WebAssembly
// stores little-endian: a copy of a larger value would be a call of its
// own.
func (r *runner) deferred(set []uint64) []byte {
	c := r.cluster
	r.choice[0] = wire.DeferredMark | uint64(addr(set))<<32
	r.choice[1] = uint64(len(set)) | uint64(addr(c.keys))<<32
	r.choice[2] = uint64(len(c.keys)) | uint64(addr(c.ids))<<32
	return (*[wire.DeferredSize]byte)(unsafe.Pointer(&r.choice))[:]
}
