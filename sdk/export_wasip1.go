//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// The guest side of the ABI (docs/abi.md). The host writes a message into
// the buffer fleet_alloc returns, then calls fleet_apply or fleet_place with
// its address and length.

var inbuf []byte

//go:wasmexport fleet_abi_version
func abiVersion() uint32 { return wire.Version }

//go:wasmexport fleet_alloc
func alloc(n uint32) uint32 {
	if uint32(cap(inbuf)) < n {
		inbuf = make([]byte, n)
	}
	inbuf = inbuf[:n]
	if n == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&inbuf[0])))
}

// input is the message the host wrote: always into inbuf, through
// fleet_alloc. A pointer elsewhere reads as an empty message.
func input(ptr, n uint32) []byte {
	if n == 0 || int(n) > len(inbuf) || ptr != uint32(uintptr(unsafe.Pointer(&inbuf[0]))) {
		return nil
	}
	return inbuf[:n]
}

// fleet_apply returns 0, or 1 when the updates did not decode (or no policy
// was registered).
//
//go:wasmexport fleet_apply
func apply(ptr, n uint32) uint32 {
	if registered == nil || registered.Apply(input(ptr, n)) != nil {
		return 1
	}
	return 0
}

// fleet_place returns the decision's address and length packed as
// address<<32 | length, or 0 when the request did not decode.
//
//go:wasmexport fleet_place
func place(ptr, n uint32) uint64 {
	if registered == nil {
		return 0
	}
	return packed(registered.Place(input(ptr, n)))
}

// fleet_place_defined is fleet_place for the unit the host defined under
// handle h (docs/abi.md): same answer, nothing sent.
//
//go:wasmexport fleet_place_defined
func placeDefined(h uint32) uint64 {
	// Runner.PlaceDefined, without its error: a call fewer on the path
	// of every placement.
	r := registered
	if r == nil || int(h) >= len(r.cluster.handles) || r.cluster.handles[h] == nil {
		return 0
	}
	// Runner.decide, with a deferred choice answered here: a call fewer.
	d := r.policy(r.cluster, r.cluster.handles[h])
	var out []byte
	if d.leftToHost() {
		out = r.deferred(d.among)
	} else {
		out = r.answer(&d)
	}
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}

func packed(out []byte, err error) uint64 {
	if err != nil || len(out) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}
