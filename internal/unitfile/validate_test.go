package unitfile

import (
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
