// Command goraw is a Go module that implements the ABI's exports by hand,
// without the SDK, and answers every placement with the benchmark
// cluster's machine 0 without reading the request: BenchmarkPlacement's
// go-raw, what Go's runtime adds to the boundary when it enters and leaves
// an export.
package main

import "unsafe"

// inbuf is where the host writes its messages; large enough for the
// benchmark's biggest cluster.
var inbuf = make([]byte, 16<<20)

// answer is a decision for machine 0 (32 zeros) with no rejections.
var answer = append(append([]byte{32, 0, 0, 0}, "00000000000000000000000000000000"...), 0, 0, 0, 0)

//go:wasmexport fleet_abi_version
func abiVersion() uint32 { return 1 }

//go:wasmexport fleet_alloc
func alloc(n uint32) uint32 { return uint32(uintptr(unsafe.Pointer(&inbuf[0]))) }

//go:wasmexport fleet_apply
func apply(ptr, n uint32) uint32 { return 0 }

//go:wasmexport fleet_place
func place(ptr, n uint32) uint64 {
	return uint64(uintptr(unsafe.Pointer(&answer[0])))<<32 | uint64(len(answer))
}

func main() {}
