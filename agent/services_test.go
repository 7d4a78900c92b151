package agent

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
)

// TestUnitCatalog: the units of one service name on a machine share one
// service instance, each with a check of its own; the instance comes with
// the first and goes once the last is gone; an unchanged unit writes
// nothing.
func TestUnitCatalog(t *testing.T) {
	u := newUnitCatalog("m1", "127.0.0.1")
	web1 := registry.UnitState{Name: "web@1.service", State: registry.Launched, Load: "loaded", Active: "active", Sub: "running"}
	web2 := registry.UnitState{Name: "web@2.service", State: registry.Launched, Load: "loaded", Active: "active", Sub: "running"}
	for _, step := range []struct {
		name string
		ops  func() []*api.TxnOp
		want string
		done func()
	}{
		{"the first unit", func() []*api.TxnOp { return u.ops(web1) }, "service-set check-set ", func() { u.written(web1) }},
		{"unchanged", func() []*api.TxnOp { return u.ops(web1) }, "", nil},
		{"changed, but not as its check shows it", func() []*api.TxnOp { w := web1; w.Hash = "3f2a"; return u.ops(w) }, "", nil},
		{"a second unit of the name", func() []*api.TxnOp { return u.ops(web2) }, "check-set ", func() { u.written(web2) }},
		{"one leaves", func() []*api.TxnOp { return u.removeOps("web@1.service") }, "check-delete ", func() { u.removed("web@1.service") }},
		{"the last leaves", func() []*api.TxnOp { return u.removeOps("web@2.service") }, "check-delete ", func() { u.removed("web@2.service") }},
		{"its instance goes once none is left", func() []*api.TxnOp {
			if gone := u.gone(map[string]bool{"db": true}); !slices.Equal(gone, []string{"web"}) {
				t.Fatalf("services gone %v, want [web]", gone)
			}
			return []*api.TxnOp{registry.ServiceDeleteOp("m1", "web")}
		}, "service-delete ", func() { u.serviceRemoved("web") }},
		{"back", func() []*api.TxnOp { return u.ops(web1) }, "service-set check-set ", func() { u.written(web1) }},
	} {
		u.begin() // each step is a sync of its own
		if got := kinds(step.ops()); got != step.want {
			t.Fatalf("%s: %q, want %q", step.name, got, step.want)
		}
		if step.done != nil {
			step.done()
		}
	}
	web1.Active = "failed"
	u.begin()
	if got := kinds(u.ops(web1)); got != "check-set " {
		t.Errorf("a unit that failed: %q, want its check only", got)
	}
}

// kinds names ops' kinds and verbs, in order.
func kinds(ops []*api.TxnOp) string {
	var s string
	for _, op := range ops {
		switch {
		case op.Service != nil:
			s += "service-" + string(op.Service.Verb) + " "
		case op.Check != nil:
			s += "check-" + string(op.Check.Verb) + " "
		}
	}
	return s
}

// TestUnitCatalogRegistersOncePerSync: the new units of one service in
// one sync register its instance once, with the first; a sync whose
// registration did not go through is followed by one that registers it
// again.
func TestUnitCatalogRegistersOncePerSync(t *testing.T) {
	u := newUnitCatalog("m1", "127.0.0.1")
	units := make([]registry.UnitState, 3)
	for i := range units {
		units[i] = registry.UnitState{Name: fmt.Sprintf("db@%d.service", i), State: registry.Launched, Load: "loaded", Active: "active", Sub: "running"}
	}
	sync := func(sts ...registry.UnitState) (got []string) {
		u.begin()
		for _, st := range sts {
			got = append(got, kinds(u.ops(st)))
		}
		return got
	}
	want := []string{"service-set check-set ", "check-set ", "check-set "}
	if got := sync(units...); !slices.Equal(got, want) {
		t.Fatalf("three new units of a service in one sync: %q, want %q", got, want)
	}
	// None went through: the next sync registers the instance again.
	if got := sync(units[2], units[1]); !slices.Equal(got, want[:2]) {
		t.Fatalf("after a sync that failed: %q, want %q", got, want[:2])
	}
	u.written(units[2])
	u.written(units[1])
	if got := sync(units...); !slices.Equal(got, []string{"check-set ", "", ""}) {
		t.Fatalf("after the instance was written: %q, want the check of the unit not yet written only", got)
	}
}
