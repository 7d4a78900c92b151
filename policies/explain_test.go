package policies

import "testing"

// TestDeclaredMemory reads the memory section of modules, and refuses to
// guess from one it does not read.
func TestDeclaredMemory(t *testing.T) {
	header := "\x00asm\x01\x00\x00\x00"
	for _, tc := range []struct {
		name       string
		wasm       []byte
		min, max   uint64
		hasMax, ok bool
	}{
		{"min", wat(t, "bigmemory"), 2000 * pageSize, 0, false, true},
		{"min and max", wat(t, "bigmaxmemory"), pageSize, 2048 * pageSize, true, true},
		{"after a custom section", []byte(header + "\x00\x03\x01a\x00" + "\x05\x03\x01\x00\x10"), 16 * pageSize, 0, false, true},
		{"no memory", []byte(header), 0, 0, false, false},
		{"shorter than its header", []byte("\x00asm"), 0, 0, false, false},
		{"a section longer than the module", []byte(header + "\x05\x7f\x01\x00\x10"), 0, 0, false, false},
		{"shared", []byte(header + "\x05\x04\x01\x03\x01\x02"), 0, 0, false, false},
		{"no limits", []byte(header + "\x05\x01\x01"), 0, 0, false, false},
		{"a truncated minimum", []byte(header + "\x05\x03\x01\x00\x80"), 0, 0, false, false},
		{"a minimum past 32 bits", []byte(header + "\x05\x08\x01\x00\x80\x80\x80\x80\x20"), 0, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			min, max, hasMax, ok := declaredMemory(tc.wasm)
			if min != tc.min || max != tc.max || hasMax != tc.hasMax || ok != tc.ok {
				t.Errorf("declaredMemory: %d %d %v %v, want %d %d %v %v", min, max, hasMax, ok, tc.min, tc.max, tc.hasMax, tc.ok)
			}
		})
	}
}
