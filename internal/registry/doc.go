// Package registry is fleet's state in Consul's KV store: the key schema and
// the reads and writes every component makes. docs/keys.md describes the
// schema for operators; this package is its only implementation.
//
// Every key lives under a prefix (default "fleet/"):
//
//	units/<hash>              canonical unit body, content-addressed
//	jobs/<name>               {"name","hash","desired"}: the unit's body and
//	                          desired state (fleetctl writes it)
//	placement/<name>          {"machine"} or {"unplaced"}, with the job's
//	                          CreateIndex: where the leader put the unit, or
//	                          why it could not (only the leader writes it)
//	states/<machine>/         what that machine reports for its units,
//	                          by name (schema version 3, states.go)
//	states/<machine>/<name>   what that machine reports for one unit
//	                          the machine key does not hold
//	machines/<id>             a live machine: ID, IP, configured metadata
//	machine-metadata/<id>/<k> dynamic metadata set from outside (metadata.go)
//	leader                    the leader lock
//	schema                    {"version"}: the layout of these keys (schema.go)
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
