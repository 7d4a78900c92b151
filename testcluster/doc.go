// Package testcluster starts real fleet clusters on one host for tests: a
// real Consul server on loopback, fleetd machines as separate processes,
// each with its own machine ID and loopback address, and real systemd
// machines in throw-away nspawn containers (StartSystemd).
//
// The processes themselves are package internal/devcluster's, which
// "fleetd dev" runs too; testcluster names them for tests and adds what only
// tests need: helpers that take a testing.TB, fail the test and stop
// everything when it ends, the fleetd and fleetctl builds (Main, and an
// earlier commit's for upgrade tests: BinariesAt), and the Consul build.
// Consul is found through CONSUL_BIN, then PATH, then the user cache
// (devcluster.FindConsul); when it is nowhere, ConsulBinary builds the
// pinned MPL-2.0 release from the Go module proxy into the cache (a few
// minutes, once per machine; "make consul" runs it). fleetd never builds
// Consul, so it links none of this.
package testcluster
