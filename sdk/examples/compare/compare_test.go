package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/sdk"
)

// fourMachines is a cluster of machines that differ in RAM, region and
// disk; m1 runs two units and m3 one, so load breaks ties.
func fourMachines() *sdk.Cluster {
	c := sdk.NewCluster()
	c.AddMachine("m1", "10.0.0.1", map[string]string{"ram": "1024", "region": "us-east", "disk": "ssd"})
	c.AddMachine("m2", "10.0.0.2", map[string]string{"ram": "4096", "region": "us-west", "disk": "hdd"})
	c.AddMachine("m3", "10.0.0.3", map[string]string{"ram": "8192", "region": "eu-west", "disk": "ssd"})
	c.AddMachine("m4", "10.0.0.4", map[string]string{"ram": "2048.0", "region": "us-west"})
	c.PlaceUnit("a.service", "m1")
	c.PlaceUnit("b.service", "m1")
	c.PlaceUnit("c.service", "m3")
	return c
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		metadata []string // MachineMetadata values
		want     string
		rejected map[string]string // machine ID -> what its reason says
	}{
		{nil, "m2", nil},
		{[]string{"ram>=2048"}, "m2", map[string]string{"m1": "ram=1024 does not satisfy MachineMetadata ram>=2048"}},
		// Numerically, not as text: "8192" < "9" but 8192 > 9; 2048.0 == 2048.
		{[]string{"ram>9"}, "m2", nil},
		{[]string{"ram>2048"}, "m2", map[string]string{"m1": "ram>2048", "m4": "ram=2048.0 does not satisfy"}},
		{[]string{"ram==2048"}, "m4", map[string]string{"m1": "ram==2048", "m2": "ram==2048", "m3": "ram==2048"}},
		// Plain = is fleet's exact match of the text.
		{[]string{"ram=2048"}, "", map[string]string{"m1": "ram=2048", "m2": "ram=2048", "m3": "ram=2048", "m4": "ram=2048.0 does not satisfy MachineMetadata ram=2048"}},
		{[]string{"ram<=4096"}, "m2", map[string]string{"m3": "ram<=4096"}},
		{[]string{"ram<4096"}, "m4", map[string]string{"m2": "ram<4096", "m3": "ram<4096"}},
		{[]string{"region!=us-west"}, "m3", map[string]string{"m2": "region!=us-west", "m4": "region!=us-west"}},
		// Text when a side is not a number.
		{[]string{"region>us"}, "m2", map[string]string{"m3": "region=eu-west does not satisfy"}},
		// Every comparison must hold: several on one line, and several lines.
		{[]string{"ram>=2048 ram<8192"}, "m2", map[string]string{"m1": "ram>=2048", "m3": "ram<8192"}},
		{[]string{"ram>=2048", "disk=ssd"}, "m3", map[string]string{"m1": "ram>=2048", "m2": "disk=ssd", "m4": "no disk metadata (MachineMetadata disk=ssd)"}},
		// A machine without the key fails even !=.
		{[]string{`"disk!=hdd"`}, "m3", map[string]string{"m2": "disk=hdd does not satisfy", "m4": "no disk metadata"}},
		{[]string{"gpu>0"}, "", map[string]string{"m1": "no gpu metadata", "m2": "no gpu", "m3": "no gpu", "m4": "no gpu"}},
		// A mistake in the unit is every machine's reason.
		{[]string{"ram>=2048", "ram=>2048"}, "", allMachines(`invalid MachineMetadata "ram=>2048" in the unit: it has a value starting with an operator`)},
		{[]string{"ram"}, "", allMachines(`"ram" in the unit: it has no operator`)},
		{[]string{">=2048"}, "", allMachines("it has no key before >=")},
		{[]string{"ram>= "}, "", allMachines(`"ram>=" in the unit: it has no value after >=`)},
		{[]string{"ram!2048"}, "", allMachines("it has no operator")},
	} {
		var xfleet []string
		for _, v := range tc.metadata {
			xfleet = append(xfleet, "MachineMetadata="+v)
		}
		d := Place(fourMachines(), sdk.NewUnit("x.service", xfleet...))
		got := map[string]string{}
		for _, r := range d.Rejected {
			got[r.Machine] = r.Reason
		}
		if d.Machine != tc.want || len(got) != len(tc.rejected) {
			t.Errorf("%q: placed on %q turning down %v, want %q turning down %v", tc.metadata, d.Machine, got, tc.want, tc.rejected)
			continue
		}
		for id, want := range tc.rejected {
			if !strings.Contains(got[id], want) {
				t.Errorf("%q: %s turned down for %q, want a reason containing %q", tc.metadata, id, got[id], want)
			}
		}
	}
}

func allMachines(reason string) map[string]string {
	return map[string]string{"m1": reason, "m2": reason, "m3": reason, "m4": reason}
}

// TestDeprecatedSpelling: X-ConditionMachineMetadata counts too, as in fleet.
func TestDeprecatedSpelling(t *testing.T) {
	d := Place(fourMachines(), sdk.NewUnit("x.service", "X-ConditionMachineMetadata=ram>4096", "MachineMetadata=disk=ssd"))
	if d.Machine != "m3" || len(d.Rejected) != 3 {
		t.Fatalf("placed on %q turning down %v, want m3 and the three others", d.Machine, d.Rejected)
	}
}

func TestCompareValues(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"8192", "9", 1},
		{"2048.0", "2048", 0},
		{"-1", "0", -1},
		{"1e3", "999", 1},
		{"abc", "abd", -1},
		{"10", "9a", -1}, // text: "1" < "9"
		// NaN and infinities are text: as numbers, NaN would equal
		// everything and Inf would equal Infinity.
		{"NaN", "1", 1},
		{"Inf", "Infinity", -1},
	} {
		if got := compare(tc.a, tc.b); got != tc.want {
			t.Errorf("compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func ExamplePlace() {
	d := Place(fourMachines(), sdk.NewUnit("db.service", "MachineMetadata=ram>=4096 disk=ssd"))
	fmt.Println(d.Machine)
	for _, r := range d.Rejected {
		fmt.Println(r.Machine+":", r.Reason)
	}
	// Output:
	// m3
	// m1: ram=1024 does not satisfy MachineMetadata ram>=4096
	// m2: disk=hdd does not satisfy MachineMetadata disk=ssd
	// m4: ram=2048.0 does not satisfy MachineMetadata ram>=4096
}
