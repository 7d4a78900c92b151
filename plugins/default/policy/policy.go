// Package policy is fleet's default placement policy: fleet's own rules,
// written with the SDK like any user policy. It is built twice from this one
// source: to WebAssembly, the module fleetd embeds and runs, and natively, as
// the benchmark baseline and the reference for differential tests.
package policy

import (
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/sdk"
)

// Place applies fleet's rules, in fleet's order: a MachineID pin, then
// MachineMetadata (several values of one key are alternatives, different
// keys must all match), then MachineOf (every listed unit must already be on
// the machine), then Conflicts (declared on either unit, enforced
// both ways) and Replaces (a machine whose unit replaces this one is
// refused; the replacer itself may go anywhere); among the machines left, the one with the fewest units wins,
// ties to the lower machine ID. The matching machines come from the SDK's
// metadata index (set operations), not from a scan. X-Fleet values may use
// the specifiers %n %N %p %i.
func Place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
	req := requirementOf(u)
	fits := c.All()
	for _, k := range req {
		fits = fits.And(c.With(k.key, k.values...))
	}
	id := machineID(u)
	mine := conflicts(u)
	want := peers(u)
	var d sdk.Decision
	if id == "" && len(mine) == 0 && len(want) == 0 && !c.AnyUnitDeclares("Conflicts", "X-Conflicts", "Replaces") {
		if best := c.LeastLoaded(fits); best != nil {
			d.Machine = best.ID
			return d
		}
	} else {
		var ok sdk.Set
		c.Each(fits, func(m *sdk.Machine) {
			if id != "" && !matchesID(m, id) {
				return
			}
			if missingPeer(m, want) != "" {
				return
			}
			if conflictOn(c, m, u, mine) != "" || replacedBy(c, m, u) != "" {
				return
			}
			ok.Add(m)
		})
		if best := c.LeastLoaded(ok); best != nil {
			d.Machine = best.ID
			return d
		}
	}
	// Reasons matter only when the unit stays unplaced: fleetctl shows them.
	for _, m := range c.Machines() {
		switch {
		case id != "" && !matchesID(m, id):
			d.Reject(m, "unit is pinned to MachineID "+id)
		case req.mismatch(m.Metadata) != "":
			d.Reject(m, req.mismatch(m.Metadata))
		case missingPeer(m, want) != "":
			d.Reject(m, "MachineOf "+missingPeer(m, want)+" is not on this machine")
		default:
			if other := conflictOn(c, m, u, mine); other != "" {
				d.Reject(m, "conflicts with "+other)
			} else if other := replacedBy(c, m, u); other != "" {
				d.Reject(m, "replaced here by "+other)
			}
		}
	}
	return d
}

// requirementOf is the unit's MachineMetadata, parsed once per unit body
// unless specifiers make it depend on the unit's name.
func requirementOf(u *sdk.Unit) requirement {
	raw := u.Memo("default/MachineMetadata", func() any { return machineMetadata(u) }).(map[string][]string)
	for _, vs := range raw {
		for _, v := range vs {
			if strings.Contains(v, "%") {
				expanded := map[string][]string{}
				for k, vs := range raw {
					for _, v := range vs {
						expanded[k] = append(expanded[k], sdk.ExpandSpecifiers(v, u.Name))
					}
				}
				return compile(expanded)
			}
		}
	}
	return u.Memo("default/requirement", func() any { return compile(raw) }).(requirement)
}

// requirement is a unit's MachineMetadata prepared once per decision: keys
// in a fixed order, each with its allowed values.
type requirement []struct {
	key    string
	values []string
}

func compile(req map[string][]string) requirement {
	keys := make([]string, 0, len(req))
	for k := range req {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r := make(requirement, len(keys))
	for i, k := range keys {
		r[i].key, r[i].values = k, req[k]
	}
	return r
}

// mismatch says why md does not satisfy the requirement, or "" when it does.
func (r requirement) mismatch(md map[string]string) string {
	for _, k := range r {
		have, ok := md[k.key]
		found := false
		for _, v := range k.values {
			if ok && v == have {
				found = true
				break
			}
		}
		if !found {
			return "metadata does not match MachineMetadata " + k.key + "=" + strings.Join(k.values, "|")
		}
	}
	return ""
}

// machineMetadata reads MachineMetadata (and its deprecated spelling): each
// value holds one or more key=value pairs, space-separated and optionally
// quoted. Pairs that are not one non-empty key and one non-empty value are
// ignored, as fleet did.
func machineMetadata(u *sdk.Unit) map[string][]string {
	req := map[string][]string{}
	for _, name := range []string{"MachineMetadata", "X-ConditionMachineMetadata"} {
		for _, v := range u.XFleet(name) {
			for _, pair := range sdk.SplitQuoted(v) {
				k, val, ok := strings.Cut(pair, "=")
				k, val = strings.TrimSpace(k), strings.TrimSpace(val)
				if !ok || k == "" || val == "" || strings.Contains(val, "=") {
					continue
				}
				req[k] = append(req[k], val)
			}
		}
	}
	return req
}
