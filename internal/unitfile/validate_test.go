package unitfile

import (
	"reflect"
	"strings"
	"testing"
)

func TestValidateXFleet(t *testing.T) {
	for _, tc := range []struct {
		unit, xfleet, want string
		custom             bool
	}{
		{"a.service", "MachineID=abc\nMachineMetadata=a=b", "", false},
		{"a.service", "MachineID=abc\nMachineOf=b.service", "MachineID cannot be used with Peers", false},
		{"a.service", "X-ConditionMachineID=abc\nConflicts=b*", "MachineID cannot be used with Conflicts", false},
		{"a.service", "MachineID=abc\nGlobal=true", "MachineID cannot be used with Global", false},
		{"a.service", "MachineID=abc\nReplaces=b.service", "MachineID cannot be used with Replaces", false},
		{"a.service", "Global=yes\nMachineOf=b.service", "Global cannot be used with Peers", false},
		{"a.service", "Global=false\nMachineOf=b.service", "", false},
		{"a.service", "Global=1\nReplaces=b.service", "Global cannot be used with Replaces", false},
		{"a.service", "X-Conflicts=b*\nReplaces=c.service", "Conflicts cannot be used with Replaces", false},
		{"a.service", "MachineOf=web.service\nConflicts=we*", `peer "web.service" matches conflict "we*"`, false},
		{"a.service", "MachineOf=web.service\nReplaces=web.*", `peer "web.service" matches replace "web.*"`, false},
		{"side@1.service", "MachineOf=apache@%i.service\nConflicts=apache@1.service", `peer "apache@1.service" matches conflict`, false},
		{"side@2.service", "MachineOf=apache@%i.service\nConflicts=apache@1.service", "", false},
		// Unknown options: a typo is an error listing what fleet knows,
		// unless a custom policy places the unit and may read its own.
		{"a.service", "MachineMetdata=disk=ssd", `unknown [X-Fleet] option "MachineMetdata"; fleet knows MachineID, MachineOf`, false},
		{"a.service", "Policy=spread\nSpreadBy=zone", "", true},
		{"a.service", "SpreadBy=zone", "", true},
		{"a.service", "X-ConditionMachineBootID=abc\nX-ConditionMachineMetadata=a=b", "", false},
		// Quoted multi-values are split for every option, as fleet did.
		{"a.service", `MachineOf="web.service" "db.service"` + "\nConflicts=db*", `peer "db.service" matches conflict "db*"`, false},
		{"a.service", "MachineOf=b.service\n" + `Conflicts="b.service" "c.service"`, `peer "b.service" matches conflict "b.service"`, false},
		{"a.service", `Global="true"` + "\nMachineOf=b.service", "Global cannot be used with Peers", false},
	} {
		f, err := Parse("[Service]\nExecStart=/bin/true\n[X-Fleet]\n" + tc.xfleet + "\n")
		if err != nil {
			t.Fatal(err)
		}
		err = f.ValidateXFleet(tc.unit, tc.custom)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %q: %v, want %q", tc.unit, tc.xfleet, err, tc.want)
		}
	}
}

// TestQuotedValues: what the leader and the agents read from [X-Fleet]
// splits quoted multi-values (fleet's "a" "b") for every option, then
// expands specifiers.
func TestQuotedValues(t *testing.T) {
	f, err := Parse(`[X-Fleet]
MachineOf="apache@%i.service" "db.service"
MachineOf=cache.service
Conflicts="x.service y@*.service" "z.service"
X-Conflicts=%p-old.service
MachineID="abc12345" "def67890"
Replaces="old.service"
Global="true"
`)
	if err != nil {
		t.Fatal(err)
	}
	const unit = "side@1.service"
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"PeersFor", f.PeersFor(unit), []string{"apache@1.service", "db.service", "cache.service"}},
		{"ConflictGlobs", f.ConflictGlobs(unit), []string{"x.service", "y@*.service", "z.service", "side-old.service"}},
		{"MachineIDFor", f.MachineIDFor(unit), "abc12345"},
		{"IsGlobal", f.IsGlobal(unit), true},
		{"Conflict", Conflict(unit, f, "z.service", &File{}), true},
		{"Replaces", Replaces(unit, f, "old.service", &File{}), true},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.what, tc.got, tc.want)
		}
	}
}
