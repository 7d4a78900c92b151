package policies

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// What a policy's author is told when the module fails: the errors say what
// went wrong in the author's terms (memory, the guest's own last words) and
// what sets the limit it met.

// pageSize is a WebAssembly memory page.
const pageSize = 64 << 10

// memoryCap says what memory a policy may use and what sets it; trusted
// for fleetd's own.
func (h *Host) memoryCap(trusted bool) string {
	if trusted {
		return fmt.Sprintf("fleetd's own policy may use %s, all a module can address", mib(h.memoryLimit(true)))
	}
	return fmt.Sprintf("a policy may use %d MiB (fleetd --policy-memory-mib)", h.cfg.MemoryLimitMiB)
}

// memoryLimit is the memory cap in bytes of an uploaded policy, or of
// fleetd's own (trusted).
func (h *Host) memoryLimit(trusted bool) uint64 {
	if trusted {
		return trustedPages * pageSize
	}
	return uint64(h.cfg.MemoryLimitMiB) << 20
}

// memoryTooLarge explains a module that does not compile because the memory
// it defines starts, or may grow, past the cap; it returns "" for a module
// whose memory fits (compiling failed for another reason).
func (h *Host) memoryTooLarge(wasm []byte, trusted bool) string {
	min, max, hasMax, ok := declaredMemory(wasm)
	limit := h.memoryLimit(trusted)
	switch {
	case !ok:
		return ""
	case min > limit:
		return fmt.Sprintf("needs %s of memory at start; %s", mib(min), h.memoryCap(trusted))
	case hasMax && max > limit:
		return fmt.Sprintf("declares it may grow to %s of memory; %s", mib(max), h.memoryCap(trusted))
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

// guestOutput is where an instance's stderr goes, so that a trap is reported
// with what the guest said as it failed: a Go guest's runtime writes "panic:
// ..." or "fatal error: out of memory" there, then a trace of every
// goroutine. It keeps the last bytes of the first paragraph a call writes
// (up to its first blank line), which ends with a Go runtime's message
// whatever the guest wrote before it. Its size is fixed and each call resets
// its length, so a guest makes fleetd neither allocate nor keep more, and a
// call that writes nothing costs two stores.
type guestOutput struct {
	buf   [4 << 10]byte
	n     int
	ended bool // the first paragraph has ended: the rest is not kept
}

func (o *guestOutput) reset() { o.n, o.ended = 0, false }

// Write keeps p's part of the first paragraph, dropping the oldest bytes when
// the buffer is full. It never fails: the guest's write always succeeds.
func (o *guestOutput) Write(p []byte) (int, error) {
	written := len(p)
	if o.ended {
		return written, nil
	}
	if o.n == 0 {
		p = bytes.TrimLeft(p, "\n") // blank lines before any text end nothing
	}
	for j, c := range p {
		if c == '\n' && (j > 0 && p[j-1] == '\n' || j == 0 && o.n > 0 && o.buf[o.n-1] == '\n') {
			p, o.ended = p[:j], true
			break
		}
	}
	if len(p) > len(o.buf) {
		p = p[len(p)-len(o.buf):]
	}
	if drop := o.n + len(p) - len(o.buf); drop > 0 {
		o.n = copy(o.buf[:], o.buf[drop:o.n])
	}
	o.n += copy(o.buf[o.n:], p)
	return written, nil
}

// Bounds of what is reported of a guest's output.
const (
	saidLines = 4
	saidBytes = 512
)

// said is the end of what the guest wrote in its last call: at most
// saidLines lines and saidBytes bytes, trimmed.
func (o *guestOutput) said() []byte {
	s := bytes.TrimSpace(o.buf[:o.n])
	if len(s) > saidBytes {
		s = s[len(s)-saidBytes:]
	}
	for k, lines := len(s)-1, 0; k >= 0; k-- {
		if s[k] == '\n' {
			if lines++; lines == saidLines {
				return s[k+1:]
			}
		}
	}
	return s
}

// explain is what fleetd can say of a trap beyond wazero's words: that the
// guest ran out of memory, and what it wrote. Each part ends with "; ", to
// come before the trap itself; "" when there is nothing to add. mem is nil
// when the instance was never made; trusted for fleetd's own policy. oom
// reports that the guest ran out of memory.
func (h *Host) explain(out *guestOutput, mem api.Memory, trusted bool) (why string, oom bool) {
	said := out.said()
	var b strings.Builder
	// A guest that grew to near its cap was refused more memory, or soon
	// would have been; a Go guest that asks for a block larger than what
	// is left says "out of memory" without reaching the cap.
	limit := h.memoryLimit(trusted)
	slack := max(limit/8, 4<<20) // a Go heap grows by 4 MiB arenas
	switch {
	case mem != nil && (uint64(mem.Size())+slack >= limit || bytes.Contains(said, []byte("out of memory"))):
		fmt.Fprintf(&b, "it ran out of memory: it had grown to %s; %s; ", mib(uint64(mem.Size())), h.memoryCap(trusted))
		oom = true
	case bytes.Contains(said, []byte("out of memory")):
		fmt.Fprintf(&b, "it ran out of memory; %s; ", h.memoryCap(trusted))
		oom = true
	}
	if len(said) > 0 {
		// Quoted: no byte of the guest's reaches a log or a terminal raw.
		fmt.Fprintf(&b, "the policy wrote %q; ", said)
	}
	return b.String(), oom
}
