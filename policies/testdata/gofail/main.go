// Command gofail is a placement policy written with the SDK that fails the
// ways a first policy does, chosen by the unit's name: for oom.service it
// holds on to 1 MiB after 1 MiB, 200 MiB in all, more than an instance may
// use; for bigalloc.service it asks for 200 MiB at once; for panic.service
// it panics with a message. For chatty.service it writes to stderr and
// places the unit; every other unit goes to the first machine in silence.
package main

import (
	"os"

	"github.com/wasmfleet/fleet/sdk"
)

func init() { sdk.Register(Place) }

func main() {}

// kept holds what oom.service allocates, so the collector frees none of it.
var kept [][]byte

// Place fails as the unit's name says, or chooses the first machine.
func Place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
	switch u.Name {
	case "oom.service":
		for range 200 {
			kept = append(kept, make([]byte, 1<<20))
		}
	case "bigalloc.service":
		kept = append(kept, make([]byte, 200<<20))
	case "panic.service":
		panic("gofail: no machine is good enough for " + u.Name)
	case "chatty.service":
		os.Stderr.WriteString("gofail: placing chatty.service\n")
	}
	if ms := c.Machines(); len(ms) > 0 {
		return sdk.Decision{Machine: ms[0].ID}
	}
	return sdk.Decision{}
}
