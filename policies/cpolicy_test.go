package policies

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// cPolicy builds the example policy written in C with its build.sh (Debian's
// clang, lld and wasi-libc; make deps does not install them).
func cPolicy(t testing.TB) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "c-roundrobin.wasm")
	script := filepath.Join("..", "sdk", "examples", "c-roundrobin", "build.sh")
	if b, err := exec.Command("sh", script, out).CombinedOutput(); err != nil {
		t.Fatalf("building the C policy (it needs clang, lld and wasi-libc: apt-get install clang lld wasi-libc): %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCPolicy runs sdk/examples/c-roundrobin, a policy written in C against
// docs/abi.md with no SDK: the ABI is language-neutral. It deals units to
// the machine with the fewest, ties to the lowest ID, and turns down
// machines with drain=true.
func TestCPolicy(t *testing.T) {
	ctx := context.Background()
	wasm := cPolicy(t)
	h := newHost(t, Config{})
	p, err := h.Load(ctx, "c-roundrobin", wasm, false)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := p.Place(ctx, request("x.service")); err != nil || d.Machine != "" || len(d.Rejected) != 0 {
		t.Fatalf("no machines: %+v %v, want no machine and no reasons", d, err)
	}

	draining := Machine{ID: "m4", IP: "10.0.0.4", Metadata: map[string]string{"drain": "true", "region": "east"}}
	machines := append(threeMachines(), draining)
	placed := map[string]string{"a.service": "m1", "b.service": "m2", "c.service": "m2"}
	// Each unit placed is synced as one op 4, so the next decision counts it:
	// m3 is empty, then the least loaded of equals is the lowest ID.
	for i, want := range []string{"m3", "m1", "m3", "m1", "m2", "m3"} {
		p.Sync(machines, placed)
		unit := fmt.Sprintf("x@%d.service", i)
		d, err := p.Place(ctx, request(unit))
		if err != nil {
			t.Fatal(err)
		}
		if d.Machine != want || len(d.Rejected) != 1 || d.Rejected[0] != (wire.Rejection{Machine: "m4", Reason: "draining: metadata drain=true"}) {
			t.Fatalf("%s: placed on %q turning down %+v, want %s turning down m4 for draining", unit, d.Machine, d.Rejected, want)
		}
		placed[unit] = d.Machine
	}

	// Now m1, m2 and m3 run three units each. Each step syncs a change and
	// places one unit without recording it.
	m2moved := threeMachines()
	m2moved[1].Metadata = map[string]string{"region": "north"}
	for _, step := range []struct {
		name     string
		machines []Machine
		unplace  []string // units that leave their machine
		want     string
		rejected int // machines turned down
	}{
		{"units leave m2 (op 5)", machines, []string{"b.service", "x@4.service"}, "m2", 1},
		{"m4 stops draining, m2 changes metadata (op 2 keeps counts)",
			append(m2moved, Machine{ID: "m4", IP: "10.0.0.4"}), nil, "m4", 0},
		{"m4 leaves (op 3)", m2moved, nil, "m2", 0},
		{"m2 leaves with its units", []Machine{m2moved[0], m2moved[2]}, []string{"c.service"}, "m1", 0},
		{"m2 comes back empty", m2moved, nil, "m2", 0},
	} {
		for _, u := range step.unplace {
			delete(placed, u)
		}
		p.Sync(step.machines, placed)
		d, err := p.Place(ctx, request("y.service"))
		if err != nil || d.Machine != step.want || len(d.Rejected) != step.rejected {
			t.Fatalf("%s: placed on %q turning down %+v (%v), want %s turning down %d", step.name, d.Machine, d.Rejected, err, step.want, step.rejected)
		}
	}
}

// TestCPolicyWire drives the C module's exports with hand-made batches: it
// skips the records it does not keep (ops 6 and 7) and refuses what does
// not decode, as docs/abi.md asks of every guest.
func TestCPolicyWire(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{})
	p, err := h.Load(ctx, "c-roundrobin", cPolicy(t), false)
	if err != nil {
		t.Fatal(err)
	}
	i, err := p.newInstance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer i.close(ctx)
	apply := func(b []byte) uint64 {
		t.Helper()
		code, err := i.send(ctx, p, i.apply, b)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	place := func(q []byte) (wire.Decision, bool) {
		t.Helper()
		packed, err := i.send(ctx, p, i.place, q)
		if err != nil {
			t.Fatal(err)
		}
		if packed == 0 {
			return wire.Decision{}, false
		}
		view, ok := i.mod.Memory().Read(uint32(packed>>32), uint32(packed))
		if !ok {
			t.Fatalf("fleet_place answered outside memory: %#x", packed)
		}
		d, err := wire.DecodeDecision(view)
		if err != nil {
			t.Fatalf("fleet_place answered nonsense: %v", err)
		}
		return d, true
	}

	var w wire.Writer
	w.U8(wire.OpReset)
	for _, id := range []string{"b", "a", "c"} { // out of order: the module sorts
		w.U8(wire.OpMachine)
		w.Str(id)
		w.Str("10.0.0.1")
		w.U32(1)
		w.Str("zone")
		w.Str("z1")
	}
	w.U8(wire.OpUnitDefined)
	def := request("u.service", "MachineMetadata=zone=z1", "Conflicts=v*")
	def.Encode(&w)
	w.U8(wire.OpUnitPlaced)
	w.Str("u.service")
	w.Str("a")
	w.U8(wire.OpUnitPlaced)
	w.Str("v.service")
	w.Str("nowhere") // a machine it does not know: ignored
	w.U8(wire.OpUnitForgotten)
	w.Str("old.service")
	w.U8(wire.OpMachineGone)
	w.Str("c")
	if code := apply(w.B); code != 0 {
		t.Fatalf("fleet_apply of a valid batch: %d", code)
	}
	var q wire.Writer
	def.Encode(&q)
	if d, ok := place(q.B); !ok || d.Machine != "b" || len(d.Rejected) != 0 {
		t.Fatalf("after the batch: %+v %v, want b (a runs u, c left)", d, ok)
	}
	var reset wire.Writer
	reset.U8(wire.OpReset)
	reset.U8(wire.OpMachine)
	reset.Str("z")
	reset.Str("10.0.0.9")
	reset.U32(0)
	if code := apply(reset.B); code != 0 {
		t.Fatalf("fleet_apply of a reset: %d", code)
	}
	if d, ok := place(q.B); !ok || d.Machine != "z" {
		t.Fatalf("after a reset: %+v %v, want z, the only machine", d, ok)
	}

	for _, bad := range []struct {
		name string
		b    []byte
	}{
		{"unknown op", []byte{99}},
		{"short string", []byte{wire.OpMachineGone, 5, 0, 0, 0, 'a'}},
		{"huge metadata count", []byte{wire.OpMachine, 1, 0, 0, 0, 'a', 0, 0, 0, 0, 255, 255, 255, 255}},
		{"short unit definition", []byte{wire.OpUnitDefined, 1, 0, 0, 0, 'u', 1, 0, 0, 0}},
		{"op 0", []byte{0}},
		{"valid, then op 8", []byte{wire.OpUnitForgotten, 0, 0, 0, 0, 8, 0, 0, 0, 0}},
	} {
		if code := apply(bad.b); code == 0 {
			t.Errorf("fleet_apply accepted a batch with %s", bad.name)
		}
	}
	for _, bad := range [][]byte{
		{1, 0, 0, 0, 'x', 255, 255, 255, 255}, // huge option count
		{1, 0, 0, 0, 'x', 0, 0, 0, 0, 0},      // a byte after the request
		{1, 0, 0},
	} {
		if _, ok := place(bad); ok {
			t.Errorf("fleet_place answered the request %v", bad)
		}
	}
}
