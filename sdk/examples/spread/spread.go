// Command spread is an example placement policy: it spreads the instances of
// a service across failure domains, so that losing one zone takes down as
// few of them as possible. Instances are the units whose names share the
// part before "@" (apache@1.service and apache@2.service are both
// "apache"); a unit without "@" groups with the units of its name without
// the type suffix (apache.service is "apache" too). The failure domain is a
// metadata key, "zone" unless the unit names another:
//
//	[X-Fleet]
//	Policy=spread
//	SpreadBy=rack
//
// The unit goes to the zone that holds the fewest instances of its service,
// and within it to the least-loaded machine (fewest units); ties go to the
// lower machine ID. A machine without the key cannot be placed in any zone,
// so it is turned down with the reason. Build and upload it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o spread.wasm .
//	fleetctl policy upload spread spread.wasm
package main

import (
	"strings"

	"github.com/wasmfleet/fleet/sdk"
)

func init() { sdk.Register(Place) }

func main() {}

// defaultKey is the metadata key zones are read from when the unit sets no
// SpreadBy.
const defaultKey = "zone"

// Place chooses, among the machines that have the spread key, the one with
// the fewest instances of the unit's service in its zone, then the fewest
// units, then the lowest ID.
//
// # Notes
//
// Rejected lists only the machines that lack the key. Machines that could
// take the unit but sit in a busier zone are not listed: as with the default
// policy, reasons are for a unit that cannot be placed.
func Place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
	var d sdk.Decision
	key := spreadKey(u)
	group := service(u.Name)

	// First pass: how many instances each zone already holds.
	inZone := map[string]int{}
	for _, m := range c.Machines() {
		zone, ok := m.Metadata[key]
		if !ok {
			continue
		}
		for name := range m.Units {
			if service(name) == group {
				inZone[zone]++
			}
		}
	}

	// Second pass: the emptiest zone, then the least-loaded machine. The
	// machines come sorted by ID, so the first of equals wins.
	var best *sdk.Machine
	for _, m := range c.Machines() {
		zone, ok := m.Metadata[key]
		if !ok {
			d.Reject(m, "no "+key+" metadata to spread by (SpreadBy="+key+")")
			continue
		}
		if best == nil || less(inZone[zone], len(m.Units), inZone[best.Metadata[key]], len(best.Units)) {
			best = m
		}
	}
	if best != nil {
		d.Machine = best.ID
	}
	return d
}

// less orders machines by the instances in their zone, then by their units.
func less(zoneA, unitsA, zoneB, unitsB int) bool {
	if zoneA != zoneB {
		return zoneA < zoneB
	}
	return unitsA < unitsB
}

// spreadKey is the unit's SpreadBy: the last one set wins, as in systemd,
// and an empty one means the default.
func spreadKey(u *sdk.Unit) string {
	key := defaultKey
	for _, v := range u.XFleet("SpreadBy") {
		key = strings.TrimSpace(v)
		if key == "" {
			key = defaultKey
		}
	}
	return key
}

// service is the name instances of one service share: the part before "@",
// or for a unit that is not a template instance, its name without the type
// suffix.
func service(unit string) string {
	if i := strings.IndexByte(unit, '@'); i >= 0 {
		return unit[:i]
	}
	if i := strings.LastIndexByte(unit, '.'); i > 0 {
		return unit[:i]
	}
	return unit
}
