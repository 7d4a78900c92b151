package policy

import (
	"path"
	"strings"

	"github.com/wasmfleet/fleet/sdk"
)

// values returns an [X-Fleet] option's values under its name and its
// deprecated spellings: each line split into blank-separated values, a
// double-quoted run kept as one ("a.service" "b.service" is two values, as
// in fleet), then fleet's specifiers expanded for the unit.
// internal/unitfile reads the options the same way for the leader, the
// agents and submit-time validation.
func values(u *sdk.Unit, names ...string) []string {
	var out []string
	for _, n := range names {
		for _, line := range u.XFleet(n) {
			for _, v := range sdk.SplitQuoted(line) {
				out = append(out, sdk.ExpandSpecifiers(v, u.Name))
			}
		}
	}
	return out
}

// machineID is the machine the unit is pinned to (MachineID, or the
// deprecated X-ConditionMachineID and X-ConditionMachineBootID), "" when
// none. Only the first value counts, as in fleet.
func machineID(u *sdk.Unit) string {
	if v := values(u, "MachineID", "X-ConditionMachineID", "X-ConditionMachineBootID"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// matchesID is fleet's rule: the full ID or its first 8 characters.
func matchesID(m *sdk.Machine, id string) bool {
	return m.ID == id || (len(m.ID) >= 8 && m.ID[:8] == id)
}

// conflicts returns the unit's Conflicts globs (space-separated, also
// inside quotes as fleet split them; repeated lines add more; X-Conflicts
// is the deprecated spelling).
func conflicts(u *sdk.Unit) []string {
	var globs []string
	for _, v := range values(u, "Conflicts", "X-Conflicts") {
		globs = append(globs, strings.Fields(v)...)
	}
	return globs
}

// conflictOn says which unit on m conflicts with u, in either direction
// (fleet enforces a one-way declaration both ways), or "".
func conflictOn(c *sdk.Cluster, m *sdk.Machine, u *sdk.Unit, mine []string) string {
	for other := range m.Units {
		if other == u.Name {
			continue
		}
		for _, g := range mine {
			if ok, _ := path.Match(g, other); ok {
				return other
			}
		}
		if ou := c.Unit(other); ou != nil {
			for _, g := range specOf(ou).conflicts {
				if ok, _ := path.Match(g, u.Name); ok {
					return other
				}
			}
		}
	}
	return ""
}

// peers returns the units the unit must share a machine with (MachineOf, or
// the deprecated X-ConditionMachineOf; repeated lines mean all of them).
func peers(u *sdk.Unit) []string {
	return values(u, "MachineOf", "X-ConditionMachineOf")
}

// missingPeer says which peer is not on m, or "".
func missingPeer(m *sdk.Machine, want []string) string {
	for _, p := range want {
		if !m.Units[p] {
			return p
		}
	}
	return ""
}

// replaces returns the unit's Replaces globs.
func replaces(u *sdk.Unit) []string {
	var globs []string
	for _, v := range values(u, "Replaces") {
		globs = append(globs, strings.Fields(v)...)
	}
	return globs
}

// replacedBy says which unit on m replaces u (its Replaces matches u's name,
// and u does not replace it back: circular replacement is ignored), or "".
// A replaced unit must leave that machine.
func replacedBy(c *sdk.Cluster, m *sdk.Machine, u *sdk.Unit) string {
	mine := specOf(u).replaces
	for other := range m.Units {
		ou := c.Unit(other)
		if other == u.Name || ou == nil {
			continue
		}
		for _, g := range specOf(ou).replaces {
			if ok, _ := path.Match(g, u.Name); ok && !matchesAny(mine, other) {
				return other
			}
		}
	}
	return ""
}

func matchesAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}
