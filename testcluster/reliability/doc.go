// Package reliability holds fleet's fault suites: tests that break a
// running cluster as production breaks (a machine or the leader dies, a
// fleetd is stopped, frozen or cut off the network, the Consul server hangs
// or crashes) and check that fleetd recovers and keeps its promises. They
// test fleetd, not fleetctl.
//
// The package has no code but its tests. The failover tests run on dev
// machines (testcluster.Start: fleetd processes with the exec driver); the
// fault and recovery-time tests on real systemd machines
// (testcluster.StartSystemd), which need root and systemd-nspawn, and
// iptables for the partitions. The tests drive the cluster as an operator
// does, with the fleetctl binary testcluster.Main builds
// (testcluster.Fleetctl), and read its state from Consul. The rolling
// upgrade test also runs an earlier commit's fleetd and fleetctl
// (testcluster.BinariesAt) beside the tree's.
//
// Their figures are RELIABILITY.md's: make reliability runs them at full
// length and writes reliability.txt; make test runs them shorter.
package reliability
