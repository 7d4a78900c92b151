package sdk

import (
	"testing"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// FuzzApply: whatever update bytes reach a guest, applying them and then
// deciding for every handle fails cleanly or decides, and never panics: a
// policy built with the SDK cannot be crashed by its input.
func FuzzApply(f *testing.F) {
	var w wire.Writer
	w.U8(wire.OpReset)
	for _, m := range []string{"m1", "m2"} {
		w.U8(wire.OpMachine)
		w.Str(m)
		w.Str("10.0.0.1")
		w.U32(1)
		w.Str("region")
		w.Str("east")
	}
	w.U8(wire.OpUnitHandle)
	w.U32(0)
	(&wire.Request{Unit: "a.service", Options: []wire.Option{{Section: "X-Fleet", Name: "Conflicts", Value: "b*"}}}).Encode(&w)
	w.U8(wire.OpUnitPlaced)
	w.Str("b.service")
	w.Str("m1")
	w.U8(wire.OpMachineGone)
	w.Str("m2")
	w.U8(wire.OpUnitForgotten)
	w.Str("a.service")
	f.Add(w.B)
	f.Add([]byte{wire.OpUnitHandle, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newRunner(func(c *Cluster, u *Unit) Decision {
			fits := c.All()
			c.Each(c.Hosting("b*"), func(m *Machine) { fits.Delete(m) })
			if m := c.LeastLoaded(fits); m != nil {
				return Decision{Machine: m.ID}
			}
			var d Decision
			d.RejectAll(c, "no room")
			return d
		})
		_ = r.Apply(b)
		for h := uint32(0); h < 4; h++ {
			_, _ = r.PlaceDefined(h)
		}
		_, _ = r.Place(b)
	})
}
