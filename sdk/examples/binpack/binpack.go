// Command binpack is an example placement policy: it packs units onto as few
// machines as possible, choosing the busiest machine that still has room,
// where room is the machine's "slots" metadata (default 4). Idle machines
// stay empty, to be scaled down or kept for large units.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o binpack.wasm .
//	fleetctl policy upload binpack binpack.wasm
//
// and in a unit:
//
//	[X-Fleet]
//	Policy=binpack
package main

import (
	"strconv"

	"github.com/wasmfleet/fleet/sdk"
)

func init() { sdk.Register(Place) }

func main() {}

// Place chooses the machine with the most units that has a free slot; ties go
// to the lower machine ID.
func Place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
	var d sdk.Decision
	var best *sdk.Machine
	for _, m := range c.Machines() {
		slots := 4
		if v, err := strconv.Atoi(m.Metadata["slots"]); err == nil {
			slots = v
		}
		if len(m.Units) >= slots {
			d.Reject(m, "full: "+strconv.Itoa(len(m.Units))+" of "+strconv.Itoa(slots)+" slots used")
			continue
		}
		if best == nil || len(m.Units) > len(best.Units) {
			best = m
		}
	}
	if best != nil {
		d.Machine = best.ID
	}
	return d
}
