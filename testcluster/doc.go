// Package testcluster starts real fleet clusters on one host: a real Consul
// server on loopback, and fleetd machines as separate processes, each with its
// own machine ID and loopback address. Tests use it, and so does "fleetd dev".
//
// Consul is found through CONSUL_BIN, then PATH, then the user cache. When it
// is nowhere, ConsulBinary builds the pinned MPL-2.0 release from the Go
// module proxy into the cache (a few minutes, once per machine).
package testcluster
