// Package sdk is what a fleet placement policy is written with. A policy is
// a function that, given the cluster and a unit, chooses a machine:
//
//	func init() { sdk.Register(place) }
//
//	func main() {} // required, never called: the module is a reactor
//
//	func place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
//		var d sdk.Decision
//		for _, m := range c.Machines() { // sorted by ID
//			if m.Metadata["disk"] != "ssd" {
//				d.Reject(m, "no SSD")
//				continue
//			}
//			if d.Machine == "" || len(m.Units) < len(c.Machine(d.Machine).Units) {
//				d.Machine = m.ID
//			}
//		}
//		return d
//	}
//
// Build it with the standard Go toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
//
// The cluster lives inside the module and fleetd keeps it current with small
// updates, so a decision does not re-read the whole cluster. Outside wasip1
// the same code builds natively, so a policy is tested with plain go test:
// build a Cluster with NewCluster, AddMachine and PlaceUnit, and call the
// policy function.
//
// The package uses only the standard library. The ABI it implements is in
// docs/abi.md of the fleet repository.
package sdk
