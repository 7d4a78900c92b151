//go:build wasip1

package sdk

import "unsafe"

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
