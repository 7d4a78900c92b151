package sdk

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"testing"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// TestHostingMatchesBruteForce drives a cluster through random placements,
// definitions and machine churn, and after each step compares the kept
// indexes with a scan of every unit on every machine.
func TestHostingMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	c := NewCluster()
	globs := []string{"web@*.service", "db.service", "*", "api@1*"}
	names := []string{"web@1.service", "web@2.service", "db.service", "api@1.service", "api@12.service", "x.service"}
	machines := []string{"m0", "m1", "m2", "m3", "m4"}
	define := func(u string) {
		var opts []wire.Option
		if r.IntN(2) == 0 {
			opts = append(opts, wire.Option{Section: "X-Fleet", Name: "Conflicts", Value: "web@*"})
		}
		c.DefineUnit(&Unit{Name: u, Options: opts})
	}
	for step := range 3000 {
		switch op := r.IntN(10); {
		case op < 4:
			c.PlaceUnit(names[r.IntN(len(names))], machines[r.IntN(len(machines))])
		case op < 7:
			c.UnplaceUnit(names[r.IntN(len(names))], machines[r.IntN(len(machines))])
		case op < 8:
			define(names[r.IntN(len(names))])
		case op < 9:
			c.RemoveMachine(machines[r.IntN(len(machines))])
		default:
			c.AddMachine(machines[r.IntN(len(machines))], "", nil)
		}
		for _, g := range globs {
			want := bruteForce(c, func(u string) bool { ok, _ := path.Match(g, u); return ok })
			if got := fmtIDs(ids(c, c.Hosting(g))); got != want {
				t.Fatalf("step %d: Hosting(%q) = %s, want %s", step, g, got, want)
			}
		}
		want := bruteForce(c, func(u string) bool {
			d := c.Unit(u)
			return d != nil && len(d.XFleet("Conflicts")) > 0
		})
		if got := fmtIDs(ids(c, c.HostingDeclaring("Conflicts"))); got != want {
			t.Fatalf("step %d: HostingDeclaring = %s, want %s", step, got, want)
		}
		want = bruteForce(c, func(u string) bool {
			d := c.Unit(u)
			return d != nil && (len(d.XFleet("Conflicts")) > 0 || len(d.XFleet("Replaces")) > 0)
		})
		if got := fmtIDs(ids(c, c.HostingDeclaring("Replaces", "Conflicts"))); got != want {
			t.Fatalf("step %d: HostingDeclaring(Replaces, Conflicts) = %s, want %s", step, got, want)
		}
		for _, u := range names {
			n := 0
			for _, m := range c.Machines() {
				if m.Units[u] {
					n++
				}
			}
			if d := c.Unit(u); d != nil && c.Hosts(d) != n {
				t.Fatalf("step %d: Hosts(%s) = %d, want %d", step, u, c.Hosts(d), n)
			}
			if c.Placed(u) != n {
				t.Fatalf("step %d: Placed(%s) = %d, want %d", step, u, c.Placed(u), n)
			}
			if got, want := fmtIDs(ids(c, c.HostsOf(u))), bruteForce(c, func(x string) bool { return x == u }); got != want {
				t.Fatalf("step %d: HostsOf(%s) = %s, want %s", step, u, got, want)
			}
		}
	}
}

func bruteForce(c *Cluster, test func(string) bool) string {
	var out []string
	for _, m := range c.Machines() {
		for u := range m.Units {
			if test(u) {
				out = append(out, m.ID)
				break
			}
		}
	}
	slices.Sort(out)
	return fmtIDs(out)
}

// TestHostingKept: a Hosted gives the same set as a lookup through
// placements, the cluster dropping its indexes (too many globs), a reset,
// and use with another cluster.
func TestHostingKept(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	a, b := NewCluster(), NewCluster()
	newKept := func() []*Hosted {
		return []*Hosted{{Glob: "web@*.service"}, {Glob: "db.service"}, {Options: []string{"Conflicts", "Replaces"}}}
	}
	kept := map[*Cluster][]*Hosted{a: newKept(), b: newKept()}
	names := []string{"web@1.service", "web@2.service", "db.service", "x.service"}
	machines := []string{"m0", "m1", "m2"}
	for step := range 2000 {
		c := a
		if step%3 == 0 {
			c = b
		}
		if step%100 == 99 { // now and then, use each other's
			kept[a], kept[b] = kept[b], kept[a]
		}
		switch op := r.IntN(12); {
		case op < 5:
			c.PlaceUnit(names[r.IntN(len(names))], machines[r.IntN(len(machines))])
		case op < 7:
			c.UnplaceUnit(names[r.IntN(len(names))], machines[r.IntN(len(machines))])
		case op < 8:
			var opts []wire.Option
			if r.IntN(2) == 0 {
				opts = append(opts, wire.Option{Section: "X-Fleet", Name: []string{"Conflicts", "Replaces"}[r.IntN(2)], Value: "x"})
			}
			c.DefineUnit(&Unit{Name: names[r.IntN(len(names))], Options: opts})
		case op < 9:
			for i := range maxTallies + 1 { // more globs than the cluster keeps
				c.Hosting(fmt.Sprintf("g%d", i))
			}
		case op < 10:
			var w wire.Writer
			w.U8(wire.OpReset)
			for _, m := range machines {
				w.U8(wire.OpMachine)
				w.Str(m)
				w.Str("")
				w.U32(0)
			}
			if err := c.apply(w.B); err != nil {
				t.Fatal(err)
			}
		default:
			c.AddMachine(machines[r.IntN(len(machines))], "", nil)
		}
		for _, h := range kept[c] {
			want := c.HostingDeclaring(h.Options...)
			if h.Glob != "" {
				want = c.Hosting(h.Glob)
			}
			if got, want := fmtIDs(ids(c, c.HostingKept(h))), fmtIDs(ids(c, want)); got != want {
				t.Fatalf("step %d: HostingKept(%q %q) = %s, want %s", step, h.Glob, h.Options, got, want)
			}
		}
	}
}

func TestFilteredFollowsMachines(t *testing.T) {
	c := NewCluster()
	c.AddMachine("m1", "", map[string]string{"disk": "ssd"})
	f := &Filter{Matches: []Match{{Key: "disk", Values: []string{"ssd"}}}}
	if got := fmtIDs(ids(c, c.Filtered(f))); got != "[m1]" {
		t.Fatal(got)
	}
	c.AddMachine("m2", "", map[string]string{"disk": "ssd"})
	c.AddMachine("m1", "", map[string]string{"disk": "hdd"})
	if got := fmtIDs(ids(c, c.Filtered(f))); got != "[m2]" {
		t.Fatalf("after changes: %s", got)
	}
	c.RemoveMachine("m2")
	if got := fmt.Sprint(c.Filtered(f).Len()); got != "0" {
		t.Fatalf("after m2 left: %s machines", got)
	}
}
