// Package policy is fleet's default placement policy: fleet's own rules,
// written with the SDK like any user policy. It is built twice from this one
// source: to WebAssembly, the module fleetd embeds and runs, and natively, as
// the benchmark baseline and the reference for differential tests.
package policy

import (
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/sdk"
	"github.com/wasmfleet/fleet/sdk/wire"
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
	sp := specOf(u)
	fits := c.Filtered(&sp.filter)
	empty := false
	switch {
	case !sp.rules && !c.AnyUnitDeclares(ruleOptions...):
		empty = fits.Empty()
	case c.Hosts(u) > 0:
		// Placed already (a simulation replays placed units): the indexes
		// would count the unit against itself.
		fits, empty = allowedScan(c, u, sp, fits)
	default:
		// The rules between units (MachineID, MachineOf, Conflicts both
		// ways, Replaces) on the SDK's placement indexes: fits without the
		// machines hosting a unit matching one of u's Conflicts globs, in
		// one pass that also says whether a machine left hosts a unit that
		// declares rules of its own, which must then be looked at one by
		// one. Written out here rather than in a function: in WebAssembly
		// a call costs what the rest of this case does.
		ok, none, look := c.Narrowed(fits, &sp.declaring, sp.conflicting)
		if fits, empty = *ok, none; !none && (look || sp.id != "" || len(sp.peers) > 0) {
			fits, empty = oneByOne(c, u, sp, ok, look)
		}
	}
	if empty {
		return unplaced(c, u, sp)
	}
	return c.LeastLoadedOf(fits)
}

// unplaced is the decision for a unit no machine can take, with every
// machine's reason, which fleetctl shows. It is kept out of Place, whose
// frame it would otherwise make large for every decision.
func unplaced(c *sdk.Cluster, u *sdk.Unit, sp *spec) sdk.Decision {
	id, mine, want := sp.id, sp.conflicts, sp.peers
	var d sdk.Decision
	pinned := "unit is pinned to MachineID " + id
	d.Rejected = make([]wire.Rejection, 0, len(c.Machines()))
	for _, m := range c.Machines() {
		mismatch := sp.req.mismatch(m.Metadata)
		switch {
		case id != "" && !matchesID(m, id):
			d.Reject(m, pinned)
		case mismatch != "":
			d.Reject(m, mismatch)
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

// ruleOptions are the [X-Fleet] options by which a placed unit can keep
// others off its machine.
var ruleOptions = []string{"Conflicts", "X-Conflicts", "Replaces"}

// oneByOne narrows ok, in place, by the rules between units that sets cannot
// express: MachineOf, the machines hosting a unit with rules of its own (when
// look), the MachineID pin. It is kept out of Place, whose frame it would
// make large for every decision.
//
//go:noinline
func oneByOne(c *sdk.Cluster, u *sdk.Unit, sp *spec, ok *sdk.Set, look bool) (sdk.Set, bool) {
	for _, p := range sp.peers {
		ok.Intersect(c.HostsOf(p))
	}
	if look {
		c.EachIn(*ok, c.HostingKept(&sp.declaring), func(m *sdk.Machine) {
			if conflictOn(c, m, u, nil) != "" || replacedBy(c, m, u) != "" {
				ok.Delete(m)
			}
		})
	}
	if sp.id != "" {
		c.Each(*ok, func(m *sdk.Machine) {
			if !matchesID(m, sp.id) {
				ok.Delete(m)
			}
		})
	}
	return *ok, ok.Empty()
}

// allowedScan is allowed by looking at every unit on every machine of fits.
//
//go:noinline
func allowedScan(c *sdk.Cluster, u *sdk.Unit, sp *spec, fits sdk.Set) (sdk.Set, bool) {
	ok := fits.Clone()
	c.Each(fits, func(m *sdk.Machine) {
		if (sp.id != "" && !matchesID(m, sp.id)) || missingPeer(m, sp.peers) != "" ||
			conflictOn(c, m, u, sp.conflicts) != "" || replacedBy(c, m, u) != "" {
			ok.Delete(m)
		}
	})
	return ok, ok.Empty()
}

// spec is what the default policy reads from a unit's [X-Fleet] section,
// with fleet's specifiers expanded for the unit.
type spec struct {
	req       requirement // MachineMetadata
	filter    sdk.Filter  // req, resolved against the cluster's index
	id        string      // the MachineID pin, "" when none
	conflicts []string    // Conflicts globs
	peers     []string    // MachineOf units
	replaces  []string    // Replaces globs

	rules       bool         // the unit has a MachineID, Conflicts or MachineOf
	conflicting []sdk.Hosted // the machines hosting a unit matching each of conflicts
	declaring   sdk.Hosted   // the machines hosting a unit that declares a rule against others
}

// specOf reads the unit's spec once per unit body (the instances of a
// template share one), unless its values use specifiers, which make the
// spec depend on the unit's name.
func specOf(u *sdk.Unit) *spec {
	if sp := u.Memo("default/spec", func() any { return sharedSpec(u) }).(*spec); sp != nil {
		return sp
	}
	return readSpec(u)
}

// sharedSpec is the unit's spec when its instances can share it: nil when
// its values use specifiers.
func sharedSpec(u *sdk.Unit) *spec {
	for _, o := range u.Options {
		if o.Section == "X-Fleet" && strings.Contains(o.Value, "%") {
			return nil
		}
	}
	return readSpec(u)
}

func readSpec(u *sdk.Unit) *spec {
	sp := &spec{req: compile(machineMetadata(u)), id: machineID(u), conflicts: conflicts(u), peers: peers(u), replaces: replaces(u)}
	for _, k := range sp.req {
		sp.filter.Matches = append(sp.filter.Matches, k.Match)
	}
	for _, g := range sp.conflicts {
		sp.conflicting = append(sp.conflicting, sdk.Hosted{Glob: g})
	}
	sp.rules = sp.id != "" || len(sp.conflicts) > 0 || len(sp.peers) > 0
	sp.declaring.Options = ruleOptions
	return sp
}

// requirement is a unit's MachineMetadata prepared once per unit body: keys
// in a fixed order, each with its allowed values and the reason a machine
// without one of them is given.
type requirement []struct {
	sdk.Match
	reason string
}

func compile(req map[string][]string) requirement {
	keys := make([]string, 0, len(req))
	for k := range req {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r := make(requirement, len(keys))
	for i, k := range keys {
		r[i].Key, r[i].Values = k, req[k]
		r[i].reason = "metadata does not match MachineMetadata " + k + "=" + strings.Join(req[k], "|")
	}
	return r
}

// mismatch says why md does not satisfy the requirement, or "" when it does.
func (r requirement) mismatch(md map[string]string) string {
	for _, k := range r {
		have, ok := md[k.Key]
		found := false
		for _, v := range k.Values {
			if ok && v == have {
				found = true
				break
			}
		}
		if !found {
			return k.reason
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
	for _, pair := range values(u, "MachineMetadata", "X-ConditionMachineMetadata") {
		k, val, ok := strings.Cut(pair, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok || k == "" || val == "" || strings.Contains(val, "=") {
			continue
		}
		req[k] = append(req[k], val)
	}
	return req
}
