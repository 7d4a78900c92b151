// Command softconflicts is an example placement policy: "soft"
// anti-affinity (fleet issue #943). fleet's Conflicts keeps two units apart
// or leaves one unplaced; a unit that would rather not share a machine with
// others, but would rather run than wait, says so with globs on unit names
// (path.Match syntax, several per line and several lines):
//
//	[X-Fleet]
//	Policy=softconflicts
//	PreferNotWith=db@*.service cache.service
//
// The unit goes to a machine where no unit matches, the least-loaded of
// them (fewest units); when every machine runs a match, it goes to the one
// with the fewest matches, then the least loaded, then the lower machine ID,
// instead of failing. So no machine is turned down for its neighbours: only
// a glob that does not parse, a mistake in the unit, leaves the unit
// unplaced, with that reason on every machine. Build and upload it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o softconflicts.wasm .
//	fleetctl policy upload softconflicts softconflicts.wasm
package main

import (
	"path"
	"strconv"
	"strings"

	"github.com/wasmfleet/fleet/sdk"
)

func init() { sdk.Register(Place) }

func main() {}

// Place chooses the machine with the fewest units matching the unit's
// PreferNotWith globs, then the fewest units, then the lowest ID.
func Place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
	var d sdk.Decision
	globs, invalid := preferNotWith(u)
	if invalid != "" {
		d.RejectAll(c, invalid)
		return d
	}
	var best *sdk.Machine
	bestMatches := 0
	for _, m := range c.Machines() { // sorted by ID: the first of equals wins
		n := matches(globs, m)
		if best == nil || n < bestMatches || n == bestMatches && len(m.Units) < len(best.Units) {
			best, bestMatches = m, n
		}
	}
	if best != nil {
		d.Machine = best.ID
	}
	return d
}

// matches counts the units on m that match any of globs.
func matches(globs []string, m *sdk.Machine) int {
	n := 0
	for name := range m.Units {
		for _, g := range globs {
			if ok, _ := path.Match(g, name); ok { // globs were checked by preferNotWith
				n++
				break
			}
		}
	}
	return n
}

// preferNotWith reads the unit's globs, or gives the reason to report for
// the first one that does not parse.
func preferNotWith(u *sdk.Unit) ([]string, string) {
	var globs []string
	for _, v := range u.XFleet("PreferNotWith") {
		for _, g := range strings.Fields(v) {
			if _, err := path.Match(g, ""); err != nil {
				return nil, "invalid PreferNotWith glob " + strconv.Quote(g) + " in the unit: " + err.Error()
			}
			globs = append(globs, g)
		}
	}
	return globs, ""
}
