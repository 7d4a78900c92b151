// Package fleetapi serves fleet's HTTP API v1, the one the original
// fleetctl's default driver (--driver API) and fleet's Go client package
// speak, as a view of fleet's state in Consul through package registry: a
// unit created here is the unit fleetctl lists and the leader places.
//
// The handlers answer under /fleet/v1/ and under the legacy prefix
// /v1-alpha/:
//
//	GET    discovery        the API's discovery document
//	GET    machines         live machines, paged
//	GET    units            every unit with its options and states, paged
//	GET    units/<name>     one unit
//	PUT    units/<name>     create, replace, or set the desired state
//	DELETE units/<name>     destroy
//	GET    state            what machines report, paged; ?machineID= and
//	                        ?unitName= filter it
//	GET    state/<name>     the state of one unit
//
// Errors are fleet's: {"error":{"code":N,"message":"..."}} with the HTTP
// status N. A request that is refused writes nothing: every check is made
// before the one write a request does. docs/migrating.md is the operator's
// guide.
package fleetapi
