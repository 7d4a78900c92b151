package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/sdk"
)

// units returns n unit names with a prefix, for filling a machine.
func units(prefix string, n int) []string {
	var us []string
	for i := 0; i < n; i++ {
		us = append(us, fmt.Sprintf("%s%d.service", prefix, i))
	}
	return us
}

// cluster has one machine per entry of load, m1, m2, ..., running that many
// units.
func cluster(load ...int) *sdk.Cluster {
	c := sdk.NewCluster()
	for i, n := range load {
		id := fmt.Sprintf("m%d", i+1)
		c.AddMachine(id, fmt.Sprintf("10.0.0.%d", i+1), nil)
		for _, u := range units(id+"-u", n) {
			c.PlaceUnit(u, id)
		}
	}
	return c
}

func TestMaxPer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		load     []int // units on m1, m2, ...
		xfleet   []string
		want     string
		rejected []string // IDs of the machines turned down
		reason   string   // what every rejection says
	}{
		{name: "empty cluster"},
		{name: "the least loaded", load: []int{3, 1, 2}, want: "m2"},
		{name: "ties: the lowest ID", load: []int{2, 1, 1}, want: "m2"},
		{
			name: "default cap of 10", load: []int{10, 12, 9},
			want: "m3", rejected: []string{"m1", "m2"}, reason: "MaxPerMachine=10",
		},
		{
			name: "the unit's cap", load: []int{2, 3, 1}, xfleet: []string{"MaxPerMachine=2"},
			want: "m3", rejected: []string{"m1", "m2"}, reason: "full: runs ",
		},
		{
			name: "every machine full", load: []int{1, 1}, xfleet: []string{"MaxPerMachine= 1 "},
			rejected: []string{"m1", "m2"}, reason: "full: runs 1 units, MaxPerMachine=1",
		},
		{
			name: "the last value wins", load: []int{3, 4}, xfleet: []string{"MaxPerMachine=2", "MaxPerMachine=4"},
			want: "m1", rejected: []string{"m2"}, reason: "MaxPerMachine=4",
		},
		{
			name: "not a number", load: []int{0, 0}, xfleet: []string{"MaxPerMachine=ten"},
			rejected: []string{"m1", "m2"}, reason: `invalid MaxPerMachine="ten" in the unit: want a positive integer`,
		},
		{
			name: "zero", load: []int{0}, xfleet: []string{"MaxPerMachine=0"},
			rejected: []string{"m1"}, reason: `invalid MaxPerMachine="0"`,
		},
		{
			name: "negative", load: []int{0}, xfleet: []string{"MaxPerMachine=-3"},
			rejected: []string{"m1"}, reason: `invalid MaxPerMachine="-3"`,
		},
		{
			name: "empty", load: []int{0}, xfleet: []string{"MaxPerMachine="},
			rejected: []string{"m1"}, reason: `invalid MaxPerMachine=""`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Place(cluster(tc.load...), sdk.NewUnit("x.service", tc.xfleet...))
			var rejected []string
			for _, r := range d.Rejected {
				rejected = append(rejected, r.Machine)
				if !strings.Contains(r.Reason, tc.reason) {
					t.Errorf("%s turned down for %q, want a reason containing %q", r.Machine, r.Reason, tc.reason)
				}
			}
			if d.Machine != tc.want || fmt.Sprint(rejected) != fmt.Sprint(tc.rejected) {
				t.Errorf("placed on %q turning down %v, want %q turning down %v", d.Machine, rejected, tc.want, tc.rejected)
			}
		})
	}
}

// TestMaxPerFills places units one after another until the cluster is full:
// no machine ever exceeds the cap, and the next unit is refused.
func TestMaxPerFills(t *testing.T) {
	c := cluster(0, 0, 0)
	for i := 0; i < 9; i++ {
		name := fmt.Sprintf("web@%d.service", i)
		d := Place(c, sdk.NewUnit(name, "MaxPerMachine=3"))
		if d.Machine == "" {
			t.Fatalf("%s not placed with room left: %+v", name, d.Rejected)
		}
		c.PlaceUnit(name, d.Machine)
	}
	for _, m := range c.Machines() {
		if len(m.Units) != 3 {
			t.Errorf("%s runs %d units, want 3", m.ID, len(m.Units))
		}
	}
	if d := Place(c, sdk.NewUnit("web@9.service", "MaxPerMachine=3")); d.Machine != "" || len(d.Rejected) != 3 {
		t.Fatalf("a full cluster placed the unit: %+v", d)
	}
}
