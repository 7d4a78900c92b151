package sdk

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/wasmfleet/fleet/sdk/wire"
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

// TestKeep checks the allocation-free narrowing against With and And, and
// that a kept Match notices a metadata value that appears later.
func TestKeep(t *testing.T) {
	c := NewCluster()
	c.AddMachine("m1", "", map[string]string{"region": "east", "disk": "ssd"})
	c.AddMachine("m2", "", map[string]string{"region": "west", "disk": "ssd"})
	c.AddMachine("m3", "", map[string]string{"region": "west", "disk": "hdd"})
	region := &Match{Key: "region", Values: []string{"west", "north"}}
	disk := &Match{Key: "disk", Values: []string{"ssd"}}
	narrow := func() string {
		s := c.Candidates()
		c.Keep(s, region)
		c.Keep(s, disk)
		return fmtIDs(ids(c, *s))
	}
	if got, want := narrow(), fmtIDs(ids(c, c.With("region", "west", "north").And(c.With("disk", "ssd")))); got != want || got != "[m2]" {
		t.Fatalf("Keep: %s, With/And: %s", got, want)
	}
	c.AddMachine("m4", "", map[string]string{"region": "north", "disk": "ssd"}) // a new value: the Match resolves again
	if got := narrow(); got != "[m2 m4]" {
		t.Fatalf("after north appeared: %s", got)
	}
	s := c.Candidates()
	c.KeepWith(s, "disk", "hdd", "tape")
	if got := fmtIDs(ids(c, *s)); got != "[m3]" {
		t.Fatalf("KeepWith: %s", got)
	}
	if got := c.Candidates().Len(); got != 4 {
		t.Fatalf("Candidates after narrowing holds %d machines, want all 4", got)
	}
}

// TestLeastLoadedFollowsChanges: loads and ranks stay right as units move
// and machines come and go (a departed machine's slot is never chosen).
func TestLeastLoadedFollowsChanges(t *testing.T) {
	c := NewCluster()
	for _, id := range []string{"b", "a", "c"} {
		c.AddMachine(id, "", nil)
	}
	all := c.All()
	c.PlaceUnit("u1", "a")
	c.PlaceUnit("u2", "b")
	if m := c.LeastLoaded(all); m.ID != "c" {
		t.Fatalf("least loaded = %s, want c", m.ID)
	}
	c.PlaceUnit("u3", "c")
	c.UnplaceUnit("u2", "b")
	if m := c.LeastLoaded(all); m.ID != "b" {
		t.Fatalf("least loaded = %s, want b", m.ID)
	}
	c.RemoveMachine("b") // all still has b's slot
	if m := c.LeastLoaded(all); m == nil || m.ID != "a" {
		t.Fatalf("least loaded after b left = %v, want a (tie with c, lower ID)", m)
	}
	c.AddMachine("0", "", nil) // takes b's slot, sorts first
	if m := c.LeastLoaded(c.All()); m.ID != "0" {
		t.Fatalf("least loaded = %s, want the new empty machine 0", m.ID)
	}
}

func TestMemoAndDeclares(t *testing.T) {
	c := NewCluster()
	u := &Unit{Name: "a.service", Options: []wire.Option{{Section: "X-Fleet", Name: "Conflicts", Value: "b*"}, {Section: "X-Fleet", Name: "Conflicts", Value: "c*"}}}
	c.DefineUnit(u)
	calls := 0
	for range 3 {
		if v := u.Memo("k1", func() any { calls++; return 1 }); v != 1 {
			t.Fatal(v)
		}
		if v := u.Memo("k2", func() any { calls++; return 2 }); v != 2 {
			t.Fatal(v)
		}
	}
	if calls != 2 {
		t.Fatalf("Memo computed %d times, want once per key", calls)
	}
	if !c.AnyUnitDeclares("Replaces", "Conflicts") || c.AnyUnitDeclares("Replaces") {
		t.Fatal("AnyUnitDeclares wrong after DefineUnit")
	}
	c.ForgetUnit("a.service")
	if c.AnyUnitDeclares("Conflicts") {
		t.Fatal("Conflicts still declared after the unit was forgotten (repeated option counted twice?)")
	}
}

// TestNarrowed compares Narrowed with Working, Subtract, Empty and a
// machine-by-machine test against watch, over random clusters whose sets
// have different lengths (a set grows only as far as its highest machine),
// with none, one and several sets to avoid.
func TestNarrowed(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for round := range 300 {
		c := NewCluster()
		n := 1 + r.IntN(700)
		var ms []string
		for i := range n {
			ms = append(ms, fmt.Sprintf("m%04d", i))
			c.AddMachine(ms[i], "", nil)
		}
		// Units a0..a3 placed on machines of a prefix of the cluster, so
		// that their sets are shorter than All.
		for u := range 4 * r.IntN(30) {
			c.PlaceUnit(fmt.Sprintf("a%d-%d", u%4, u), ms[r.IntN(1+r.IntN(n))])
		}
		var avoid []Hosted
		for range r.IntN(4) {
			avoid = append(avoid, Hosted{Glob: fmt.Sprintf("a%d-*", r.IntN(4))})
		}
		watch := &Hosted{Glob: fmt.Sprintf("a%d-*", r.IntN(4))}
		base := c.All()
		for _, m := range c.Machines() {
			if r.IntN(3) == 0 {
				base.Delete(m)
			}
		}
		want := base.Clone()
		for i := range avoid {
			want.Subtract(c.HostingKept(&avoid[i]))
		}
		meets := false
		c.Each(want, func(m *Machine) { meets = meets || c.HostingKept(watch).Has(m) })
		got, empty, look := c.Narrowed(base, watch, avoid)
		if g, w := fmtIDs(ids(c, *got)), fmtIDs(ids(c, want)); g != w || empty != want.Empty() || look != meets {
			t.Fatalf("round %d (%d machines, %d to avoid): Narrowed = %s empty %v meets %v, want %s empty %v meets %v",
				round, n, len(avoid), g, empty, look, w, want.Empty(), meets)
		}
	}
}

// TestLeastLoadedOf: natively the decision names LeastLoaded's machine, or
// none for an empty set.
func TestLeastLoadedOf(t *testing.T) {
	c := NewCluster()
	c.AddMachine("m2", "", nil)
	c.AddMachine("m1", "", nil)
	c.PlaceUnit("a", "m1")
	if d := c.LeastLoadedOf(c.All()); d.Machine != "m2" || d.Rejected != nil {
		t.Fatalf("LeastLoadedOf(all) = %+v, want m2", d)
	}
	if d := c.LeastLoadedOf(Set{}); d.Machine != "" || d.Rejected != nil {
		t.Fatalf("LeastLoadedOf(empty) = %+v, want no machine and no reasons", d)
	}
}
