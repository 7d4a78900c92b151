package systemd

import (
	"strings"
	"testing"
)

// TestPathStaysInUnitsDir: no unit name reaches outside the units
// directory, whatever the cluster hands the agent.
func TestPathStaysInUnitsDir(t *testing.T) {
	d := &Driver{opts: Options{UnitsDir: "/run/fleet/units"}}
	for _, bad := range []string{"../../etc/passwd.service", "/etc/x.service", "a/b.service", "x.service/..", ""} {
		if p, err := d.path(bad); err == nil {
			t.Errorf("path(%q) = %q, want refusal", bad, p)
		}
	}
	p, err := d.path("web@1.service")
	if err != nil || p != "/run/fleet/units/web@1.service" || !strings.HasPrefix(p, d.opts.UnitsDir+"/") {
		t.Errorf("path(web@1.service) = %q, %v", p, err)
	}
}
