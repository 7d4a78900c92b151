package policies

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestGoPolicyFailures: a Go policy that runs out of memory or panics fails
// its decision with what its runtime wrote as it failed, and the memory cap
// and the flag that sets it when it ran out of memory. A call reports only
// its own words, and the next instance places.
func TestGoPolicyFailures(t *testing.T) {
	ctx := context.Background()
	// A Go guest near its memory limit collects garbage often: the time
	// limit is not what these failures are about.
	h := newHost(t, Config{PoolSize: 1, CallTimeout: time.Minute})
	p, err := h.Load(ctx, "gofail", goGuest(t, "./testdata/gofail", "-buildmode=c-shared"), false)
	if err != nil {
		t.Fatal(err)
	}
	p.Sync(threeMachines(), nil)
	const ranOut = "fleet_place trapped: it ran out of memory: it had grown to "
	const mayUse = " MiB; a policy may use 64 MiB (fleetd --policy-memory-mib); the policy wrote \""
	for _, tc := range []struct {
		unit string
		want []string
	}{
		// It holds 1 MiB after 1 MiB, until its memory is at the cap.
		{"oom.service", []string{"policy gofail: " + ranOut, mayUse + "runtime: out of memory: cannot allocate 1048576-byte block",
			`\nfatal error: out of memory"; wasm error: unreachable`}},
		// It asks for more than is left at once, far from the cap.
		{"bigalloc.service", []string{ranOut, mayUse + "runtime: out of memory: cannot allocate 209715200-byte block",
			`\nfatal error: out of memory"; wasm error: unreachable`}},
		{"panic.service", []string{`fleet_place trapped: the policy wrote "panic: gofail: no machine is good enough for panic.service"; wasm error`}},
	} {
		t.Run(tc.unit, func(t *testing.T) {
			// The instance wrote on its last call, which succeeded;
			// that is not reported with this call's failure.
			if d, err := p.Place(ctx, request("chatty.service")); err != nil || d.Machine != "m1" {
				t.Fatalf("chatty.service: %q %v", d.Machine, err)
			}
			_, err := p.Place(ctx, request(tc.unit))
			if err == nil {
				t.Fatal("placed")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Place: %v\nwant an error containing %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "chatty") || strings.Contains(err.Error(), "goroutine") {
				t.Errorf("Place: %v\nreports more than the failing call's message", err)
			}
			if d, err := p.Place(ctx, request("x.service")); err != nil || d.Machine != "m1" {
				t.Fatalf("after %s: %q %v", tc.unit, d.Machine, err)
			}
		})
	}
}

// TestGuestOutput: what is kept of a guest's stderr is the end of the first
// paragraph of one call's output, bounded, however the guest splits its
// writes.
func TestGuestOutput(t *testing.T) {
	long := strings.Repeat("x", 10000)
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"nothing", nil, ""},
		{"one line", []string{"panic: boom\n"}, "panic: boom"},
		{"a trace after a blank line", []string{"fatal error: out of memory\n\ngoroutine 1 [running]:\nmain.Place()\n"}, "fatal error: out of memory"},
		{"the blank line split across writes", []string{"fatal error: ", "out of memory", "\n", "\n", "goroutine 1"}, "fatal error: out of memory"},
		{"leading blank lines", []string{"\n\n", "\npanic: boom\n"}, "panic: boom"},
		{"the last four lines", []string{"a\nb\nc\nd\ne\nf\n"}, "c\nd\ne\nf"},
		{"the last bytes of a long line", []string{long, "\nend"}, long[len(long)-saidBytes+4:] + "\nend"},
		{"writes past the buffer", []string{long + "\n", long + "\n", "panic: boom\n\n", long},
			strings.Repeat("x", saidBytes-len("\npanic: boom")) + "\npanic: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o guestOutput
			o.Write([]byte("an earlier call's words\n\nand more"))
			o.reset()
			for _, w := range tc.writes {
				if n, err := o.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write: %d, %v", n, err)
				}
			}
			if got := string(o.said()); got != tc.want {
				t.Errorf("said %q, want %q", got, tc.want)
			}
		})
	}
}

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
