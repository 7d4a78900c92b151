package xfleet

import (
	"reflect"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// options reads "Name=Value" lines of an [X-Fleet] section, after a
// [Service] line that every unit has.
func options(lines ...string) []wire.Option {
	opts := []wire.Option{{Section: "Service", Name: "ExecStart", Value: "/bin/true"}}
	for _, l := range lines {
		n, v, _ := strings.Cut(l, "=")
		opts = append(opts, wire.Option{Section: Section, Name: n, Value: v})
	}
	return opts
}

// TestRead: every option is split on blanks outside quotes, then its
// specifiers are expanded; deprecated spellings count; only the first
// MachineID and the last Global and Policy count.
func TestRead(t *testing.T) {
	got := Read("side@1.service", options(
		`MachineOf="apache@%i.service" "db.service"`,
		`MachineOf=cache.service`,
		`Conflicts="x.service y@*.service" "z.service"`,
		`X-Conflicts=%p-old.service`,
		`X-ConditionMachineID=later`,
		`MachineID="abc12345" "def67890"`,
		`Replaces="old.service"`,
		`Global=true`,
		`Global="no"`,
		`MachineMetadata=region=us-east`,
		`X-ConditionMachineMetadata=region=us-west`,
		`MachineMetadata="disk=ssd" "rack=2" broken =x y=`,
		`MachineMetadata=host=%i`,
		`Policy=spread`,
		`Policy=binpack`,
	))
	want := &Spec{
		Unit:      "side@1.service",
		MachineID: "abc12345",
		Metadata: []Match{{"disk", []string{"ssd"}}, {"host", []string{"1"}}, {"rack", []string{"2"}},
			{"region", []string{"us-east", "us-west"}}},
		Peers:     []string{"apache@1.service", "db.service", "cache.service"},
		Conflicts: []string{"x.service", "y@*.service", "z.service", "side-old.service"},
		Replaces:  []string{"old.service"},
		Global:    false,
		Policy:    "binpack",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Read:\n got %+v\nwant %+v", got, want)
	}
	if s := Read("a.service", options("Global=yes")); !s.Global || s.HasRules() {
		t.Errorf("Global=yes: %+v", s)
	}
	if s := Read("a.service", []wire.Option{{Section: "Service", Name: "MachineID", Value: "m1"}}); !reflect.DeepEqual(s, &Spec{Unit: "a.service"}) {
		t.Errorf("options outside [X-Fleet] count: %+v", s)
	}
}

func TestSpecifiers(t *testing.T) {
	for v, want := range map[string]string{
		"%n":         "web@a.b.service",
		"%N":         "web@a.b",
		"%p":         "web",
		"%i":         "a.b",
		"100%%":      "100%",
		"%x and %":   "%x and %",
		"plain":      "plain",
		"%p-%i.unit": "web-a.b.unit",
	} {
		if got := ExpandSpecifiers(v, "web@a.b.service"); got != want {
			t.Errorf("ExpandSpecifiers(%q) = %q, want %q", v, got, want)
		}
	}
	if !UsesSpecifiers(options("MachineOf=a@%i.service")) || UsesSpecifiers(options("MachineOf=a.service")) {
		t.Error("UsesSpecifiers")
	}
	shared := Read("web@.service", options("Conflicts=db.service"))
	if s := shared.For("web@1.service"); s.Unit != "web@1.service" || shared.Unit != "web@.service" || s.Conflicts[0] != "db.service" {
		t.Errorf("For: %+v, shared now %+v", s, shared)
	}
}

func TestSplitQuoted(t *testing.T) {
	for in, want := range map[string][]string{
		`a b`:               {"a", "b"},
		`"a b" c`:           {"a b", "c"},
		`  a	 b  `:          {"a", "b"},
		`"room=lab 2" x=y`:  {"room=lab 2", "x=y"},
		`""`:                {""},
		``:                  nil,
		`a"b c"d`:           {"ab cd"},
		`"unterminated a b`: {"unterminated a b"},
	} {
		if got := SplitQuoted(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SplitQuoted(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		unit, xfleet, want string
		custom             bool
	}{
		{"a.service", "MachineID=abc;MachineMetadata=a=b", "", false},
		{"a.service", "MachineID=abc;MachineOf=b.service", "MachineID cannot be used with Peers", false},
		{"a.service", "X-ConditionMachineID=abc;Conflicts=b*", "MachineID cannot be used with Conflicts", false},
		{"a.service", "MachineID=abc;Global=true", "MachineID cannot be used with Global", false},
		{"a.service", "MachineID=abc;Replaces=b.service", "MachineID cannot be used with Replaces", false},
		{"a.service", "Global=yes;MachineOf=b.service", "Global cannot be used with Peers", false},
		{"a.service", "Global=false;MachineOf=b.service", "", false},
		{"a.service", "Global=1;Replaces=b.service", "Global cannot be used with Replaces", false},
		{"a.service", "X-Conflicts=b*;Replaces=c.service", "Conflicts cannot be used with Replaces", false},
		{"a.service", "MachineOf=web.service;Conflicts=we*", `peer "web.service" matches conflict "we*"`, false},
		{"a.service", "MachineOf=web.service;Replaces=web.*", `peer "web.service" matches replace "web.*"`, false},
		{"side@1.service", "MachineOf=apache@%i.service;Conflicts=apache@1.service", `peer "apache@1.service" matches conflict`, false},
		{"side@2.service", "MachineOf=apache@%i.service;Conflicts=apache@1.service", "", false},
		// Unknown options: a typo is an error listing what fleet knows,
		// unless a custom policy places the unit and may read its own.
		{"a.service", "MachineMetdata=disk=ssd", `unknown [X-Fleet] option "MachineMetdata"; fleet knows MachineID, MachineOf`, false},
		{"a.service", "Policy=spread;SpreadBy=zone", "", true},
		{"a.service", "SpreadBy=zone", "", true},
		{"a.service", "X-ConditionMachineBootID=abc;X-ConditionMachineMetadata=a=b", "", false},
		// Quoted multi-values are split for every option, as fleet did.
		{"a.service", `MachineOf="web.service" "db.service";Conflicts=db*`, `peer "db.service" matches conflict "db*"`, false},
		{"a.service", `MachineOf=b.service;Conflicts="b.service" "c.service"`, `peer "b.service" matches conflict "b.service"`, false},
		{"a.service", `Global="true";MachineOf=b.service`, "Global cannot be used with Peers", false},
	} {
		err := Validate(tc.unit, options(strings.Split(tc.xfleet, ";")...), tc.custom)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %q: %v, want %q", tc.unit, tc.xfleet, err, tc.want)
		}
	}
}
