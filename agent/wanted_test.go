package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/registrytest"
)

// TestWanted: a machine runs the units scheduled to it and, in name order,
// the global units fleet's rules let it run.
func TestWanted(t *testing.T) {
	s := registrytest.Snapshot(t, nil, []string{
		"a.service launched m1",
		"b.service loaded m1",
		"c.service launched m2",                                      // another machine's
		"d.service inactive m1",                                      // not asked to run
		"g1.service launched | Global=true",                          // runs everywhere
		"g2.service launched | Global=true;MachineMetadata=disk=ssd", // this machine has no SSD
		"g3.service launched | Global=true;Conflicts=a.service",      // conflicts with a scheduled unit
		"g4.service launched | Global=true;Conflicts=g1.service",     // with a global unit taken before it
		"g5.service launched | Global=true",                          // replaced by z.service
		"g6.service inactive | Global=true",                          // not asked to run
		"g7.service loaded | Global=true;MachineMetadata=disk=%p",    // specifiers: disk=g7
		"z.service launched m1 | Replaces=g5.service",
	})
	want := Wanted(s, "m1", map[string]string{"disk": "hdd"})
	var got []string
	for n, w := range want {
		if w.Launched != (s.Jobs[n].Desired == registry.Launched) {
			t.Errorf("%s launched=%v, desired %s", n, w.Launched, s.Jobs[n].Desired)
		}
		got = append(got, n)
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "a.service b.service g1.service z.service" {
		t.Fatalf("wanted %v", got)
	}
}
