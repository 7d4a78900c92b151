package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/sdk"
)

// cluster has one machine per entry, m1, m2, ..., running those units.
func cluster(units ...[]string) *sdk.Cluster {
	c := sdk.NewCluster()
	for i, us := range units {
		id := fmt.Sprintf("m%d", i+1)
		c.AddMachine(id, fmt.Sprintf("10.0.0.%d", i+1), nil)
		for _, u := range us {
			c.PlaceUnit(u, id)
		}
	}
	return c
}

func TestSoftConflicts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		units  [][]string // units on m1, m2, ...
		xfleet []string
		want   string
		reason string // every machine's reason, when the unit is not placed
	}{
		{name: "empty cluster", xfleet: []string{"PreferNotWith=db@*"}},
		{
			name:  "no globs: the least loaded",
			units: [][]string{{"a.service", "b.service"}, {"db@1.service"}, {"c.service", "d.service"}},
			want:  "m2",
		},
		{
			name:   "a machine without a match, though busier",
			units:  [][]string{{"db@1.service"}, {"a.service", "b.service", "c.service"}, {"cache.service"}},
			xfleet: []string{"PreferNotWith=db@*.service cache.service"},
			want:   "m2",
		},
		{
			name:   "the least loaded of the machines without a match",
			units:  [][]string{{"db@1.service"}, {"a.service", "b.service"}, {"c.service"}},
			xfleet: []string{"PreferNotWith=db@*"},
			want:   "m3",
		},
		{
			name:   "every machine has a match: the fewest matches, not a failure",
			units:  [][]string{{"db@1.service", "db@2.service"}, {"db@3.service", "a.service", "b.service"}, {"db@4.service", "cache.service"}},
			xfleet: []string{"PreferNotWith=db@*", "PreferNotWith=cache.*"},
			want:   "m2",
		},
		{
			name:   "as many matches: the least loaded",
			units:  [][]string{{"db@1.service", "a.service"}, {"db@2.service"}, {"db@3.service", "b.service"}},
			xfleet: []string{"PreferNotWith=db@*"},
			want:   "m2",
		},
		{
			name:   "as many matches and units: the lowest ID",
			units:  [][]string{{"db@1.service", "a.service"}, {"db@2.service"}, {"db@3.service"}},
			xfleet: []string{"PreferNotWith=db@*"},
			want:   "m2",
		},
		{
			name:   "a unit matching two globs counts once",
			units:  [][]string{{"db@1.service"}, {"a.service", "b.socket"}},
			xfleet: []string{"PreferNotWith=db@* *.service"},
			want:   "m1",
		},
		{
			name:   "globs match whole names",
			units:  [][]string{{"mydb@1.service"}, {"a.service"}},
			xfleet: []string{"PreferNotWith=db@*"},
			want:   "m1",
		},
		{
			name:   "a bad glob is every machine's reason",
			units:  [][]string{nil, nil},
			xfleet: []string{"PreferNotWith=db@* web[", "PreferNotWith=[x"},
			reason: `invalid PreferNotWith glob "web[" in the unit: syntax error in pattern`,
		},
		{
			name:   "a bad glob that matches no name is still found",
			units:  [][]string{nil},
			xfleet: []string{`PreferNotWith=zzz\`},
			reason: `invalid PreferNotWith glob "zzz\\"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(tc.units...)
			d := Place(c, sdk.NewUnit("x.service", tc.xfleet...))
			if d.Machine != tc.want {
				t.Errorf("placed on %q, want %q", d.Machine, tc.want)
			}
			if tc.reason == "" {
				if len(d.Rejected) != 0 {
					t.Errorf("turned down %+v; a soft rule turns down no machine", d.Rejected)
				}
				return
			}
			if len(d.Rejected) != len(c.Machines()) {
				t.Errorf("turned down %+v, want every machine", d.Rejected)
			}
			for _, r := range d.Rejected {
				if !strings.Contains(r.Reason, tc.reason) {
					t.Errorf("%s turned down for %q, want a reason containing %q", r.Machine, r.Reason, tc.reason)
				}
			}
		})
	}
}

// TestSoftConflictsSpreads places replicas one after another: they take a
// machine each while there are free ones, then double up evenly.
func TestSoftConflictsSpreads(t *testing.T) {
	c := cluster([]string{"a.service"}, nil, nil)
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("db@%d.service", i)
		d := Place(c, sdk.NewUnit(name, "PreferNotWith=db@*"))
		if d.Machine == "" {
			t.Fatalf("%s not placed: %+v", name, d.Rejected)
		}
		c.PlaceUnit(name, d.Machine)
	}
	for _, m := range c.Machines() {
		if n := matches([]string{"db@*"}, m); n != 2 {
			t.Errorf("%s runs %d replicas (%v), want 2", m.ID, n, m.Units)
		}
	}
}
