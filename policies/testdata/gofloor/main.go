// Command gofloor is a placement policy written with the SDK that answers
// with the first machine and reads nothing else: BenchmarkPlacement's
// go-floor, what a Go guest costs per decision before it decides anything
// (the boundary, Go's runtime entering and leaving an export, the SDK
// decoding the request and encoding the answer).
package main

import "github.com/wasmfleet/fleet/sdk"

func init() { sdk.Register(Place) }

func main() {}

// Place chooses the first machine.
func Place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
	if ms := c.Machines(); len(ms) > 0 {
		return sdk.Decision{Machine: ms[0].ID}
	}
	return sdk.Decision{}
}
