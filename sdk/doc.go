// Package sdk is what a fleet placement policy is written with. A policy is
// a function that, given the cluster and a unit, chooses a machine:
//
//	func init() { sdk.Register(place) }
//
//	func main() {} // required, never called: the module is a reactor
//
//	// place puts the unit on the least-loaded machine with an SSD.
//	func place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
//		var d sdk.Decision
//		if m := c.LeastLoaded(c.With("disk", "ssd")); m != nil {
//			d.Machine = m.ID
//			return d
//		}
//		for _, m := range c.Machines() {
//			d.Reject(m, "no disk=ssd") // what fleetctl shows while the unit waits
//		}
//		return d
//	}
//
// "fleetctl policy new NAME" writes a module with such a policy, its test
// and a copy of this SDK, ready to build. Build it with the standard Go
// toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
//
// # The API
//
// What most policies need:
//
//   - [Cluster.Machines]: the live machines sorted by ID, each with its ID,
//     IP, metadata and the names of the units placed on it.
//   - [Cluster.With]: the machines whose metadata has a key with one of some
//     values, as a [Set]; [Cluster.All], [Set.And] and [Set.Or] combine sets.
//   - [Cluster.LeastLoaded]: the machine of a set with the fewest units, ties
//     to the lower ID.
//   - [Decision.Reject] and [Decision.RejectAll]: why a machine was turned
//     down, which fleetctl shows while the unit waits.
//   - [Unit.XFleet] and [Unit.Values]: the unit's options; a policy may read
//     options of its own from the [X-Fleet] section.
//
// A policy is tested with plain go test: outside wasip1 the same code builds
// natively. Build a cluster with [NewCluster], [Cluster.AddMachine] and
// [Cluster.PlaceUnit], a unit with [NewUnit], and call the policy function.
//
// # The hot path
//
// The cluster lives inside the module and fleetd keeps it current with small
// updates, so a decision does not re-read the whole cluster. A policy that
// places many units a second can avoid allocation and repeated work with
// [Unit.Memo] (derive from a unit's options once), [Cluster.Candidates]
// with [Cluster.KeepWith] or [Cluster.Keep] (narrow a reused set in place),
// [Cluster.Filtered], [Cluster.Narrowed] with [Hosted] (sets of machines
// hosting units) and [Cluster.LeastLoadedOf] (leave the choice to fleetd).
// Most policies never need them.
//
// The package uses only the standard library. How it talks to fleetd is
// docs/abi.md of the fleet repository; a policy author does not need it.
package sdk
