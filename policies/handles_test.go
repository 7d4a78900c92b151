package policies

import (
	"context"
	"testing"

	defaultpolicy "github.com/wasmfleet/fleet/plugins/default"
	"github.com/wasmfleet/fleet/sdk"
	"github.com/wasmfleet/fleet/sdk/native"
	"github.com/wasmfleet/fleet/sdk/wire"
)

// A forgotten unit's handle is reused, and the guest then answers for the
// new unit under it, not the old one.
func TestHandlesReused(t *testing.T) {
	m := newMirror(true)
	policy := func(_ *sdk.Cluster, u *sdk.Unit) sdk.Decision { return sdk.Decision{Machine: u.Name} }
	echo := native.NewRunner(policy)
	catchUp := func() {
		t.Helper()
		if err := echo.Apply(m.log[len(m.log)-1]); err != nil {
			t.Fatal(err)
		}
	}
	asked := func(name string) string {
		t.Helper()
		h, ok := m.handleFor(wire.Request{Unit: name})
		if !ok {
			t.Fatalf("no handle for %s", name)
		}
		out, err := echo.PlaceDefined(h)
		if err != nil {
			t.Fatal(err)
		}
		d, err := wire.DecodeDecision(out)
		if err != nil {
			t.Fatal(err)
		}
		return d.Machine
	}
	m.define(map[string]UnitDef{"a.service": {Hash: "1"}, "b.service": {Hash: "1"}})
	catchUp()
	ha, _ := m.handleFor(wire.Request{Unit: "a.service"})
	m.define(map[string]UnitDef{"b.service": {Hash: "1"}})
	catchUp()
	if _, err := echo.PlaceDefined(ha); err == nil {
		t.Fatal("a forgotten unit's handle still answers")
	}
	m.define(map[string]UnitDef{"b.service": {Hash: "1"}, "c.service": {Hash: "1"}})
	catchUp()
	if hc, _ := m.handleFor(wire.Request{Unit: "c.service"}); hc != ha {
		t.Errorf("c got handle %d, want a's freed handle %d", hc, ha)
	}
	for _, name := range []string{"b.service", "c.service"} {
		if got := asked(name); got != name {
			t.Errorf("asked for %s by handle, the guest decided for %s", name, got)
		}
	}
	// After a reset (an instance far behind gets the whole cluster) the
	// handles are the same.
	fresh := native.NewRunner(policy)
	if err := fresh.Apply(m.full()); err != nil {
		t.Fatal(err)
	}
	echo = fresh
	for _, name := range []string{"b.service", "c.service"} {
		if got := asked(name); got != name {
			t.Errorf("after a reset, asked for %s by handle, the guest decided for %s", name, got)
		}
	}
}

// A request whose options differ from the unit's definition (a unit edited
// since, or a simulation) is decided on the request's own options, not on
// what the guest holds under the unit's handle.
func TestRequestOptionsWinOverDefinition(t *testing.T) {
	ctx := context.Background()
	h := newHost(t, Config{})
	p, err := h.Load(ctx, "default", defaultpolicy.Wasm, true)
	if err != nil {
		t.Fatal(err)
	}
	if !p.mirror.handles {
		t.Fatal("the default policy does not take handles (fleet_place_defined)")
	}
	ms := threeMachines()
	east, west := request("web.service", "MachineMetadata=region=east"), request("web.service", "MachineMetadata=region=west")
	p.Define(map[string]UnitDef{"web.service": {Hash: "east", Options: east.Options}})
	p.Sync(ms, nil)
	want := map[string]string{} // the region's first machine by ID: no units anywhere
	for _, m := range ms {
		if want[m.Metadata["region"]] == "" {
			want[m.Metadata["region"]] = m.ID
		}
	}
	for _, tc := range []struct {
		req    wire.Request
		region string
	}{{east, "east"}, {west, "west"}, {east, "east"}} {
		d, err := p.Place(ctx, tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if d.Machine != want[tc.region] {
			t.Errorf("asked with %v: placed on %q, want the %s machine %q", tc.req.Options, d.Machine, tc.region, want[tc.region])
		}
	}
}
