package testcluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
)

// SystemdMachine is a real systemd box running a Consul client agent and a
// fleetd agent with the systemd driver: a machine as in production.
type SystemdMachine struct {
	*Box
	Consul *BoxProcess
	Fleetd *BoxProcess
	dir    string
	args   []string // "env", MachineSetup.Env, then fleetd's path and flags
	bin    int      // the index of fleetd's path in args
	t      testing.TB
}

// SystemdCluster is a Consul server (or several) on the host and systemd
// machines that join it through their own Consul client agents.
type SystemdCluster struct {
	Consul   *Consul      // the server machines join; Servers[0] when there are several
	Servers  []*Consul    // every server, when StartSystemdServers started several
	Agent    *ConsulAgent // with several servers, the tests' own client agent on the host (Endpoint)
	Machines []*SystemdMachine
	regOnce  sync.Once
	reg      *registry.Registry
	Dir      string
	TTL      time.Duration
	net      [2]byte // random second and third octets of the machines' 127/8 addresses
	gossip   string  // HCL for the machines' Consul agents, if any
	t        testing.TB
}

// StartSystemd starts a Consul server and n systemd machines (metadata
// hostname=machine-N), and waits until all are published. It needs root and
// systemd-nspawn: without them it skips on a developer's machine and fails
// in CI (RequireBoxes).
func StartSystemd(t testing.TB, n int) *SystemdCluster {
	t.Helper()
	return StartSystemdTTL(t, n, 2*time.Second)
}

// StartSystemdTTL is StartSystemd with fleetd's heartbeat TTL set to ttl
// (tests use a short one; fleetd's default is 10 s).
func StartSystemdTTL(t testing.TB, n int, ttl time.Duration) *SystemdCluster {
	t.Helper()
	return startSystemd(t, n, ttl, false, 1)
}

// StartSystemdDurable is StartSystemdTTL with a Consul server that keeps
// its state on disk, as a real one does, so it can be restarted
// (Consul.Restart) without losing the cluster.
func StartSystemdDurable(t testing.TB, n int, ttl time.Duration) *SystemdCluster {
	t.Helper()
	return startSystemd(t, n, ttl, true, 1)
}

// StartSystemdServers is StartSystemdDurable with a cluster of servers
// Consul servers, as production runs three or five, each keeping its state
// on disk. The machines' agents join the first; gossip tells them of the
// others, so any server may fail. Tests reach Consul through Endpoint, a
// client agent of their own on the host, as an operator's fleetctl does:
// it outlives any server and any machine.
func StartSystemdServers(t testing.TB, n, servers int, ttl time.Duration) *SystemdCluster {
	t.Helper()
	return startSystemd(t, n, ttl, true, servers)
}

func startSystemd(t testing.TB, n int, ttl time.Duration, durable bool, servers int) *SystemdCluster {
	t.Helper()
	RequireBoxes(t)
	// Failure detection as in a real cluster: gossip is Consul's, not dev
	// mode's (FLEET_GOSSIP, see GossipFromEnv).
	server, client, err := GossipFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	opts := ConsulOptions{Gossip: server}
	if durable {
		opts.DataDir = t.TempDir()
	}
	c := &SystemdCluster{Dir: t.TempDir(), TTL: ttl, gossip: client, t: t}
	if servers > 1 {
		c.Servers = StartConsulServersT(t, opts, servers)
		c.Consul = c.Servers[0]
		c.Agent = startTestsAgent(t, c.Consul.SerfLANAddr, client)
	} else {
		c.Consul = StartConsulWith(t, opts)
	}
	_, _ = rand.Read(c.net[:])
	c.net[0] = 10 + c.net[0]%240 // stay clear of 127.0.x.x, which other tests use
	for i := 1; i <= n; i++ {
		c.AddMachine(fmt.Sprintf("hostname=machine-%d", i))
	}
	c.WaitMachines(n)
	return c
}

// AddMachine boots one more systemd machine with the given metadata.
func (c *SystemdCluster) AddMachine(metadata string) *SystemdMachine {
	c.t.Helper()
	return c.AddMachineWith(MachineSetup{Metadata: metadata})
}

// MachineSetup varies how a systemd machine's fleetd runs.
type MachineSetup struct {
	Metadata string
	Prepare  [][]string // commands run in the box before fleetd starts
	Env      []string   // K=V for fleetd's environment
	Extra    []string   // more fleetd agent flags
	Fleetd   string     // the fleetd binary; "" for the tree's build (Binary)
	// Without lists switches of the usual fleetd command line (Box.FleetdArgs)
	// to leave out, for an earlier fleetd that lacks them ("--pprof").
	Without []string
}

// AddMachineWith boots one more systemd machine set up as s says.
func (c *SystemdCluster) AddMachineWith(s MachineSetup) *SystemdMachine {
	c.t.Helper()
	metadata := s.Metadata
	i := len(c.Machines) + 1
	ip := fmt.Sprintf("127.%d.%d.%d", c.net[0], c.net[1], i)
	box := StartBoxT(c.t, BoxOptions{Name: fmt.Sprintf("m%d-%x", i, c.net), IP: ip})
	dir := filepath.Join(c.Dir, box.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	consulBin, err := ConsulBinary(context.Background(), os.Stderr)
	if err != nil {
		c.t.Fatal(err)
	}
	client, err := box.StartConsulClient(consulBin, c.Consul.SerfLANAddr, filepath.Join(dir, "consul.log"), c.gossip)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, cmd := range s.Prepare {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := box.Exec(ctx, cmd...)
		cancel()
		if err != nil {
			c.t.Fatalf("prepare box %s: %v: %v\n%s", box.Name, cmd, err, out)
		}
	}
	fleetd := s.Fleetd
	if fleetd == "" {
		fleetd = Binary(c.t, "fleetd")
	}
	flags := slices.DeleteFunc(box.FleetdArgs(fleetd, metadata, c.TTL), func(a string) bool { return slices.Contains(s.Without, a) })
	args := slices.Concat([]string{"env"}, s.Env, flags, s.Extra)
	m := &SystemdMachine{Box: box, Consul: client, dir: dir, t: c.t, args: args, bin: 1 + len(s.Env)}
	m.StartFleetd()
	c.Machines = append(c.Machines, m)
	return m
}

// StartFleetd starts the machine's fleetd (again, after StopFleetd).
func (m *SystemdMachine) StartFleetd() {
	m.t.Helper()
	p, err := m.Box.Start(filepath.Join(m.dir, "fleetd.log"), m.args...)
	if err != nil {
		m.t.Fatal(err)
	}
	m.Fleetd = p
}

// StopFleetd stops the machine's fleetd with SIGTERM, as "systemctl stop
// fleetd" would; its units keep running.
func (m *SystemdMachine) StopFleetd() { m.Fleetd.Stop() }

// Upgrade is one step of a rolling upgrade: it stops the machine's fleetd
// as StopFleetd does, its units running on, and at once starts the fleetd
// binary at path in its place with the same arguments. Back within the
// heartbeat TTL, the new fleetd is to keep the machine's session and adopt
// its units, none moved or restarted (TestRollingUpgrade checks it).
func (m *SystemdMachine) Upgrade(path string) {
	m.t.Helper()
	m.StopFleetd()
	m.args[m.bin] = path
	m.StartFleetd()
}

// Log returns what the machine's fleetd logged, for failure messages.
func (m *SystemdMachine) Log() string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "fleetd.log"))
	return string(b)
}

// Output runs a command inside the machine and returns its trimmed output
// whatever its exit status (systemctl is-active exits 3 for an inactive
// unit); a command still running after 20 s is killed, and what it printed
// until then returned.
func (m *SystemdMachine) Output(args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := m.Exec(ctx, args...)
	return strings.TrimSpace(string(out))
}

// MainPID is systemd's MainPID of unit on the machine ("0" when it runs no
// process).
func (m *SystemdMachine) MainPID(unit string) string {
	return m.Output("systemctl", "show", "--property", "MainPID", "--value", unit)
}

// Machine returns the machine with the given ID.
func (c *SystemdCluster) Machine(id string) *SystemdMachine {
	for _, m := range c.Machines {
		if m.MachineID == id {
			return m
		}
	}
	c.t.Fatalf("no machine %s in the cluster", id)
	return nil
}

// Registry returns the cluster's registry client, at Endpoint: one for
// the cluster's life, as its connections are kept for reuse. A client per
// call kept as many idle connections open, and a long fault run reached
// Consul's limit of connections from one address (HTTP 429).
func (c *SystemdCluster) Registry() *registry.Registry {
	c.regOnce.Do(func() { c.reg = c.newRegistry() })
	return c.reg
}

func (c *SystemdCluster) newRegistry() *registry.Registry {
	client, err := c.Consul.Client()
	if c.Agent != nil {
		client, err = c.Agent.Client()
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return registry.New(client, "")
}

// Endpoint is the Consul URL tests give fleetctl: the server's, or with
// several servers the tests' own client agent's.
func (c *SystemdCluster) Endpoint() string {
	if c.Agent != nil {
		return c.Agent.URL()
	}
	return c.Consul.URL()
}

// startTestsAgent starts the tests' client agent on the host, joined at
// join, stopped when the test ends.
func startTestsAgent(t testing.TB, join, gossip string) *ConsulAgent {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "consul-tests-agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := StartConsulAgent(context.Background(), ConsulAgentOptions{Join: join, Bind: "127.0.0.1",
		NodeName: "fleet-tests", Log: logf, TempDir: t.TempDir(), HCL: []string{gossip}})
	if err != nil {
		t.Fatalf("start the tests' consul agent: %v", err)
	}
	t.Cleanup(func() { a.Stop(); logf.Close() })
	return a
}

// WaitMachines waits until exactly n machines are published.
func (c *SystemdCluster) WaitMachines(n int) {
	c.t.Helper()
	waitMachines(c.t, c.Registry(), n)
}
