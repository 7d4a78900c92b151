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

// Place puts a unit on the least-loaded machine (fewest units, ties broken
// by the lower machine ID) whose metadata satisfies the unit's
// MachineMetadata: several values of one key are alternatives, different
// keys must all match. The matching machines come from the SDK's metadata
// index (set operations), not from a scan.
func Place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
	req := u.Memo("default/MachineMetadata", func() any { return compile(machineMetadata(u)) }).(requirement)
	fits := c.All()
	for _, k := range req {
		fits = fits.And(c.With(k.key, k.values...))
	}
	var d sdk.Decision
	if best := c.LeastLoaded(fits); best != nil {
		d.Machine = best.ID
		return d
	}
	// Reasons matter only when the unit stays unplaced: fleetctl shows them.
	for _, m := range c.Machines() {
		d.Reject(m, req.mismatch(m.Metadata))
	}
	return d
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
