// Command maxper is an example placement policy: it caps how many units a
// machine runs, for units that each need a share of a machine (memory, file
// descriptors, ports) that a bare unit count approximates. The cap is the
// unit's own, 10 unless it sets one:
//
//	[X-Fleet]
//	Policy=maxper
//	MaxPerMachine=4
//
// Among the machines running fewer units than the cap, the unit goes to the
// least-loaded (fewest units); ties go to the lower machine ID. A full
// machine is turned down with its count; a MaxPerMachine that is not a
// positive integer is a mistake in the unit, so the unit is not placed and
// every machine gives that as the reason. Build and upload it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o maxper.wasm .
//	fleetctl policy upload maxper maxper.wasm
package main

import (
	"strconv"
	"strings"

	"github.com/wasmfleet/fleet/sdk"
)

func init() { sdk.Register(Place) }

func main() {}

// defaultMax is the cap of a unit that sets no MaxPerMachine.
const defaultMax = 10

// Place chooses the least-loaded machine with fewer units than the unit's
// MaxPerMachine.
func Place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
	var d sdk.Decision
	limit, invalid := maxPerMachine(u)
	if invalid != "" {
		d.RejectAll(c, invalid)
		return d
	}
	var fits sdk.Set
	for _, m := range c.Machines() {
		if n := len(m.Units); n >= limit {
			d.Reject(m, "full: runs "+strconv.Itoa(n)+" units, MaxPerMachine="+strconv.Itoa(limit))
			continue
		}
		fits.Add(m)
	}
	if best := c.LeastLoaded(fits); best != nil { // ties go to the lower ID
		d.Machine = best.ID
	}
	return d
}

// maxPerMachine is the unit's cap: its last MaxPerMachine, as in systemd
// where a later assignment overrides, or defaultMax. A value that is not a
// positive integer gives the reason to report instead.
func maxPerMachine(u *sdk.Unit) (limit int, invalid string) {
	vs := u.XFleet("MaxPerMachine")
	if len(vs) == 0 {
		return defaultMax, ""
	}
	v := vs[len(vs)-1]
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return 0, "invalid MaxPerMachine=" + strconv.Quote(v) + " in the unit: want a positive integer"
	}
	return n, ""
}
