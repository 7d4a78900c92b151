package agent

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
)

// TestUnitCatalog: the units of one service name on a machine share one
// service instance, which comes with the first and goes once the last is
// gone; the passing ones are listed in one check of it, and each that is
// not passing is a check of its own; an unchanged unit writes nothing.
func TestUnitCatalog(t *testing.T) {
	u := newUnitCatalog("m1", "127.0.0.1")
	running := func(name string) registry.UnitState {
		return registry.UnitState{Name: name, State: registry.Launched, Load: "loaded", Active: "active", Sub: "running"}
	}
	failed := func(name string) registry.UnitState {
		st := running(name)
		st.Active, st.Sub = "failed", "failed"
		return st
	}
	states := map[string]registry.UnitState{}
	for _, step := range []struct {
		name   string
		change func()
		want   string
	}{
		{"the first unit", func() { states["web@1.service"] = running("web@1.service") },
			"service web: service-set passing-set"},
		{"unchanged", func() {}, ""},
		{"changed, but not as its check shows it", func() { st := states["web@1.service"]; st.Hash = "3f2a"; states["web@1.service"] = st }, ""},
		{"a second unit of the name", func() { states["web@2.service"] = running("web@2.service") }, "service web: passing-set"},
		{"one fails", func() { states["web@1.service"] = failed("web@1.service") },
			"service web: passing-set; check web@1.service: check-set"},
		{"a second fails: its own check, the instance's passing check gone", func() { states["web@2.service"] = failed("web@2.service") },
			"service web: passing-delete; check web@2.service: check-set"},
		{"one recovers", func() { states["web@1.service"] = running("web@1.service") },
			"service web: passing-set; check web@1.service: check-delete"},
		{"a failed unit leaves, a passing one stays", func() { delete(states, "web@2.service") },
			"check web@2.service: check-delete"},
		{"a unit of another name, failed", func() { states["db.service"] = failed("db.service") },
			"service db: service-set; check db.service: check-set"},
		{"the last of a name leaves: its instance goes whole", func() { delete(states, "db.service") }, ""},
	} {
		step.change()
		if got := changeKinds(u.changes(states), true); got != step.want {
			t.Fatalf("%s: %q, want %q", step.name, got, step.want)
		}
	}
	if gone := u.gone(map[string]bool{"web": true}); !slices.Equal(gone, []string{"db"}) {
		t.Fatalf("services gone %v, want [db]", gone)
	}
	u.serviceRemoved("db")
	states["db.service"] = running("db.service")
	if got := changeKinds(u.changes(states), true); got != "service db: service-set passing-set" {
		t.Errorf("a name back after its instance went: %q, want its instance and passing check again", got)
	}
}

// TestUnitCatalogRetries: changes that did not go through are asked for
// again at the next sync, and only those.
func TestUnitCatalogRetries(t *testing.T) {
	u := newUnitCatalog("m1", "127.0.0.1")
	states := map[string]registry.UnitState{}
	for i := range 3 {
		name := fmt.Sprintf("db@%d.service", i)
		states[name] = registry.UnitState{Name: name, State: registry.Launched, Load: "loaded", Active: "active", Sub: "running"}
	}
	states["db@2.service"] = registry.UnitState{Name: "db@2.service", State: registry.Launched, Load: "loaded", Active: "failed", Sub: "failed"}
	want := "service db: service-set passing-set; check db@2.service: check-set"
	if got := changeKinds(u.changes(states), false); got != want {
		t.Fatalf("three new units of a service, one failed: %q, want %q", got, want)
	}
	// None went through: the next sync asks for all of it again.
	changes := u.changes(states)
	if got := changeKinds(changes, false); got != want {
		t.Fatalf("after a sync that failed: %q, want %q", got, want)
	}
	changes[0].done() // the instance and its passing check went through, the failed unit's check not
	if got := changeKinds(u.changes(states), true); got != "check db@2.service: check-set" {
		t.Fatalf("after the instance was written: %q, want the failed unit's check only", got)
	}
	if got := changeKinds(u.changes(states), true); got != "" {
		t.Fatalf("after everything was written: %q, want nothing", got)
	}
}

// TestPassingOutput: the passing check names its units by state, and
// counts those past what it lists.
func TestPassingOutput(t *testing.T) {
	var sts []registry.UnitState
	for i := range passingListed + 5 {
		sts = append(sts, registry.UnitState{Name: fmt.Sprintf("web@%04d.service", i), State: registry.Launched, Load: "loaded", Active: "active", Sub: "running"})
	}
	sts = append(sts, registry.UnitState{Name: "web@idle.service", State: registry.Loaded, Load: "loaded", Active: "inactive", Sub: "dead"})
	got := passingOutput(byOutput(sts[len(sts)-3:]))
	want := "2 loaded active/running (desired launched): web@1003.service web@1004.service\n1 loaded inactive/dead (desired loaded): web@idle.service"
	if got != want {
		t.Errorf("passing output:\n%s\nwant\n%s", got, want)
	}
	all := passingOutput(byOutput(sts))
	if n := strings.Count(all, " web@"); n != passingListed {
		t.Errorf("%d units listed of %d, want %d", n, len(sts), passingListed)
	}
	if !strings.HasPrefix(all, fmt.Sprintf("%d loaded active/running", passingListed+5)) || !strings.Contains(all, "\n1 loaded inactive/dead (desired loaded): ...") {
		t.Errorf("passing output past what it lists does not count the rest:\n%s", all[len(all)-200:])
	}
}

// byOutput groups the names of sts, in order, by the output of their
// Health, as the passing check takes them.
func byOutput(sts []registry.UnitState) map[string][]string {
	out := map[string][]string{}
	for _, st := range sts {
		_, output := Health(st)
		out[output] = append(out[output], st.Name)
	}
	return out
}

// changeKinds names each change and its ops' kinds, in order, and records
// the changes as written when written is set.
func changeKinds(cs []catalogChange, written bool) string {
	var parts []string
	for _, c := range cs {
		var kinds []string
		for _, op := range c.ops {
			switch {
			case op.Service != nil:
				kinds = append(kinds, "service-"+string(op.Service.Verb))
			case op.Check != nil && strings.HasPrefix(op.Check.Check.CheckID, registry.PassingCheckID("")):
				kinds = append(kinds, "passing-"+string(op.Check.Verb))
			case op.Check != nil:
				kinds = append(kinds, "check-"+string(op.Check.Verb))
			}
		}
		parts = append(parts, c.name+": "+strings.Join(kinds, " "))
		if written {
			c.done()
		}
	}
	return strings.Join(parts, "; ")
}

// unitHealth reads each unit's status from the checks of a machine's
// catalog node: a unit's own check, or its name in a passing check.
func unitHealth(checks api.HealthChecks) map[string]string {
	out := map[string]string{}
	for _, c := range checks {
		if unit, ok := strings.CutPrefix(c.CheckID, registry.UnitCheckID("")); ok {
			out[unit] = c.Status
			continue
		}
		if !strings.HasPrefix(c.CheckID, registry.PassingCheckID("")) {
			continue
		}
		for _, line := range strings.Split(c.Output, "\n") {
			_, names, _ := strings.Cut(line, ": ")
			for _, name := range strings.Fields(names) {
				out[name] = c.Status
			}
		}
	}
	return out
}
