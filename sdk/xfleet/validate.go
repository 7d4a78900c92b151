package xfleet

import (
	"fmt"
	"strings"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// Known are the [X-Fleet] options fleet itself reads: fleet's, their
// deprecated spellings, and Policy.
var Known = []string{"MachineID", "MachineOf", "MachineMetadata", "Conflicts", "Global", "Replaces", "Policy",
	"X-ConditionMachineID", "X-ConditionMachineBootID", "X-ConditionMachineOf", "X-ConditionMachineMetadata", "X-Conflicts"}

// Validate checks the [X-Fleet] options of the unit named unit with fleet's
// rules: the combinations fleet refused, and a MachineOf that the unit's
// own Conflicts or Replaces rule out.
//
// An option fleet does not know is an error (fleet ignored it silently, so
// a typo such as MachineMetdata placed a unit anywhere), unless a custom
// policy places the unit and may read options of its own: custom says
// whether one does (Policy= in the unit, or a custom cluster default).
//
// # Errors
//
// fleet's messages ("MachineID cannot be used with Peers", ...), prefixed
// with the unit's name.
func Validate(unit string, options []wire.Option, custom bool) error {
	if !custom {
		for _, o := range options {
			if o.Section == Section && !contains(Known, o.Name) {
				return fmt.Errorf("unit %s: unknown [X-Fleet] option %q; fleet knows %s. "+
					"Options a custom policy reads need Policy=NAME in the unit", unit, o.Name, strings.Join(Known, ", "))
			}
		}
	}
	s := Read(unit, options)
	for _, rule := range []struct {
		a, b         bool
		aName, bName string
	}{
		{s.MachineID != "", len(s.Peers) > 0, "MachineID", "Peers"},
		{s.MachineID != "", len(s.Conflicts) > 0, "MachineID", "Conflicts"},
		{s.MachineID != "", s.Global, "MachineID", "Global"},
		{s.MachineID != "", len(s.Replaces) > 0, "MachineID", "Replaces"},
		{s.Global, len(s.Peers) > 0, "Global", "Peers"},
		{s.Global, len(s.Replaces) > 0, "Global", "Replaces"},
		{len(s.Conflicts) > 0, len(s.Replaces) > 0, "Conflicts", "Replaces"},
	} {
		if rule.a && rule.b {
			return fmt.Errorf("unit %s: %s cannot be used with %s", unit, rule.aName, rule.bName)
		}
	}
	for _, p := range s.Peers {
		for _, c := range s.Conflicts {
			if Matches(c, p) {
				return fmt.Errorf("unit %s: unresolvable requirements: peer %q matches conflict %q", unit, p, c)
			}
		}
		for _, r := range s.Replaces {
			if Matches(r, p) {
				return fmt.Errorf("unit %s: unresolvable requirements: peer %q matches replace %q", unit, p, r)
			}
		}
	}
	return nil
}
