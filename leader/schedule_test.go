package leader_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/registrytest"
	. "github.com/wasmfleet/fleet/leader"
)

// describeEntries is "machine:unit=desired" for every entry, sorted.
func describeEntries(es map[string]map[string]registry.Entry) string {
	var out []string
	for m, units := range es {
		for u, e := range units {
			out = append(out, fmt.Sprintf("%s:%s=%s", m, u, e.Desired))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestEntries: a machine's schedule names the units the plan leaves on it
// and every global unit it may run, with their desired state; nothing for a
// unit asked to be inactive, nothing for a machine that is gone.
func TestEntries(t *testing.T) {
	s := registrytest.Snapshot(t, []string{"m1:", "m2:"}, []string{
		"a.service launched m1",
		"b.service loaded",        // unplaced: the plan puts it on m2 (least loaded)
		"c.service inactive m1",   // leaves m1
		"d.service launched gone", // its machine died: placed again
		"g.service launched | Global=true",
		"h.service inactive | Global=true",
	})
	plan := reconcile(t, s)
	got := describeEntries(Entries(s, plan))
	want := "m1:a.service=launched m1:d.service=launched m1:g.service=launched m2:b.service=loaded m2:g.service=launched"
	if got != want {
		t.Errorf("entries after %s:\n got %s\nwant %s", describe(plan), got, want)
	}
}

// TestWritesOnlyWhatChanged: with every schedule already as it should be,
// the leader writes nothing; an entry that differs, or one left on a gone
// machine, is written, and an action carries its own entry.
func TestWritesOnlyWhatChanged(t *testing.T) {
	s := registrytest.Snapshot(t, []string{"m1:"}, []string{"a.service launched m1", "b.service launched m1"})
	s.Schedule = Entries(s, Plan{})
	s.Kept = map[string]bool{"m1": true}
	reg := registry.New(nil, "")
	if ws := Writes(reg, s, reconcile(t, s)); len(ws) != 0 {
		t.Fatalf("nothing changed, yet %d writes", len(ws))
	}
	s.Jobs["b.service"].Desired = registry.Loaded                                        // fleetctl stop
	s.Schedule["gone"] = map[string]registry.Entry{"old.service": {Desired: "launched"}} // a dead machine's leftover
	s.Jobs["c.service"] = registrytest.Snapshot(t, nil, []string{"c.service launched"}).Jobs["c.service"]
	var names []string
	for _, w := range Writes(reg, s, reconcile(t, s)) {
		names = append(names, w.Name)
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "b.service c.service old.service" {
		t.Errorf("writes for: %s", got)
	}
	// A machine's schedule directory key is written while it lives and
	// removed once it is gone.
	s = registrytest.Snapshot(t, []string{"m1:", "m2:"}, nil)
	s.Kept = map[string]bool{"m1": true, "gone": true}
	names = nil
	for _, w := range Writes(reg, s, Plan{}) {
		names = append(names, w.Name)
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "schedule of gone schedule of m2" {
		t.Errorf("writes for: %s", got)
	}
}

// TestWritesMoveAndOrphan: a unit moved off a dead machine is two writes,
// one per action (write logs each), the entries of both machines in them;
// and the placement of a destroyed unit is removed.
func TestWritesMoveAndOrphan(t *testing.T) {
	s := registrytest.Snapshot(t, []string{"m1:"}, []string{"d.service launched gone"})
	s.Schedule = map[string]map[string]registry.Entry{"gone": {"d.service": {Desired: registry.Launched}}}
	s.Kept = map[string]bool{"m1": true}
	s.Orphans = map[string]uint64{"x.service": 7}
	plan := reconcile(t, s)
	if got := describe(plan); !strings.Contains(got, "unschedule d.service") || !strings.Contains(got, "schedule d.service") {
		t.Fatalf("plan: %s; want d.service moved", got)
	}
	var names []string
	for _, w := range Writes(registry.New(nil, ""), s, plan) {
		names = append(names, w.Name)
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "d.service d.service x.service" {
		t.Errorf("writes for: %s; want two for the move and one for the orphan", got)
	}
}

// TestWritesInOneOrder: the same snapshot and plan give the same writes in
// the same order, every time, whatever the order of Go's maps: the
// transactions a pass sends do not depend on chance.
func TestWritesInOneOrder(t *testing.T) {
	var machines, units []string
	for i := range 12 {
		machines = append(machines, fmt.Sprintf("m%02d:", i))
	}
	for i := range 60 {
		switch {
		case i%3 == 0:
			units = append(units, fmt.Sprintf("u%02d.service launched", i)) // to place
		case i%3 == 1:
			units = append(units, fmt.Sprintf("u%02d.service inactive m%02d", i, i%12)) // to unschedule
		default:
			units = append(units, fmt.Sprintf("u%02d.service launched gone%d", i, i%4)) // to move
		}
	}
	units = append(units, "g.service launched | Global=true")
	s := registrytest.Snapshot(t, machines, units)
	s.Kept = map[string]bool{"gone0": true, "gone1": true}
	s.Orphans = map[string]uint64{"x.service": 7, "y.service": 8, "z.service": 9}
	reg := registry.New(nil, "")
	plan := reconcile(t, s)
	first := names(Writes(reg, s, plan))
	if len(first) < 100 {
		t.Fatalf("only %d writes: the test needs many", len(first))
	}
	for range 20 {
		if got := names(Writes(reg, s, plan)); !slices.Equal(got, first) {
			t.Fatalf("the same plan gave writes in another order:\n%v\n%v", first, got)
		}
	}
}

func names(ws []registry.Write) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Name
	}
	return out
}
