package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/sdk"
)

// machine is one machine of a test cluster: its ID, its metadata and the
// units placed on it.
type machine struct {
	id       string
	metadata map[string]string
	units    []string
}

func cluster(ms ...machine) *sdk.Cluster {
	c := sdk.NewCluster()
	for i, m := range ms {
		c.AddMachine(m.id, fmt.Sprintf("10.0.0.%d", i+1), m.metadata)
		for _, u := range m.units {
			c.PlaceUnit(u, m.id)
		}
	}
	return c
}

func zone(z string) map[string]string { return map[string]string{"zone": z} }

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		name     string
		machines []machine
		unit     *sdk.Unit
		want     string
		rejected []string // IDs of the machines turned down
		reason   string   // what every rejection says
	}{
		{
			name: "empty cluster",
			unit: sdk.NewUnit("apache@1.service"),
		},
		{
			name:     "empty zones: the lowest ID",
			machines: []machine{{"m1", zone("a"), nil}, {"m2", zone("b"), nil}},
			unit:     sdk.NewUnit("apache@1.service"),
			want:     "m1",
		},
		{
			name: "the zone without an instance, though its machine is busier",
			machines: []machine{
				{"m1", zone("a"), []string{"apache@1.service"}},
				{"m2", zone("a"), nil},
				{"m3", zone("b"), []string{"db.service", "cache.service"}},
			},
			unit: sdk.NewUnit("apache@2.service"),
			want: "m3",
		},
		{
			name: "zones tie: the least-loaded machine of either",
			machines: []machine{
				{"m1", zone("a"), []string{"apache@1.service"}},
				{"m2", zone("a"), []string{"db.service"}},
				{"m3", zone("b"), []string{"apache@2.service", "cache.service"}},
				{"m4", zone("b"), nil},
			},
			unit: sdk.NewUnit("apache@3.service"),
			want: "m4",
		},
		{
			name: "other services do not count",
			machines: []machine{
				{"m1", zone("a"), []string{"apache@1.service"}},
				{"m2", zone("b"), []string{"web@1.service", "web@2.service", "apachex@1.service"}},
			},
			unit: sdk.NewUnit("apache@2.service"),
			want: "m2",
		},
		{
			name: "a plain unit groups with the instances of its name",
			machines: []machine{
				{"m1", zone("a"), []string{"apache.service"}},
				{"m2", zone("b"), []string{"x.service"}},
			},
			unit: sdk.NewUnit("apache@2.service"),
			want: "m2",
		},
		{
			name: "machines without the key are turned down",
			machines: []machine{
				{"m1", nil, nil},
				{"m2", zone("a"), []string{"apache@1.service"}},
				{"m3", map[string]string{"rack": "r1"}, nil},
			},
			unit:     sdk.NewUnit("apache@2.service"),
			want:     "m2",
			rejected: []string{"m1", "m3"},
			reason:   "no zone metadata",
		},
		{
			name: "SpreadBy names another key",
			machines: []machine{
				{"m1", map[string]string{"zone": "a", "rack": "r1"}, []string{"apache@1.service"}},
				{"m2", map[string]string{"zone": "a", "rack": "r2"}, []string{"x.service"}},
				{"m3", map[string]string{"zone": "b"}, nil},
			},
			unit:     sdk.NewUnit("apache@2.service", "SpreadBy=rack"),
			want:     "m2",
			rejected: []string{"m3"},
			reason:   "no rack metadata to spread by (SpreadBy=rack)",
		},
		{
			name:     "no machine has the key",
			machines: []machine{{"m1", nil, nil}, {"m2", zone("a"), nil}},
			unit:     sdk.NewUnit("apache@1.service", "SpreadBy=rack", "SpreadBy=row"),
			rejected: []string{"m1", "m2"},
			reason:   "no row metadata",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Place(cluster(tc.machines...), tc.unit)
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

// TestSpreadEvenly places instances one after another: every zone gets one
// before any gets a second.
func TestSpreadEvenly(t *testing.T) {
	c := cluster(
		machine{"m1", zone("a"), nil}, machine{"m2", zone("a"), nil},
		machine{"m3", zone("b"), nil}, machine{"m4", zone("c"), nil},
	)
	perZone := map[string]int{}
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("apache@%d.service", i)
		d := Place(c, sdk.NewUnit(name))
		if d.Machine == "" {
			t.Fatalf("%s not placed: %+v", name, d.Rejected)
		}
		c.PlaceUnit(name, d.Machine)
		perZone[c.Machine(d.Machine).Metadata["zone"]]++
	}
	if fmt.Sprint(perZone) != "map[a:2 b:2 c:2]" {
		t.Fatalf("instances per zone: %v, want 2 in each", perZone)
	}
	if a := c.Machine("m1").Units; len(a) != 1 {
		t.Fatalf("zone a's two instances were not split between m1 and m2: m1 has %v", a)
	}
}

func TestService(t *testing.T) {
	for unit, want := range map[string]string{
		"apache@1.service": "apache",
		"apache@.service":  "apache",
		"apache.service":   "apache",
		"my.app@2.service": "my.app",
		"my.app.service":   "my.app",
		"noext":            "noext",
		".hidden":          ".hidden",
	} {
		if got := service(unit); got != want {
			t.Errorf("service(%q) = %q, want %q", unit, got, want)
		}
	}
}
