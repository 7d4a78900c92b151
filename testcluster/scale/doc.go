// Package scale runs fleet at scale on one host: many simulated machines in
// one process against a real Consul server, beside real fleetd processes
// (the leader among them), driven by the real fleetctl.
//
// A simulated machine is everything a fleetd machine is to the cluster but
// its units: a real agent.Heartbeat (Consul session, TTL check and
// fleet-agent service), its machine record, and the real agent.Agent
// following its schedule and publishing its units' states, with a Driver
// that keeps units in memory and acknowledges them at once (MemDriver). So
// every request Consul sees is one production makes; only the init system
// is missing (and the isolation watch, which on one host's loopback has
// nothing to watch: loopbackWatch).
// Simulated machines never lead.
//
// With Options.ConsulAgents the simulated machines are spread over that
// many real Consul client agents (agents.go), each with its share of the
// machines' services, checks and sessions, as a real cluster's per-machine
// agents have; without, they all talk to the server's agent.
//
// Run is the end-to-end benchmark (make bench, make bench-quick): it starts
// Consul, the leading fleetd, an idle fleetd and the simulated machines,
// starts units with fleetctl as an operator would, and measures placement
// throughput, what each unit costs the Consul server, the client agents
// and the leader (CPU, raft entries from Consul's own telemetry, bytes the
// leader reads), fleetctl's list commands and the processes' memory. It
// sees the units acknowledged without reading Consul while it measures:
// the simulated machines' transport records the states they write
// (StateLog).
package scale
