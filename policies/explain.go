package policies

import (
	"encoding/binary"
	"fmt"
)

// What a policy's author is told when the module fails: the errors say what
// went wrong in the author's terms (memory, the guest's own last words) and
// what sets the limit it met.

// pageSize is a WebAssembly memory page.
const pageSize = 64 << 10

// memoryCap says what memory a policy may use and what sets it.
func (h *Host) memoryCap() string {
	return fmt.Sprintf("a policy may use %d MiB (fleetd --policy-memory-mib)", h.cfg.MemoryLimitMiB)
}

// memoryTooLarge explains a module that does not compile because the memory
// it defines starts, or may grow, past the cap; it returns "" for a module
// whose memory fits (compiling failed for another reason).
func (h *Host) memoryTooLarge(wasm []byte) string {
	min, max, hasMax, ok := declaredMemory(wasm)
	limit := uint64(h.cfg.MemoryLimitMiB) << 20
	switch {
	case !ok:
		return ""
	case min > limit:
		return fmt.Sprintf("needs %s of memory at start; %s", mib(min), h.memoryCap())
	case hasMax && max > limit:
		return fmt.Sprintf("declares it may grow to %s of memory; %s", mib(max), h.memoryCap())
	}
	return ""
}

// declaredMemory reads the limits, in bytes, of the memory wasm defines, from
// its memory section. ok is false when it defines none, or one this does not
// read (shared, 64-bit, or not well formed: compiling says what is wrong).
func declaredMemory(wasm []byte) (min, max uint64, hasMax, ok bool) {
	if len(wasm) < 8 { // "\0asm" and the format version
		return 0, 0, false, false
	}
	for b := wasm[8:]; len(b) > 0; {
		id := b[0]
		size, n := binary.Uvarint(b[1:]) // the format's unsigned LEB128
		if n <= 0 || size > uint64(len(b)-1-n) {
			return 0, 0, false, false
		}
		body := b[1+n : 1+n+int(size)]
		b = b[1+n+int(size):]
		if id != 5 { // the memory section
			continue
		}
		count, n := binary.Uvarint(body)
		if n <= 0 || count == 0 || len(body) <= n || body[n] > 1 {
			return 0, 0, false, false
		}
		hasMax, body = body[n] == 1, body[n+1:]
		if min, n = binary.Uvarint(body); n <= 0 || min > 1<<32 {
			return 0, 0, false, false
		}
		if hasMax {
			if max, n = binary.Uvarint(body[n:]); n <= 0 || max > 1<<32 {
				return 0, 0, false, false
			}
		}
		return min * pageSize, max * pageSize, hasMax, true
	}
	return 0, 0, false, false
}

// mib formats a size in bytes in MiB, to a tenth when it is not whole.
func mib(b uint64) string {
	if b%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
