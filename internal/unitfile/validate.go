package unitfile

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/wasmfleet/fleet/sdk"
)

// xfleet returns the values of an [X-Fleet] option under any of its names:
// each line split into blank-separated values, a double-quoted run kept as
// one (fleet's quoted multi-values: MachineOf="a.service" "b.service" is two
// units), then specifiers expanded for the unit named unit. The default
// policy (plugins/default/policy) reads the options the same way.
func (f *File) xfleet(unit string, names ...string) []string {
	var out []string
	for _, n := range names {
		for _, line := range f.Values(XFleetSection, n) {
			for _, v := range sdk.SplitQuoted(line) {
				out = append(out, sdk.ExpandSpecifiers(v, unit))
			}
		}
	}
	return out
}

// KnownXFleet are the [X-Fleet] options fleet itself reads: fleet's, their
// deprecated spellings, and Policy.
var KnownXFleet = []string{"MachineID", "MachineOf", "MachineMetadata", "Conflicts", "Global", "Replaces", "Policy",
	"X-ConditionMachineID", "X-ConditionMachineBootID", "X-ConditionMachineOf", "X-ConditionMachineMetadata", "X-Conflicts"}

// ValidateXFleet checks the unit's [X-Fleet] options with fleet's rules:
// the combinations fleet refused, and a MachineOf that the unit's own
// Conflicts or Replaces rule out. The errors are fleet's messages.
//
// An option fleet does not know is an error (fleet ignored it silently,
// so a typo such as MachineMetdata placed a unit anywhere), unless the
// unit is placed by a custom policy, which may read options of its own:
// customPolicy says whether it is (Policy= in the unit, or a custom default).
func (f *File) ValidateXFleet(unit string, customPolicy bool) error {
	if !customPolicy {
		for _, o := range f.Options {
			if o.Section == XFleetSection && !slices.Contains(KnownXFleet, o.Name) {
				return fmt.Errorf("unit %s: unknown [X-Fleet] option %q; fleet knows %s. "+
					"Options a custom policy reads need Policy=NAME in the unit", unit, o.Name, strings.Join(KnownXFleet, ", "))
			}
		}
	}
	machineID := f.xfleet(unit, "MachineID", "X-ConditionMachineID", "X-ConditionMachineBootID")
	peers := f.xfleet(unit, "MachineOf", "X-ConditionMachineOf")
	conflicts := f.ConflictGlobs(unit)
	replaces := f.xfleet(unit, "Replaces")
	global := f.IsGlobal(unit)
	for _, rule := range []struct {
		a, b         bool
		aName, bName string
	}{
		{len(machineID) > 0, len(peers) > 0, "MachineID", "Peers"},
		{len(machineID) > 0, len(conflicts) > 0, "MachineID", "Conflicts"},
		{len(machineID) > 0, global, "MachineID", "Global"},
		{len(machineID) > 0, len(replaces) > 0, "MachineID", "Replaces"},
		{global, len(peers) > 0, "Global", "Peers"},
		{global, len(replaces) > 0, "Global", "Replaces"},
		{len(conflicts) > 0, len(replaces) > 0, "Conflicts", "Replaces"},
	} {
		if rule.a && rule.b {
			return fmt.Errorf("unit %s: %s cannot be used with %s", unit, rule.aName, rule.bName)
		}
	}
	for _, p := range peers {
		for _, c := range conflicts {
			if ok, _ := path.Match(c, p); ok {
				return fmt.Errorf("unit %s: unresolvable requirements: peer %q matches conflict %q", unit, p, c)
			}
		}
		for _, r := range replaces {
			if ok, _ := path.Match(r, p); ok {
				return fmt.Errorf("unit %s: unresolvable requirements: peer %q matches replace %q", unit, p, r)
			}
		}
	}
	return nil
}

// MachineIDFor is the machine the unit is pinned to (MachineID or its
// deprecated spellings; the first value counts, as in fleet), "" when none.
func (f *File) MachineIDFor(unit string) string {
	if v := f.xfleet(unit, "MachineID", "X-ConditionMachineID", "X-ConditionMachineBootID"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// PeersFor is the units the unit must share a machine with (MachineOf).
func (f *File) PeersFor(unit string) []string {
	return f.xfleet(unit, "MachineOf", "X-ConditionMachineOf")
}

// IsGlobal reports whether the unit runs on every eligible machine
// ([X-Fleet] Global; the last value wins; true, yes, 1, on or t).
func (f *File) IsGlobal(unit string) bool {
	g := f.xfleet(unit, "Global")
	if len(g) == 0 {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(g[len(g)-1])) {
	case "true", "yes", "1", "on", "t":
		return true
	}
	return false
}

// ConflictGlobs returns the unit's Conflicts globs, specifiers expanded.
func (f *File) ConflictGlobs(unit string) []string {
	var out []string
	for _, v := range f.xfleet(unit, "Conflicts", "X-Conflicts") {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// Conflict reports whether two units conflict: a glob of either matches the
// other's name (fleet enforces a one-way declaration both ways).
func Conflict(a string, fa *File, b string, fb *File) bool {
	for _, g := range fa.ConflictGlobs(a) {
		if ok, _ := path.Match(g, b); ok {
			return true
		}
	}
	for _, g := range fb.ConflictGlobs(b) {
		if ok, _ := path.Match(g, a); ok {
			return true
		}
	}
	return false
}

// Replaces reports whether unit a (file fa) replaces unit b (file fb): a's
// Replaces globs match b's name and b does not replace a back (circular
// replacement is ignored, as in fleet).
func Replaces(a string, fa *File, b string, fb *File) bool {
	match := func(unit string, f *File, other string) bool {
		for _, v := range f.xfleet(unit, "Replaces") {
			for _, g := range strings.Fields(v) {
				if ok, _ := path.Match(g, other); ok {
					return true
				}
			}
		}
		return false
	}
	return match(a, fa, b) && !match(b, fb, a)
}
