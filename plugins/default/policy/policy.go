// Package policy is fleet's default placement policy: fleet's own rules
// (package xfleet), written with the SDK like any user policy. It is built
// twice from this one source: to WebAssembly, the module fleetd embeds and
// runs, and natively, as the benchmark baseline and the reference for
// differential tests.
package policy

import (
	"github.com/wasmfleet/fleet/sdk"
	"github.com/wasmfleet/fleet/sdk/xfleet"
)

// Place puts u on the least-loaded machine that fleet's rules allow
// (xfleet.Chain: MachineID, MachineMetadata, MachineOf, Conflicts declared on
// either unit, Replaces), ties to the lower machine ID; when none does, it
// says why each machine turned the unit down.
//
// The rules are checked on the SDK's indexes rather than machine by
// machine: the metadata index gives the machines MachineMetadata allows,
// the placement indexes take away those hosting a unit u's Conflicts name,
// and only the machines an index cannot settle (a pin, MachineOf, a unit
// there that declares rules of its own) are checked one by one with the
// chain's checks. TestPlaceMatchesChain holds this to the chain applied to
// every machine.
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
		// fits without the machines hosting a unit matching one of u's
		// Conflicts globs, in one pass that also says whether a machine
		// left hosts a unit that declares rules of its own, which must
		// then be checked one by one. Written out here rather than in a
		// function: in WebAssembly a call costs what the rest of this case
		// does.
		ok, none, look := c.Narrowed(fits, &sp.declaring, sp.conflicting)
		if fits, empty = *ok, none; !none && (look || sp.MachineID != "" || len(sp.Peers) > 0) {
			fits, empty = oneByOne(c, u, sp, ok, look)
		}
	}
	if empty {
		return unplaced(c, u, sp)
	}
	return c.LeastLoadedOf(fits)
}

// unplaced is the decision for a unit no machine can take, with every
// machine's rejection, which fleetctl shows. It is kept out of Place, whose
// frame it would otherwise make large for every decision.
func unplaced(c *sdk.Cluster, u *sdk.Unit, sp *spec) sdk.Decision {
	s := sp.For(u.Name)
	var d sdk.Decision
	for _, m := range c.Machines() {
		if r, failed := s.Check(on(c, m)); failed {
			d.Reject(m, r.String())
		}
	}
	return d
}

// ruleOptions are the [X-Fleet] options by which a placed unit can keep
// others off its machine.
var ruleOptions = []string{"Conflicts", "X-Conflicts", "Replaces"}

// The checks oneByOne applies, from the chain.
var (
	checkPin    = check(xfleet.PinnedElsewhere)
	checkTheirs = []xfleet.Check{check(xfleet.ConflictsWith), check(xfleet.ReplacedBy)}
)

func check(r xfleet.Reason) xfleet.Check {
	for _, k := range xfleet.Chain {
		if k.Reason == r {
			return k
		}
	}
	panic("policy: no check for " + r.String())
}

// oneByOne narrows ok, in place, by the rules the indexes do not settle:
// MachineOf (the machines that run each peer), the rules of the units on
// the machines of HostingDeclaring (when look), the MachineID pin. It is
// kept out of Place, whose frame it would make large for every decision.
//
//go:noinline
func oneByOne(c *sdk.Cluster, u *sdk.Unit, sp *spec, ok *sdk.Set, look bool) (sdk.Set, bool) {
	for _, p := range sp.Peers {
		ok.Intersect(c.HostsOf(p))
	}
	s := sp.For(u.Name)
	if look {
		c.EachIn(*ok, c.HostingKept(&sp.declaring), func(m *sdk.Machine) {
			for _, k := range checkTheirs {
				if _, failed := k.Test(s, on(c, m)); failed {
					ok.Delete(m)
					return
				}
			}
		})
	}
	if sp.MachineID != "" {
		c.Each(*ok, func(m *sdk.Machine) {
			if _, failed := checkPin.Test(s, on(c, m)); failed {
				ok.Delete(m)
			}
		})
	}
	return *ok, ok.Empty()
}

// allowedScan is the machines of fits that pass the whole chain, checked one
// by one.
//
//go:noinline
func allowedScan(c *sdk.Cluster, u *sdk.Unit, sp *spec, fits sdk.Set) (sdk.Set, bool) {
	s := sp.For(u.Name)
	ok := fits.Clone()
	c.Each(fits, func(m *sdk.Machine) {
		if _, failed := s.Check(on(c, m)); failed {
			ok.Delete(m)
		}
	})
	return ok, ok.Empty()
}

// spec is a unit's xfleet.Spec with what the policy derives from it to use
// the SDK's indexes.
type spec struct {
	*xfleet.Spec
	filter      sdk.Filter   // MachineMetadata, resolved against the metadata index
	rules       bool         // the unit has a MachineID, MachineOf or Conflicts
	conflicting []sdk.Hosted // the machines hosting a unit matching each Conflicts glob
	declaring   sdk.Hosted   // the machines hosting a unit that declares a rule against others
}

// specOf reads the unit's spec once per unit body (the instances of a
// template share one, under the name of the first), unless its values use
// specifiers, which make the spec depend on the unit's name.
func specOf(u *sdk.Unit) *spec {
	if sp := u.Memo("default/spec", func() any { return sharedSpec(u) }).(*spec); sp != nil {
		return sp
	}
	return readSpec(u)
}

// sharedSpec is the unit's spec when its instances can share it: nil when
// its values use specifiers.
func sharedSpec(u *sdk.Unit) *spec {
	if xfleet.UsesSpecifiers(u.Options) {
		return nil
	}
	return readSpec(u)
}

func readSpec(u *sdk.Unit) *spec {
	sp := &spec{Spec: xfleet.Read(u.Name, u.Options)}
	for _, k := range sp.Metadata {
		sp.filter.Matches = append(sp.filter.Matches, sdk.Match{Key: k.Key, Values: k.Values})
	}
	for _, g := range sp.Conflicts {
		sp.conflicting = append(sp.conflicting, sdk.Hosted{Glob: g})
	}
	sp.rules = sp.HasRules()
	sp.declaring.Options = ruleOptions
	return sp
}
