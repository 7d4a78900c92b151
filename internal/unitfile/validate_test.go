package unitfile

import (
	"strings"
	"testing"
)

func TestValidateXFleet(t *testing.T) {
	for _, tc := range []struct {
		unit, xfleet, want string
	}{
		{"a.service", "MachineID=abc\nMachineMetadata=a=b", ""},
		{"a.service", "MachineID=abc\nMachineOf=b.service", "MachineID cannot be used with Peers"},
		{"a.service", "X-ConditionMachineID=abc\nConflicts=b*", "MachineID cannot be used with Conflicts"},
		{"a.service", "MachineID=abc\nGlobal=true", "MachineID cannot be used with Global"},
		{"a.service", "MachineID=abc\nReplaces=b.service", "MachineID cannot be used with Replaces"},
		{"a.service", "Global=yes\nMachineOf=b.service", "Global cannot be used with Peers"},
		{"a.service", "Global=false\nMachineOf=b.service", ""},
		{"a.service", "Global=1\nReplaces=b.service", "Global cannot be used with Replaces"},
		{"a.service", "X-Conflicts=b*\nReplaces=c.service", "Conflicts cannot be used with Replaces"},
		{"a.service", "MachineOf=web.service\nConflicts=we*", `peer "web.service" matches conflict "we*"`},
		{"a.service", "MachineOf=web.service\nReplaces=web.*", `peer "web.service" matches replace "web.*"`},
		{"side@1.service", "MachineOf=apache@%i.service\nConflicts=apache@1.service", `peer "apache@1.service" matches conflict`},
		{"side@2.service", "MachineOf=apache@%i.service\nConflicts=apache@1.service", ""},
	} {
		f, err := Parse("[Service]\nExecStart=/bin/true\n[X-Fleet]\n" + tc.xfleet + "\n")
		if err != nil {
			t.Fatal(err)
		}
		err = f.ValidateXFleet(tc.unit)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %q: %v, want %q", tc.unit, tc.xfleet, err, tc.want)
		}
	}
}
