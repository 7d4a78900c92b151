package policies

import (
	"testing"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
)

// TestLinearMemories: both backings of fleetd's own modules' memory keep
// what the guest wrote as it grows, refuse to grow past the maximum, and
// the mapping never moves.
func TestLinearMemories(t *testing.T) {
	const max = 4 << 20
	for name, m := range map[string]experimental.LinearMemory{
		"mapped": mappedAllocator.Allocate(0, max),
		"sliced": &slicedMemory{max: max},
	} {
		if _, mapped := m.(*mappedMemory); name == "mapped" && !mapped {
			t.Fatalf("the kernel refused a mapping of %d bytes", max)
		}
		b := m.Reallocate(pageSize)
		if len(b) != pageSize {
			t.Fatalf("%s: %d bytes, want %d", name, len(b), pageSize)
		}
		b[0], b[pageSize-1] = 7, 9
		grown := m.Reallocate(3 * pageSize)
		if len(grown) != 3*pageSize || grown[0] != 7 || grown[pageSize-1] != 9 || grown[pageSize] != 0 {
			t.Fatalf("%s: grown to %d bytes holding %d, %d, %d; want %d bytes holding 7, 9, 0", name, len(grown), grown[0], grown[pageSize-1], grown[pageSize], 3*pageSize)
		}
		if _, mapped := m.(*mappedMemory); mapped && unsafe.SliceData(grown) != unsafe.SliceData(b) {
			t.Errorf("%s: the memory moved as it grew", name)
		}
		if past := m.Reallocate(max + pageSize); past != nil {
			t.Errorf("%s: grew past its maximum to %d bytes", name, len(past))
		}
		m.Free()
	}
}
