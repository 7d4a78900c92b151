package main

import (
	"testing"

	"github.com/wasmfleet/fleet/sdk"
)

func TestBinpack(t *testing.T) {
	c := sdk.NewCluster()
	c.AddMachine("m1", "10.0.0.1", map[string]string{"slots": "2"})
	c.AddMachine("m2", "10.0.0.2", nil)
	c.AddMachine("m3", "10.0.0.3", nil)
	u := &sdk.Unit{Name: "web.service"}
	if d := Place(c, u); d.Machine != "m1" {
		t.Fatalf("empty cluster: %q, want the lowest ID", d.Machine)
	}
	c.PlaceUnit("a.service", "m2")
	if d := Place(c, u); d.Machine != "m2" {
		t.Fatalf("want the busiest machine m2, got %q", d.Machine)
	}
	c.PlaceUnit("b.service", "m1")
	c.PlaceUnit("c.service", "m1")
	d := Place(c, u)
	if d.Machine != "m2" || len(d.Rejected) != 1 || d.Rejected[0].Machine != "m1" {
		t.Fatalf("m1 is full: %+v", d)
	}
}
