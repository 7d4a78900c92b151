package policy

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/sdk"
	"github.com/wasmfleet/fleet/sdk/wire"
	"github.com/wasmfleet/fleet/sdk/xfleet"
)

// unit builds a unit from "Key=Value" X-Fleet lines.
func unit(name string, xfleet ...string) *sdk.Unit {
	u := &sdk.Unit{Name: name, Options: []wire.Option{{Section: "Service", Name: "ExecStart", Value: "/bin/true"}}}
	for _, kv := range xfleet {
		k, v, _ := strings.Cut(kv, "=")
		u.Options = append(u.Options, wire.Option{Section: "X-Fleet", Name: k, Value: v})
	}
	return u
}

// cluster has machines aaaaaaaa-1, bbbbbbbb-2, cccccccc-3 with hostname
// metadata h1, h2, h3.
func cluster() *sdk.Cluster {
	c := sdk.NewCluster()
	for i, id := range []string{"aaaaaaaa-1", "bbbbbbbb-2", "cccccccc-3"} {
		c.AddMachine(id, "", map[string]string{"hostname": "h" + string(rune('1'+i))})
	}
	return c
}

// place places each unit in turn, as the leader does, and returns where each
// went ("" when unplaced).
func place(c *sdk.Cluster, units ...*sdk.Unit) []string {
	var out []string
	for _, u := range units {
		c.DefineUnit(u)
		d := Place(c, u)
		if d.Machine != "" {
			c.PlaceUnit(u.Name, d.Machine)
		}
		out = append(out, d.Machine)
	}
	return out
}

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		units []*sdk.Unit
		want  string
	}{
		{"least loaded, ties by ID", []*sdk.Unit{unit("a.service"), unit("b.service"), unit("c.service"), unit("d.service")},
			"aaaaaaaa-1 bbbbbbbb-2 cccccccc-3 aaaaaaaa-1"},
		{"MachineID full", []*sdk.Unit{unit("a.service", "MachineID=cccccccc-3")}, "cccccccc-3"},
		{"MachineID short, only the first value", []*sdk.Unit{unit("a.service", "MachineID=bbbbbbbb", "MachineID=cccccccc-3")}, "bbbbbbbb-2"},
		{"X-ConditionMachineID", []*sdk.Unit{unit("a.service", "X-ConditionMachineID=cccccccc-3")}, "cccccccc-3"},
		{"MachineID of no machine", []*sdk.Unit{unit("a.service", "MachineID=zzz")}, ""},
		{"conflicts: 5 units, 3 machines", []*sdk.Unit{
			unit("conflict.0.service", "Conflicts=conflict.*.service"), unit("conflict.1.service", "Conflicts=conflict.*.service"),
			unit("conflict.2.service", "Conflicts=conflict.*.service"), unit("conflict.3.service", "Conflicts=conflict.*.service"),
			unit("conflict.4.service", "Conflicts=conflict.*.service")},
			"aaaaaaaa-1 bbbbbbbb-2 cccccccc-3  "},
		{"one-way conflict enforced both ways", []*sdk.Unit{
			unit("x.service", "MachineID=aaaaaaaa-1"), unit("c.service", "Conflicts=hello.service", "MachineID=aaaaaaaa-1"),
			unit("hello.service", "MachineID=aaaaaaaa-1")},
			"aaaaaaaa-1 aaaaaaaa-1 "},
		{"several conflicts, space-separated and repeated", []*sdk.Unit{
			unit("a.service"), unit("b.service"),
			unit("c.service", "Conflicts=a.service b.service")},
			"aaaaaaaa-1 bbbbbbbb-2 cccccccc-3"},
		{"X-Conflicts", []*sdk.Unit{unit("a.service"), unit("b.service", "X-Conflicts=a.*", "MachineID=aaaaaaaa-1")}, "aaaaaaaa-1 "},
		{"MachineOf follows its peer", []*sdk.Unit{
			unit("a.service"), unit("ping.1.service"), unit("pong.1.service", "MachineOf=ping.1.service")},
			"aaaaaaaa-1 bbbbbbbb-2 bbbbbbbb-2"},
		{"MachineOf of several units, all required", []*sdk.Unit{
			unit("a.service", "MachineID=cccccccc-3"), unit("b.service", "MachineID=cccccccc-3"),
			unit("c.service", "MachineOf=a.service", "MachineOf=b.service"), unit("d.service", "MachineOf=a.service", "MachineOf=x.service")},
			"cccccccc-3 cccccccc-3 cccccccc-3 "},
		{"X-ConditionMachineOf", []*sdk.Unit{
			unit("a.service"), unit("ping.1.service"), unit("pong.1.service", "X-ConditionMachineOf=ping.1.service")},
			"aaaaaaaa-1 bbbbbbbb-2 bbbbbbbb-2"},
		// fleet splits a value that is quoted into several values, for
		// every option, not only MachineMetadata.
		{"quoted MachineOf values, all required", []*sdk.Unit{
			unit("a.service", "MachineID=cccccccc-3"), unit("b.service", "MachineID=cccccccc-3"),
			unit("c.service", `MachineOf="a.service" "b.service"`), unit("d.service", `MachineOf="a.service" "x.service"`)},
			"cccccccc-3 cccccccc-3 cccccccc-3 "},
		{"quoted Conflicts values", []*sdk.Unit{
			unit("a.service"), unit("b.service"), unit("x.service"),
			unit("c.service", `Conflicts="a.service" "b.*"`), unit("d.service", `X-Conflicts="a.service b.service x.service"`)},
			"aaaaaaaa-1 bbbbbbbb-2 cccccccc-3 cccccccc-3 "},
		{"quoted MachineID", []*sdk.Unit{unit("a.service", `MachineID="cccccccc-3"`)}, "cccccccc-3"},
		{"MachineOf with specifiers", []*sdk.Unit{
			unit("apache@1.service", "MachineID=bbbbbbbb"), unit("discovery@1.service", "MachineOf=apache@%i.service")},
			"bbbbbbbb-2 bbbbbbbb-2"},
		{"a replaced unit avoids its replacer's machine", []*sdk.Unit{
			unit("kick.service", "Replaces=replace.0.service", "MachineMetadata=hostname=h1"),
			unit("replace.0.service", "MachineMetadata=hostname=h1"), unit("replace.1.service", "Replaces=other.service")},
			"aaaaaaaa-1  bbbbbbbb-2"}, // replace.0 fits only h1, where kick replaces it: it waits
		{"circular replacement is ignored", []*sdk.Unit{
			unit("a.service", "Replaces=b.service", "MachineID=aaaaaaaa-1"), unit("b.service", "Replaces=a.service", "MachineID=aaaaaaaa-1")},
			"aaaaaaaa-1 aaaaaaaa-1"},
		{"specifiers in MachineMetadata", []*sdk.Unit{
			unit("metadata@h3.service", "MachineMetadata=hostname=%i"), unit("metadata@h2.service", "MachineMetadata=hostname=%i"),
			unit("metadata@h9.service", "MachineMetadata=hostname=%i")},
			"cccccccc-3 bbbbbbbb-2 "},
		{"%N in MachineMetadata", []*sdk.Unit{
			unit("h2.service", "MachineMetadata=hostname=%N"), unit("h9.service", "MachineMetadata=hostname=%N")},
			"bbbbbbbb-2 "},
		{"%n in Conflicts", []*sdk.Unit{
			unit("backup-db.service"), unit("a.service"), unit("b.service"), unit("db.service", "Conflicts=backup-%n")},
			"aaaaaaaa-1 bbbbbbbb-2 cccccccc-3 bbbbbbbb-2"},
		{"specifiers in MachineID and Conflicts", []*sdk.Unit{
			unit("pin@bbbbbbbb.service", "MachineID=%i"), unit("web@1.service", "Conflicts=%p@*.service"),
			unit("web@2.service", "Conflicts=%p@*.service")},
			"bbbbbbbb-2 aaaaaaaa-1 cccccccc-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(place(cluster(), tc.units...), " "); got != tc.want {
				t.Errorf("placed %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	c := cluster()
	place(c, unit("a.service", "MachineID=aaaaaaaa-1"))
	d := Place(c, unit("b.service", "Conflicts=a.service", "MachineMetadata=hostname=h1", "MachineMetadata=hostname=h2"))
	if d.Machine != "bbbbbbbb-2" {
		t.Fatalf("placed on %q", d.Machine)
	}
	d = Place(c, unit("b.service", "Conflicts=a.service", "MachineMetadata=hostname=h1"))
	want := map[string]xfleet.Rejection{
		"aaaaaaaa-1": {Reason: xfleet.ConflictsWith, Detail: "a.service"},
		"bbbbbbbb-2": {Reason: xfleet.MetadataMismatch, Detail: "hostname=h1"},
		"cccccccc-3": {Reason: xfleet.MetadataMismatch, Detail: "hostname=h1"},
	}
	if d.Machine != "" || len(d.Rejected) != 3 {
		t.Fatalf("decision %+v", d)
	}
	for _, r := range d.Rejected {
		if got := xfleet.ParseRejection(r.Reason); got != want[r.Machine] {
			t.Errorf("%s: rejection %+v, want %+v", r.Machine, got, want[r.Machine])
		}
	}
}

// TestPlaceMatchesChain: Place, which works on the SDK's indexes, chooses
// the machine that fleet's rules (xfleet's chain, applied to every machine)
// and least-loaded give, and when it chooses none, gives every machine the
// chain's rejection, over random clusters of units with Conflicts,
// Replaces, MachineOf, MachineID and MachineMetadata. Every tenth cluster
// has hundreds of machines, so that sets span several words.
func TestPlaceMatchesChain(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	zones := []string{"a", "b", "c"}
	for round := range 400 {
		c := sdk.NewCluster()
		var ids []string
		n := 2 + r.IntN(12)
		if round%10 == 0 {
			n = 200 + r.IntN(600)
		}
		for i := range n {
			id := fmt.Sprintf("%08x-m%d", r.Uint32(), i)
			ids = append(ids, id)
			c.AddMachine(id, "", map[string]string{"zone": zones[r.IntN(3)]})
		}
		xf := func() []string {
			var out []string
			switch r.IntN(6) {
			case 0:
				out = append(out, fmt.Sprintf("Conflicts=svc%d*", r.IntN(5)))
			case 1:
				out = append(out, fmt.Sprintf("X-Conflicts=svc%d.service svc%d*", r.IntN(5), r.IntN(5)))
			case 2:
				out = append(out, fmt.Sprintf("Replaces=svc%d.service", r.IntN(5)))
			case 3:
				out = append(out, fmt.Sprintf("MachineOf=svc%d.service", r.IntN(5)))
			case 4:
				out = append(out, "MachineID="+ids[r.IntN(len(ids))][:8])
			}
			return out
		}
		for u := range r.IntN(40 + n/4) {
			name := fmt.Sprintf("svc%d.service", u%7)
			if u >= 7 {
				name = fmt.Sprintf("svc%d-%d.service", u%5, u)
			}
			c.DefineUnit(unit(name, xf()...))
			c.PlaceUnit(name, ids[r.IntN(len(ids))])
			if r.IntN(4) == 0 {
				c.UnplaceUnit(name, ids[r.IntN(len(ids))])
			}
		}
		opts := xf()
		zone := ""
		if round%2 == 1 {
			zone = zones[r.IntN(3)]
			opts = append(opts, "MachineMetadata=zone="+zone)
		}
		u := unit(fmt.Sprintf("svc%d-new.service", r.IntN(5)), opts...)
		rules := xfleet.Read(u.Name, u.Options)
		var allowed sdk.Set
		why := map[string]string{}
		for _, m := range c.Machines() {
			if rej, failed := rules.Check(&xfleet.Listed{MachineID: m.ID, Meta: m.Metadata, Units: specs(c, m)}); failed {
				why[m.ID] = rej.String()
			} else {
				allowed.Add(m)
			}
		}
		want := ""
		if m := c.LeastLoaded(allowed); m != nil {
			want = m.ID
		}
		got := Place(c, u)
		if got.Machine != want {
			t.Fatalf("round %d, %s %v: placed on %q, the chain allows %v and so %q", round, u.Name, u.Options,
				got.Machine, machineIDs(c, allowed), want)
		}
		if want == "" {
			for _, rej := range got.Rejected {
				if why[rej.Machine] != rej.Reason {
					t.Fatalf("round %d: %s rejected for %q, the chain says %q", round, rej.Machine, rej.Reason, why[rej.Machine])
				}
			}
			if len(got.Rejected) != len(why) {
				t.Fatalf("round %d: %d rejections, the chain gives %d", round, len(got.Rejected), len(why))
			}
		}
	}
}

// specs is every unit on m, in name order, each with the spec its options
// give, read afresh.
func specs(c *sdk.Cluster, m *sdk.Machine) []*xfleet.Spec {
	var out []*xfleet.Spec
	for _, n := range slices.Sorted(maps.Keys(m.Units)) {
		s := &xfleet.Spec{Unit: n}
		if u := c.Unit(n); u != nil {
			s = xfleet.Read(n, u.Options)
		}
		out = append(out, s)
	}
	return out
}

func machineIDs(c *sdk.Cluster, s sdk.Set) []string {
	var out []string
	for _, m := range c.Machines() {
		if s.Has(m) {
			out = append(out, m.ID)
		}
	}
	return out
}
