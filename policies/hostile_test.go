package policies

// Hostile guests that go looking for what SECURITY.md ("Uploaded policies
// are sandboxed") says a policy cannot reach: files, the real clock, the
// host's environment, sockets, another policy's data, and fleet's kernels
// called with lengths that do not fit. The guests that are let run report
// what they found as the reason of a "probe" rejection (see probe), so each
// test asserts what the guest saw, not only that nothing broke.

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	defaultpolicy "github.com/wasmfleet/fleet/plugins/default"
)

// WASI errnos (wasi_snapshot_preview1's errno enum) the host answers with.
const (
	errnoSuccess = 0
	errnoBadf    = 8  // not an open file descriptor
	errnoInval   = 28 // e.g. a clock the host does not give
	errnoNotdir  = 54 // a path under a descriptor that is not a directory
	untouched    = 0xffffffff
)

// sandboxHost is TestHostileGuests' host (limits that fail a hostile call
// fast) with the default policy loaded. The function it returns checks the
// default policy still places after what a test's guest did.
func sandboxHost(t *testing.T) (*Host, func(t *testing.T, after string)) {
	t.Helper()
	h := newHost(t, Config{CallTimeout: 200 * time.Millisecond, MemoryLimitMiB: 16})
	good, err := h.Load(context.Background(), "default", defaultpolicy.Wasm, true)
	if err != nil {
		t.Fatal(err)
	}
	good.Sync(threeMachines(), nil)
	return h, func(t *testing.T, after string) {
		t.Helper()
		if d, err := good.Place(context.Background(), request("x.service")); err != nil || d.Machine != "m1" {
			t.Fatalf("the default policy after %s: %q %v", after, d.Machine, err)
		}
	}
}

// loadGuest loads testdata/name.wat as an uploaded policy and shows it the
// three machines.
func loadGuest(t *testing.T, h *Host, name string) *Policy {
	t.Helper()
	p, err := h.Load(context.Background(), name, wat(t, name), false)
	if err != nil {
		t.Fatal(err)
	}
	p.Sync(threeMachines(), nil)
	return p
}

// probe asks p to place unit and returns what the guest reported: its
// decision must be "no machine fits", with one reason, from machine
// "probe", whose bytes are what the guest learned.
func probe(t *testing.T, p *Policy, unit string) []byte {
	t.Helper()
	d, err := p.Place(context.Background(), request(unit))
	if err != nil {
		t.Fatalf("the decision failed: %v", err)
	}
	if d.Machine != "" || len(d.Rejected) != 1 || d.Rejected[0].Machine != "probe" {
		t.Fatalf("the guest answered %+v, not its probe", d)
	}
	return []byte(d.Rejected[0].Reason)
}

// u32s reads b as little-endian u32s.
func u32s(t *testing.T, b []byte) []uint32 {
	t.Helper()
	if len(b)%4 != 0 {
		t.Fatalf("%d bytes are not u32s", len(b))
	}
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

// TestSandboxFiles: a policy finds no file. No directory is preopened, so
// every descriptor from 3 on is not open (EBADF) and path_open has nothing
// to open under; stdin is empty and stdout and stderr cannot be read. The
// guest then decides cleanly.
func TestSandboxFiles(t *testing.T) {
	h, defaultPlaces := sandboxHost(t)
	p := loadGuest(t, h, "nofiles")
	want := []uint32{
		// fd_prestat_get, fds 3..7: no preopened directory
		errnoBadf, errnoBadf, errnoBadf, errnoBadf, errnoBadf,
		// path_open "etc/passwd", fds 0..7: stdio is no directory, the rest are not open; nothing opened
		errnoNotdir, untouched, errnoNotdir, untouched, errnoNotdir, untouched,
		errnoBadf, untouched, errnoBadf, untouched, errnoBadf, untouched, errnoBadf, untouched, errnoBadf, untouched,
		// path_filestat_get "etc/passwd", fds 0..7
		errnoNotdir, errnoNotdir, errnoNotdir, errnoBadf, errnoBadf, errnoBadf, errnoBadf, errnoBadf,
		// fd_read of 64 bytes, fds 0..5: stdin is empty (0 bytes, end of file), the rest cannot be read
		errnoSuccess, 0, errnoBadf, untouched, errnoBadf, untouched,
		errnoBadf, untouched, errnoBadf, untouched, errnoBadf, untouched,
		// the read buffer's first 16 bytes: nothing came
		0, 0, 0, 0,
	}
	for call := range 2 { // the instance, asked again, finds the same
		if got := u32s(t, probe(t, p, "x.service")); !slices.Equal(got, want) {
			t.Fatalf("call %d: the guest found\n%v\nwant\n%v", call, got, want)
		}
	}
	defaultPlaces(t, "nofiles")
}

// TestSandboxClocks: the clocks a policy reads are stand-ins (docs/abi.md):
// the wall clock starts at 2022-01-01 and advances 1 ms a reading, the
// monotonic clock advances 1 µs a reading, however much real time passes;
// CPU-time clocks are not given.
func TestSandboxClocks(t *testing.T) {
	h, defaultPlaces := sandboxHost(t)
	p := loadGuest(t, h, "clock")
	epoch := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	type reading struct {
		errno uint32
		ns    int64
	}
	read := func(p *Policy) []reading {
		b := probe(t, p, "x.service")
		if len(b) != 8*12 {
			t.Fatalf("the guest reported %d bytes, want 8 readings", len(b))
		}
		var rs []reading
		for i := 0; i < len(b); i += 12 {
			rs = append(rs, reading{binary.LittleEndian.Uint32(b[i:]), int64(binary.LittleEndian.Uint64(b[i+4:]))})
		}
		return rs
	}
	check := func(call int, rs []reading, wall0, mono0 int64) {
		t.Helper()
		for i, r := range rs[:6] {
			if r.errno != errnoSuccess {
				t.Fatalf("call %d: clock_time_get %d: errno %d", call, i, r.errno)
			}
		}
		for i, r := range rs[:3] {
			if want := wall0 + int64(i)*int64(time.Millisecond); r.ns != want {
				t.Errorf("call %d: wall clock reading %d is %s, want %s", call, i,
					time.Unix(0, r.ns).UTC(), time.Unix(0, want).UTC())
			}
			if d := time.Since(time.Unix(0, r.ns)); d < 365*24*time.Hour {
				t.Errorf("call %d: wall clock reading %d is %s, only %s from the real time", call, i, time.Unix(0, r.ns).UTC(), d)
			}
		}
		for i, r := range rs[3:6] {
			if want := mono0 + int64(i)*int64(time.Microsecond); r.ns != want {
				t.Errorf("call %d: monotonic reading %d is %d, want %d", call, i, r.ns, want)
			}
		}
		for i, r := range rs[6:] { // process and thread CPU time
			if r.errno != errnoInval || uint64(r.ns) != 1<<64-1 {
				t.Errorf("call %d: CPU-time clock %d: errno %d, %d ns; want errno %d and nothing written",
					call, i+2, r.errno, r.ns, errnoInval)
			}
		}
	}
	first := read(p)
	if m := first[3].ns; m <= 0 || m > int64(time.Millisecond) {
		t.Errorf("the first monotonic reading is %d ns: not a counter from instantiation (the host's own clock?)", m)
	}
	check(1, first, epoch, first[3].ns)
	// Real time passes; the instance's clocks move by readings only.
	time.Sleep(50 * time.Millisecond)
	check(2, read(p), epoch+3*int64(time.Millisecond), first[5].ns+int64(time.Microsecond))

	// Another instance starts from the same point: nothing tells how long
	// the host has run.
	if rs := read(loadGuest(t, h, "clock")); !slices.Equal(rs, first) {
		t.Errorf("a fresh instance read %v, the first %v", rs, first)
	}
	defaultPlaces(t, "clock")
}

// TestSandboxEnviron: a policy's environment is the two variables the host
// sets for a Go guest's collector, GOGC and GOMEMLIMIT (from the memory
// cap), and its command line is empty: nothing of fleetd's own environment
// or arguments, even with a secret in the environment.
func TestSandboxEnviron(t *testing.T) {
	const secret = "tok-7f3c9a1e5b"
	t.Setenv("FLEET_SECRET", secret)
	t.Setenv("CONSUL_HTTP_TOKEN", secret)
	h, defaultPlaces := sandboxHost(t)
	p := loadGuest(t, h, "environ")
	b := probe(t, p, "x.service")
	if len(b) < 32 {
		t.Fatalf("the guest reported %d bytes", len(b))
	}
	wantEnv := "GOGC=off\x00GOMEMLIMIT=12MiB\x00" // 3/4 of the host's 16 MiB cap
	head, strs := u32s(t, b[:32]), string(b[32:])
	want := []uint32{
		errnoSuccess, 2, uint32(len(wantEnv)), errnoSuccess, // environ_sizes_get: 2 variables; environ_get
		errnoSuccess, 0, 0, errnoSuccess, // args_sizes_get: no arguments; args_get
	}
	if !slices.Equal(head, want) || strs != wantEnv {
		t.Errorf("the guest found %v %q, want %v %q", head, strs, want, wantEnv)
	}
	for _, s := range []string{secret, "FLEET_SECRET", "CONSUL", "PATH=", "HOME="} {
		if strings.Contains(strs, s) {
			t.Errorf("the guest read %q from the host", s)
		}
	}
	defaultPlaces(t, "environ")
}

// TestSandboxSocketsRejected: WASI's socket calls are not on the allowlist,
// so a module importing any is refused at upload, each named.
func TestSandboxSocketsRejected(t *testing.T) {
	h, defaultPlaces := sandboxHost(t)
	for name := range allowedWASI {
		if strings.HasPrefix(name, "sock_") {
			t.Errorf("a policy may import %s", name)
		}
	}
	p, err := h.Load(context.Background(), "sockets", wat(t, "sockets"), false)
	if err == nil {
		t.Fatalf("loaded %s", p.Name())
	}
	for _, fn := range []string{"sock_accept", "sock_recv", "sock_send", "sock_shutdown", "sock_open"} {
		if !strings.Contains(err.Error(), "wasi_snapshot_preview1."+fn) {
			t.Errorf("the refusal does not name %s: %v", fn, err)
		}
	}
	defaultPlaces(t, "sockets")
}

// TestSandboxRandom: random_get is deterministic (docs/abi.md): every
// fresh instance, in any host, reads the same stream.
func TestSandboxRandom(t *testing.T) {
	h, defaultPlaces := sandboxHost(t)
	h2, _ := sandboxHost(t)
	p1, p2, p3 := loadGuest(t, h, "random"), loadGuest(t, h, "random"), loadGuest(t, h2, "random")
	first := probe(t, p1, "x.service")
	if len(first) != 36 || binary.LittleEndian.Uint32(first) != errnoSuccess {
		t.Fatalf("random_get: % x", first)
	}
	if bytes.Count(first[4:], []byte{0}) == 32 {
		t.Errorf("random_get wrote zeros")
	}
	for i, p := range []*Policy{p2, p3} {
		if b := probe(t, p, "x.service"); !bytes.Equal(b, first) {
			t.Errorf("fresh instance %d read % x, the first % x", i+2, b[4:], first[4:])
		}
	}
	// One instance reads on in its stream, as every other instance does.
	second := probe(t, p1, "x.service")
	if bytes.Equal(second, first) {
		t.Errorf("an instance read the same 32 bytes twice: % x", first[4:])
	}
	if b := probe(t, p2, "x.service"); !bytes.Equal(b, second) {
		t.Errorf("the second reading differs between instances: % x, % x", b[4:], second[4:])
	}
	defaultPlaces(t, "random")
}

// TestSandboxPoliciesShareNothing: two policies, the same module, in one
// host: what one stores in its memory the other does not see, though each
// sees its own.
func TestSandboxPoliciesShareNothing(t *testing.T) {
	h, defaultPlaces := sandboxHost(t)
	a, b := loadGuest(t, h, "peek"), loadGuest(t, h, "peek")
	zeros := string(make([]byte, 16))
	for _, step := range []struct {
		p          *Policy
		unit, want string
	}{
		{a, "secret-a.service", zeros},              // fresh memory; a stores "secret-a.service"
		{b, "secret-b.service", zeros},              // b does not see a's secret
		{a, "x.service.......", "secret-a.service"}, // a does: the probe works
		{b, "x.service.......", "secret-b.service"},
	} {
		if got := string(probe(t, step.p, step.unit)); got != step.want {
			t.Fatalf("placing %s, the guest found %q at its address 8192, want %q", step.unit, got, step.want)
		}
	}
	// Nor does the same module uploaded as trusted, in the other runtime.
	c, err := h.Load(context.Background(), "peek-trusted", wat(t, "peek"), true)
	if err != nil {
		t.Fatal(err)
	}
	c.Sync(threeMachines(), nil)
	if got := string(probe(t, c, "x.service.......")); got != zeros {
		t.Errorf("a trusted instance found %q", got)
	}
	defaultPlaces(t, "peek")
}

// TestSandboxImportsRejected: a module reaching for anything outside its own
// instance through its imports (another module's memory, function, global
// or table, WASI under another name, an allowed WASI call with another
// signature) is refused at upload, naming what it imports.
func TestSandboxImportsRejected(t *testing.T) {
	h, defaultPlaces := sandboxHost(t)
	for _, tc := range []struct{ name, want string }{
		{"importmemory", "default.memory (memory)"},
		{"importenvmemory", "env.memory (memory)"},
		{"importpolicy", "default.fleet_place"},
		{"importunstable", "wasi_unstable.fd_read"},
		// wazero's CompiledModule does not list imported globals or
		// tables; no module a policy can name exports one, so the
		// instance cannot be made, and Load refuses it.
		{"importglobal", "module[default] not instantiated"},
		{"wasisig", "fd_read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := h.Load(context.Background(), "bad", wat(t, tc.name), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, tc.want)
			}
			if p != nil {
				t.Fatal("Load returned a policy with its error")
			}
			defaultPlaces(t, tc.name)
		})
	}
}

// TestHostileKernelLengths: fleet's kernel called with lengths that do not
// fit in the guest's memory (an end past 2^32, a negative count, counts
// whose size wraps to 0 or 8 bytes in 32 bits) traps that call with a clear
// error, the next instance works, and the host goes on.
func TestHostileKernelLengths(t *testing.T) {
	h, defaultPlaces := sandboxHost(t)
	p := loadGuest(t, h, "kernellen")
	good := func(t *testing.T) {
		t.Helper()
		if d, err := p.Place(context.Background(), request("0.service")); err != nil || d.Machine != "m2" {
			t.Fatalf("a good kernel call: %q %v, want m2 (slot 1)", d.Machine, err)
		}
	}
	good(t) // the guest's calls work when the lengths do
	for _, tc := range []struct {
		name, unit, what string // the unit's first character chooses the guest's call
	}{
		{"end past 2^32", "1.service", "2 words at 0xfffffff8"},
		{"negative count", "2.service", "4294967295 words at 0x2040"},
		{"count of 2^29 (0 bytes in 32 bits)", "3.service", "536870912 words at 0x0"},
		{"count of 2^29+1 (8 bytes in 32 bits)", "4.service", "536870913 words at 0x2000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := "fleet_place trapped: fleet kernel: " + tc.what + " are not inside the guest's memory"
			for attempt := range 2 { // a broken instance is replaced, and fails again the same way
				_, err := p.Place(context.Background(), request(tc.unit))
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("attempt %d: %v, want an error containing %q", attempt, err, want)
				}
				if strings.Contains(err.Error(), "runtime error") || strings.Contains(err.Error(), "goroutine") {
					t.Errorf("attempt %d: a Go panic, not the kernel's check: %v", attempt, err)
				}
			}
			good(t)
			defaultPlaces(t, "kernellen "+tc.unit)
		})
	}
}
