// Package agent is the part of fleetd that runs on every machine.
//
// It keeps the machine alive in Consul (a session tied to a TTL health check
// it renews, see Heartbeat), publishes the machine (ID, IP, metadata), watches
// the units scheduled to it with blocking queries, drives them through a
// Driver (systemd, or a process supervisor for dev mode), and reports their
// states. The decision of what to do is Plan, a pure function of desired and
// current state; everything else is plumbing around it.
package agent
