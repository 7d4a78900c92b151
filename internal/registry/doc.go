// Package registry is fleet's state in Consul's KV store: the key schema and
// the reads and writes every component makes. docs/keys.md describes the
// schema for operators; this package is its only implementation.
//
// Every key lives under a prefix (default "fleet/"):
//
//	units/<hash>              canonical unit body, content-addressed
//	jobs/<name>/object        {"name","hash"}: which body the unit has
//	jobs/<name>/desired       inactive | loaded | launched
//	jobs/<name>/target        machine ID the leader placed the unit on
//	jobs/<name>/unplaced      why the leader cannot place the unit, if so
//	states/<machine>/<name>   what that machine reports for the unit
//	machines/<id>             a live machine: ID, IP, configured metadata
//	machine-metadata/<id>/<k> dynamic metadata set from outside (metadata.go)
//	leader                    the leader lock
//	policies/<name>           an uploaded placement policy's manifest
//	policy-default            the policy of units that name none
//
// The bytes of policy modules live beside the prefix, in <prefix>-chunks/,
// so the leader's watch of the prefix does not re-read them.
//
// Keys that describe something alive (machines, states) are acquired with the
// machine's Consul session, whose behaviour is "delete": when the machine dies
// its session is invalidated and Consul removes them. Writes that must not
// race go through check-and-set or transactions; every schedule write is
// fenced by a check that the writer's session still holds the leader lock.
package registry
