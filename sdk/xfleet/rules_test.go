package xfleet

import (
	"strings"
	"testing"
)

// machine builds a Listed machine from "id:k=v,k=v" and units given as
// "name" or "name|X-Fleet lines;...".
func machine(desc string, units ...string) *Listed {
	id, md, _ := strings.Cut(desc, ":")
	m := &Listed{MachineID: id, Meta: map[string]string{}}
	for _, kv := range strings.Split(md, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m.Meta[k] = v
		}
	}
	for _, u := range units {
		m.Units = append(m.Units, unit(u))
	}
	return m
}

func unit(desc string) *Spec {
	name, xf, _ := strings.Cut(desc, "|")
	var lines []string
	if xf != "" {
		lines = strings.Split(xf, ";")
	}
	return Read(name, options(lines...))
}

func TestChain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		unit    string
		machine *Listed
		want    Rejection // zero: fits
	}{
		{"no rules fit anywhere", "a.service", machine("m1", "b.service"), Rejection{}},
		{"pinned by full ID", "a.service|MachineID=0123456789abcdef", machine("0123456789abcdef"), Rejection{}},
		{"pinned by short ID", "a.service|MachineID=01234567", machine("0123456789abcdef"), Rejection{}},
		{"pinned elsewhere", "a.service|MachineID=m2", machine("m1"), Rejection{PinnedElsewhere, "m2"}},
		{"metadata: one of the values", "a.service|MachineMetadata=disk=ssd;MachineMetadata=disk=nvme", machine("m1:disk=nvme"), Rejection{}},
		{"metadata: the first unmet key", "a.service|MachineMetadata=disk=ssd region=east", machine("m1:region=east,disk=hdd"),
			Rejection{MetadataMismatch, "disk=ssd"}},
		{"metadata: a missing key", "a.service|MachineMetadata=region=east|west", machine("m1"), Rejection{MetadataMismatch, "region=east|west"}},
		{"peer there", "side.service|MachineOf=web.service", machine("m1", "web.service"), Rejection{}},
		{"peer missing", "side.service|MachineOf=web.service;MachineOf=db.service", machine("m1", "web.service"), Rejection{PeerMissing, "db.service"}},
		{"conflict declared here", "a@2.service|Conflicts=a@*.service", machine("m1", "a@1.service"), Rejection{ConflictsWith, "a@1.service"}},
		{"conflict declared there", "b.service", machine("m1", "a.service|Conflicts=b*"), Rejection{ConflictsWith, "a.service"}},
		{"no conflict with itself", "a@1.service|Conflicts=a@*.service", machine("m1", "a@1.service|Conflicts=a@*.service"), Rejection{}},
		{"a malformed glob matches nothing", "a.service|Conflicts=[", machine("m1", "["), Rejection{}},
		{"replaced there", "old.service", machine("m1", "new.service|Replaces=old.service"), Rejection{ReplacedBy, "new.service"}},
		{"a replacer goes anywhere", "new.service|Replaces=old.service", machine("m1", "old.service"), Rejection{}},
		{"circular replacement is ignored", "a.service|Replaces=b.service", machine("m1", "b.service|Replaces=a.service"), Rejection{}},
		{"fleet's order: the pin before metadata", "a.service|MachineID=m2;MachineMetadata=disk=ssd", machine("m1"),
			Rejection{PinnedElsewhere, "m2"}},
		{"fleet's order: metadata before peers", "a.service|MachineMetadata=disk=ssd;MachineOf=b.service", machine("m1"),
			Rejection{MetadataMismatch, "disk=ssd"}},
		{"fleet's order: peers before conflicts", "a.service|MachineOf=b.service;Conflicts=c.service", machine("m1", "c.service"),
			Rejection{PeerMissing, "b.service"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, failed := unit(tc.unit).Check(tc.machine)
			if failed != (tc.want != Rejection{}) || got != tc.want {
				t.Fatalf("Check = %+v, %v; want %+v", got, failed, tc.want)
			}
		})
	}
}

// TestRejectionText: every rejection reads back as itself, so the reasons
// a policy hands fleetd as text keep their kind; any other text is Other.
func TestRejectionText(t *testing.T) {
	for _, r := range []Rejection{
		{PinnedElsewhere, "0123abcd"},
		{MetadataMismatch, "disk=ssd|nvme"},
		{PeerMissing, "web@1.service"},
		{PeerMissing, "a is not on this machine.service"},
		{ConflictsWith, "web@2.service"},
		{ReplacedBy, "kick.service"},
		{Other, "no SSD"},
		{Other, "MachineOf  is not on this machine"},
		{Other, "conflicts with "},
		{Other, ""},
	} {
		if got := ParseRejection(r.String()); got != r {
			t.Errorf("ParseRejection(%q) = %+v, want %+v", r.String(), got, r)
		}
	}
	if got := (Rejection{ConflictsWith, "b.service"}).String(); got != "conflicts with b.service" {
		t.Errorf("text %q", got)
	}
	for r := PinnedElsewhere; r <= Other; r++ {
		if r.Label() == "unknown" || (r != Other && Chain[r-1].Reason != r) {
			t.Errorf("reason %d: label %q, not at its place in the chain", r, r.Label())
		}
	}
}

// TestGlobals: a machine takes the global units in name order, each that
// the rules let it run beside its scheduled units and the ones taken before.
func TestGlobals(t *testing.T) {
	scheduled := []*Spec{unit("a.service"), unit("z.service|Replaces=g5.service")}
	var globals []*Spec
	for _, g := range []string{
		"g1.service|Global=true",                             // runs
		"g2.service|Global=true;MachineMetadata=disk=ssd",    // this machine has no SSD
		"g3.service|Global=true;Conflicts=a.service",         // conflicts with a scheduled unit
		"g4.service|Global=true;Conflicts=g1.service",        // with a global unit taken before it
		"g5.service|Global=true",                             // replaced by z.service
		"g6.service|Global=true;Conflicts=g7.service",        // runs: g7 comes after it
		"g7.service|Global=true",                             // conflicts with g6, taken before it
		"g8.service|Global=true;MachineMetadata=disk=%p.hdd", // specifiers: disk=g8.hdd
	} {
		globals = append(globals, unit(g))
	}
	var got []string
	for _, g := range Globals("m1", map[string]string{"disk": "g8.hdd"}, scheduled, globals) {
		got = append(got, g.Unit)
	}
	if strings.Join(got, " ") != "g1.service g6.service g8.service" {
		t.Fatalf("Globals = %v", got)
	}
}

// TestBindsNeighbours: a unit without Conflicts of its own is rejected by
// the rules between units only because of a neighbour that binds its
// neighbours, so a check may leave the others out.
func TestBindsNeighbours(t *testing.T) {
	for _, tc := range []struct {
		neighbour string
		binds     bool
		want      Rejection // of a.service beside the neighbour
	}{
		{"b.service", false, Rejection{}},
		{"b.service|MachineOf=a.service;MachineMetadata=r=1", false, Rejection{}},
		{"b.service|Conflicts=a.service", true, Rejection{Reason: ConflictsWith, Detail: "b.service"}},
		{"b.service|Conflicts=c.service", true, Rejection{}},
		{"b.service|Replaces=a.service", true, Rejection{Reason: ReplacedBy, Detail: "b.service"}},
		{"b.service|Replaces=c.service", true, Rejection{}},
	} {
		o := unit(tc.neighbour)
		if got := BindsNeighbours(o); got != tc.binds {
			t.Errorf("BindsNeighbours(%s) = %v, want %v", tc.neighbour, got, tc.binds)
		}
		got, _ := unit("a.service").Check(machine("m1", tc.neighbour))
		if got != tc.want {
			t.Errorf("a.service beside %s: %+v, want %+v", tc.neighbour, got, tc.want)
		}
		if !tc.binds && got != (Rejection{}) {
			t.Errorf("%s binds no neighbour, yet rejects a.service: %+v", tc.neighbour, got)
		}
	}
}
