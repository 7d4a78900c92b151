package sdk

import (
	"sort"
	"testing"
)

func ids(c *Cluster, s Set) []string {
	var out []string
	c.Each(s, func(m *Machine) { out = append(out, m.ID) })
	sort.Strings(out)
	return out
}

func TestSets(t *testing.T) {
	c := NewCluster()
	c.AddMachine("m1", "", map[string]string{"region": "east", "disk": "ssd"})
	c.AddMachine("m2", "", map[string]string{"region": "west", "disk": "ssd"})
	c.AddMachine("m3", "", map[string]string{"region": "west", "disk": "hdd"})
	for _, tc := range []struct {
		set  Set
		want string
	}{
		{c.All(), "[m1 m2 m3]"},
		{c.With("region", "west"), "[m2 m3]"},
		{c.With("region", "west", "east").And(c.With("disk", "ssd")), "[m1 m2]"},
		{c.With("region", "mars"), "[]"},
		{c.With("nokey", "x").Or(c.With("disk", "hdd")), "[m3]"},
	} {
		if got := ids(c, tc.set); fmtIDs(got) != tc.want {
			t.Errorf("got %v, want %s", got, tc.want)
		}
	}
	// Changes keep the sets right: metadata changes, machines leave and
	// their slots are reused.
	c.AddMachine("m2", "", map[string]string{"region": "east", "disk": "ssd"})
	c.RemoveMachine("m1")
	c.AddMachine("m4", "", map[string]string{"region": "west"})
	if got := fmtIDs(ids(c, c.With("region", "east"))); got != "[m2]" {
		t.Errorf("east after changes: %s", got)
	}
	if got := fmtIDs(ids(c, c.With("region", "west"))); got != "[m3 m4]" {
		t.Errorf("west after changes: %s", got)
	}
	if got := c.All().Len(); got != 3 || c.With("region", "mars").Empty() != true {
		t.Errorf("All().Len() = %d", got)
	}
}

func fmtIDs(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

func TestLeastLoaded(t *testing.T) {
	c := NewCluster()
	if c.LeastLoaded(c.All()) != nil {
		t.Fatal("an empty cluster has no least-loaded machine")
	}
	c.AddMachine("m2", "", nil)
	c.AddMachine("m1", "", nil)
	c.AddMachine("m3", "", nil)
	c.PlaceUnit("a", "m1")
	if m := c.LeastLoaded(c.All()); m.ID != "m2" {
		t.Fatalf("least loaded = %s, want m2 (tie with m3, lower ID)", m.ID)
	}
}
