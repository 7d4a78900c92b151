// Package registry is fleet's state in Consul's KV store: the key schema and
// the reads and writes every component makes. docs/keys.md describes the
// schema, key by key, for operators; this package is its only
// implementation.
//
// Every key lives under a prefix (default "fleet/"). fleetctl writes what
// an operator asks for (jobs/, units/, with an entry of the change log,
// changes/); the leader writes where units go (placement/, schedule/); each
// machine writes what it is and what it runs (machines/, states/). The
// bytes of policy modules live beside the prefix, in <prefix>-chunks/, so
// the leader's watch of the prefix does not re-read them.
//
// Keys that describe something alive (machines, states) are acquired with the
// machine's Consul session, whose behaviour is "delete": when the machine dies
// its session is invalidated and Consul removes them. Writes that must not
// race go through check-and-set or transactions; every schedule write is
// fenced by a check that the writer's session still holds the leader lock.
package registry
