// Package xfleet is fleet's scheduling rules, written once: what a unit's
// [X-Fleet] section asks for (Read, Spec), which combinations fleet refuses
// (Validate), and whether a machine may run the unit (Chain, Spec.Check).
//
// Every part of fleet that applies the rules calls this package: the
// default placement policy, the leader when it checks again the units that
// already run, each machine's agent when it picks the global units it runs,
// fleetctl when it validates a unit and when it simulates a policy. A
// policy of one's own may call it too, to keep fleet's rules and add its own.
//
// The rules are an ordered chain of named checks, fleet's order: MachineID,
// MachineMetadata, MachineOf, Conflicts, Replaces. A machine is turned down
// by the first check it fails, with a Rejection whose Reason is a constant
// (for metrics and tests) and whose text is what fleetctl shows.
//
// The package uses only the standard library, so a WebAssembly policy can
// import it.
package xfleet
