package policies

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	defaultpolicy "github.com/wasmfleet/fleet/plugins/default"
	"github.com/wasmfleet/fleet/plugins/default/policy"
	"github.com/wasmfleet/fleet/sdk/native"
	"github.com/wasmfleet/fleet/sdk/wire"
)

// wat compiles testdata/NAME.wat with wabt's wat2wasm (make deps installs it).
func wat(t testing.TB, name string) []byte {
	t.Helper()
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Fatal("wat2wasm not found: install Debian's wabt (make deps does)")
	}
	out := filepath.Join(t.TempDir(), name+".wasm")
	if b, err := exec.Command("wat2wasm", filepath.Join("testdata", name+".wat"), "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goGuest builds the Go program pkg (a directory such as ./testdata/gofail,
// or an import path) to WebAssembly with go build's flags: a policy is
// built with -buildmode=c-shared, as docs/policies.md says; without it, go
// build makes a command module, which Load refuses.
func goGuest(t testing.TB, pkg string, flags ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg)+".wasm")
	args := append(append([]string{"build"}, flags...), "-trimpath", "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, o)
	}
	mod, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func newHost(t testing.TB, cfg Config) *Host {
	t.Helper()
	h, err := NewHost(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func threeMachines() []Machine {
	return []Machine{
		{ID: "m1", IP: "10.0.0.1", Metadata: map[string]string{"region": "east", "disk": "ssd"}},
		{ID: "m2", IP: "10.0.0.2", Metadata: map[string]string{"region": "west", "disk": "ssd"}},
		{ID: "m3", IP: "10.0.0.3", Metadata: map[string]string{"region": "west", "disk": "hdd"}},
	}
}

func request(unit string, xfleet ...string) wire.Request {
	q := wire.Request{Unit: unit, Options: []wire.Option{{Section: "Service", Name: "ExecStart", Value: "/bin/true"}}}
	for _, kv := range xfleet {
		k, v, _ := strings.Cut(kv, "=")
		q.Options = append(q.Options, wire.Option{Section: "X-Fleet", Name: k, Value: v})
	}
	return q
}

// TestDefaultPolicy runs the embedded default policy: fleet's least-loaded
// rule with MachineMetadata, with reasons for the machines it turns down.
func TestDefaultPolicy(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{})
	p, err := h.Load(ctx, "default", defaultpolicy.Wasm, true)
	if err != nil {
		t.Fatal(err)
	}
	p.Sync(threeMachines(), map[string]string{"a.service": "m1", "b.service": "m2", "c.service": "m2"})
	for _, tc := range []struct {
		req     wire.Request
		machine string
		reject  []string
	}{
		{request("x.service"), "m3", nil},
		// Reasons are given only when no machine fits.
		{request("x.service", "MachineMetadata=disk=ssd"), "m1", nil},
		{request("x.service", "MachineMetadata=region=west", "MachineMetadata=disk=ssd"), "m2", nil},
		{request("x.service", `MachineMetadata="region=mars"`), "", []string{"m1", "m2", "m3"}},
	} {
		d, err := p.Place(ctx, tc.req)
		if err != nil {
			t.Fatal(err)
		}
		var rej []string
		for _, r := range d.Rejected {
			rej = append(rej, r.Machine)
		}
		if d.Machine != tc.machine || fmt.Sprint(rej) != fmt.Sprint(tc.reject) {
			t.Errorf("%v: placed on %q rejecting %v, want %q rejecting %v", tc.req.Options, d.Machine, rej, tc.machine, tc.reject)
		}
	}
	// The cluster changes: the instance gets only the difference.
	p.Sync(threeMachines()[:2], map[string]string{"a.service": "m1"})
	if d, err := p.Place(ctx, request("y.service")); err != nil || d.Machine != "m2" {
		t.Fatalf("after m3 left and units moved: %q %v", d.Machine, err)
	}
}

// TestDefaultPolicyMatchesNative is the differential test: the default
// policy compiled to WebAssembly and the same source compiled natively must
// decide the same on random clusters.
func TestDefaultPolicyMatchesNative(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{})
	p, err := h.Load(ctx, "default", defaultpolicy.Wasm, true)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	regions, disks := []string{"east", "west", "north"}, []string{"ssd", "hdd"}
	for round := 0; round < 200; round++ {
		var ms []Machine
		for i := 0; i < 1+rng.IntN(30); i++ {
			ms = append(ms, Machine{ID: fmt.Sprintf("m%02d", rng.IntN(60)), IP: "10.0.0.1",
				Metadata: map[string]string{"region": regions[rng.IntN(3)], "disk": disks[rng.IntN(2)]}})
		}
		placed := map[string]string{}
		defs := map[string]UnitDef{}
		for u := 0; u < rng.IntN(60); u++ {
			name := fmt.Sprintf("u%d.service", u)
			placed[name] = ms[rng.IntN(len(ms))].ID
			var opts []wire.Option
			if rng.IntN(3) == 0 {
				opts = append(opts, wire.Option{Section: "X-Fleet", Name: "Conflicts", Value: fmt.Sprintf("u%d*", rng.IntN(10))})
			}
			defs[name] = UnitDef{Hash: fmt.Sprint(opts), Options: opts}
		}
		p.Define(defs)
		p.Sync(ms, placed)
		native := native.NewRunner(policy.Place)
		p.mu.Lock()
		full := p.mirror.full()
		p.mu.Unlock()
		if err := native.Apply(full); err != nil {
			t.Fatal(err)
		}
		var xf []string
		if rng.IntN(2) == 0 {
			xf = append(xf, "MachineMetadata=region="+regions[rng.IntN(3)])
		}
		if rng.IntN(2) == 0 {
			xf = append(xf, "MachineMetadata=disk="+disks[rng.IntN(2)]+" region="+regions[rng.IntN(3)])
		}
		if rng.IntN(3) == 0 {
			xf = append(xf, fmt.Sprintf("Conflicts=u%d*", rng.IntN(10)))
		}
		if rng.IntN(5) == 0 {
			xf = append(xf, "MachineID="+ms[rng.IntN(len(ms))].ID)
		}
		req := request("new.service", xf...)
		got, err := p.Place(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var w wire.Writer
		req.Encode(&w)
		out, err := native.Place(w.B)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := wire.DecodeDecision(out)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: wasm %+v, native %+v", round, got, want)
		}
	}
}

// TestRejectedAtLoad: every bad module is refused with a message naming the
// problem.
func TestRejectedAtLoad(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{MaxModuleBytes: 4 << 20, MemoryLimitMiB: 64})
	for _, tc := range []struct {
		name string
		wasm []byte
		want string
	}{
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), "not a WebAssembly module"},
		{"truncated", []byte("\x00asm\x01\x00\x00\x00\x01"), "does not compile"},
		{"too large", append([]byte("\x00asm"), make([]byte, 5<<20)...), "the limit is"},
		{"wrong version", wat(t, "version3"), fmt.Sprintf("policy bad: speaks ABI version 3; this fleetd speaks versions %d to %d: "+
			"rebuild it against the SDK this fleet carries (fleetctl policy sdk DIR writes it into DIR/fleet-sdk)", wire.OldestVersion, wire.Version)},
		{"missing export", wat(t, "noplace"), "does not export fleet_place"},
		{"wrong signature", wat(t, "badsig"), "wrong signature"},
		{"optional export mistyped", wat(t, "defsig"), "export fleet_place_defined has the wrong signature"},
		{"forbidden import", wat(t, "import"), "env.open_socket"},
		{"mistyped kernel import", wat(t, "kernelsig"), "imports fleet.least with the wrong signature"},
		{"trap in initializer", wat(t, "inittrap"), `traps in its initializer: the policy wrote "inittrap: cannot start"; `},
		{"initializer that never ends", wat(t, "initloop"), "instantiating stopped after its time limit"},
		// Refused before an instance is made: its exports would trap.
		{"command module", wat(t, "command"), "policy bad: is a command module (it exports _start, which fleetd never runs): " +
			"build it as a reactor; for Go: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bad.wasm ."},
		{"Go policy built without -buildmode=c-shared", goGuest(t, "github.com/wasmfleet/fleet/sdk/examples/maxper"),
			"is a command module (it exports _start, which fleetd never runs)"},
		{"memory over the cap at start", wat(t, "bigmemory"),
			"policy bad: needs 125 MiB of memory at start; a policy may use 64 MiB (fleetd --policy-memory-mib)"},
		{"memory maximum over the cap", wat(t, "bigmaxmemory"),
			"policy bad: declares it may grow to 128 MiB of memory; a policy may use 64 MiB (fleetd --policy-memory-mib)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Load(ctx, "bad", tc.wasm, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestHostileGuests: a policy that loops, traps, eats memory, recurses, or
// answers nonsense fails its one decision, within its time limit, and the
// host goes on placing with other policies.
func TestHostileGuests(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{CallTimeout: 200 * time.Millisecond, MemoryLimitMiB: 16})
	good, err := h.Load(ctx, "default", defaultpolicy.Wasm, true)
	if err != nil {
		t.Fatal(err)
	}
	good.Sync(threeMachines(), nil)
	for _, tc := range []struct {
		name, want string
	}{
		{"loop", "time limit"},
		{"trap", "trapped"},
		{"bomb", "trapped: it ran out of memory: it had grown to 12.1 MiB; a policy may use 16 MiB (fleetd --policy-memory-mib); wasm error: unreachable"},
		{"recursion", "fleet_place"}, // a stack overflow trap, or the time limit, whichever comes first
		{"huge", "limit"},
		{"ghost", "not a live machine"},
		{"garbage", "nonsense"},
		{"badkernel", "not inside the guest's memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := h.Load(ctx, tc.name, wat(t, tc.name), false)
			if err != nil {
				t.Fatal(err)
			}
			p.Sync(threeMachines(), nil)
			for attempt := 0; attempt < 2; attempt++ { // a broken instance is replaced, and fails again the same way
				start := time.Now()
				_, err = p.Place(ctx, request("x.service"))
				// The call's limit is 100 ms; 30 s tells a guest that was
				// stopped on a busy host from one that never was.
				if took := time.Since(start); took > 30*time.Second {
					t.Errorf("the failing call took %s", took)
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Place: %v, want an error containing %q", err, tc.want)
				}
			}
			if d, err := good.Place(ctx, request("x.service")); err != nil || d.Machine != "m1" {
				t.Fatalf("the default policy after %s: %q %v", tc.name, d.Machine, err)
			}
		})
	}
}

// TestManyDecisions runs a long stretch of decisions through one instance
// with a small memory cap, as a leader does over weeks: the guest's garbage
// collector must keep up (it did not under wazero's default fake clock, and
// the instance ran out of memory), and every decision must succeed.
func TestManyDecisions(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{PoolSize: 1})
	p, err := h.Load(ctx, "default", defaultpolicy.Wasm, true)
	if err != nil {
		t.Fatal(err)
	}
	ms, placed := benchCluster(1000)
	p.Sync(ms, placed)
	for i := range 3000 {
		// A unit no machine fits: the guest gives a reason per machine,
		// about 100 KB of garbage per decision.
		d, err := p.Place(ctx, request(fmt.Sprintf("api@%d.service", i), "MachineMetadata=region=nowhere"))
		if err != nil || d.Machine != "" || len(d.Rejected) != len(ms) {
			t.Fatalf("decision %d: %q, %d reasons, %v", i, d.Machine, len(d.Rejected), err)
		}
	}
}

// TestDeferredChoice: fleetd makes a guest's deferred choice (the least key
// of a set, named by the guest's table of IDs), answers no machine for an
// empty set, and refuses every record that points outside the guest's
// memory or names no live machine, failing only that decision.
func TestDeferredChoice(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{})
	p, err := h.Load(ctx, "deferred", wat(t, "deferred"), false)
	if err != nil {
		t.Fatal(err)
	}
	p.Sync(threeMachines(), nil)
	for k, want := range []string{
		"m2", "", "set: 4 words at 0xfff8 are not inside", "set: 1 words at 0x1001 are not inside",
		"slot 1's machine ID at 0xffff0000+2 is not inside", "slot 1's machine ID is 5000 bytes",
		`chose machine "ghost", which is not a live machine`, "the table of 3 IDs at 0xfff8 is not inside",
		"", "keys: 1073741824 words", "slot 1's machine ID is 0 bytes",
	} {
		d, err := p.Place(ctx, request(fmt.Sprintf("%c.service", 'A'+k)))
		switch {
		case want == "m2" || want == "":
			if err != nil || d.Machine != want || len(d.Rejected) != 0 {
				t.Errorf("record %d: %q %v %v, want %q", k, d.Machine, d.Rejected, err, want)
			}
		case err == nil || !strings.Contains(err.Error(), want):
			t.Errorf("record %d: %q %v, want an error containing %q", k, d.Machine, err, want)
		}
		// A refused answer fails one decision; the next instance works.
		if d, err := p.Place(ctx, request("A.service")); err != nil || d.Machine != "m2" {
			t.Fatalf("after record %d: %q %v", k, d.Machine, err)
		}
	}
}

// TestRetryAfterTimeLimit: a decision that runs out of its time limit is
// tried once more with RetryTimeout, and one that runs out again fails, as
// do the policy's next decisions without a second try until one succeeds.
// spin.wat's decision takes well over the 1 ms limit on any machine and
// well under the 60 s of the second try on a busy one: those are the
// margins; the infinite loop of loop.wat runs out of both.
func TestRetryAfterTimeLimit(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{CallTimeout: time.Millisecond, RetryTimeout: time.Minute})
	spin, err := h.Load(ctx, "spin", wat(t, "spin"), false)
	if err != nil {
		t.Fatal(err)
	}
	spin.Sync(threeMachines(), nil)
	for range 2 {
		if d, err := spin.Place(ctx, request("x.service")); err != nil || d.Machine != "m1" {
			t.Fatalf("a slow decision within its second try: %q %v, want m1", d.Machine, err)
		}
	}

	h = newHost(t, Config{CallTimeout: time.Millisecond, RetryTimeout: 20 * time.Millisecond})
	loop, err := h.Load(ctx, "loop", wat(t, "loop"), false)
	if err != nil {
		t.Fatal(err)
	}
	loop.Sync(threeMachines(), nil)
	// Which call runs out (fleet_apply has 20 times the bound) depends on
	// how busy the machine is; that each try runs out does not.
	_, err = loop.Place(ctx, request("x.service"))
	if err == nil || !regexp.MustCompile(`tried again after running out of 1ms: (fleet_\w+ )+stopped after its time limit of \d+ms$`).MatchString(err.Error()) {
		t.Fatalf("a loop's first decision: %v, want it stopped twice", err)
	}
	_, err = loop.Place(ctx, request("y.service"))
	if err == nil || !regexp.MustCompile(`stopped after its time limit of \d+ms; not tried again`).MatchString(err.Error()) {
		t.Fatalf("a loop's next decision: %v, want it stopped once and not tried again", err)
	}
}
