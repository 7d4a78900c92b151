package policies

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mappedAllocator backs the linear memory of fleetd's own modules
// (trustedPages): an anonymous mapping of the memory's whole maximum,
// made once and never moved. The kernel gives the guest pages as it
// touches them, so a memory that may grow to 4 GiB costs what it uses;
// growing copies nothing; closing the instance unmaps it all. Where the
// mapping is refused (an address-space limit, strict overcommit) the
// memory is a Go slice that grows as wazero's own does.
var mappedAllocator = experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return &slicedMemory{max: max}
	}
	// Huge pages where the kernel allows them: a guest touching tens of
	// MiB as it takes the cluster in takes a fault per 2 MiB, not per
	// 4 KiB (a first pass over 10,000 units: 131 against 160 ms).
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	return &mappedMemory{b: b}
})

// mappedMemory is a linear memory in a mapping of its maximum.
type mappedMemory struct{ b []byte }

func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.b)) {
		return nil // past the maximum: the guest's memory.grow fails
	}
	return m.b[:size:size]
}

func (m *mappedMemory) Free() {
	if m.b != nil {
		_ = syscall.Munmap(m.b)
		m.b = nil
	}
}

// slicedMemory is a linear memory in a Go slice, copied to a larger one
// as it grows.
type slicedMemory struct {
	b   []byte
	max uint64
}

func (m *slicedMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size > uint64(cap(m.b)) {
		b := make([]byte, size, min(max(size, 2*uint64(cap(m.b))), m.max))
		copy(b, m.b)
		m.b = b
	}
	m.b = m.b[:size]
	return m.b
}

func (m *slicedMemory) Free() { m.b = nil }
