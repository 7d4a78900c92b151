package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// Faults on a cluster of real systemd machines, each with its own Consul
// client agent, and a Consul server that keeps its state on disk; after each
// fault the cluster must settle into a state where fleet's invariants hold
// (checkInvariants).

// TestConsulServerRestart crashes the Consul server (SIGKILL) and starts it
// again from its data: no unit may be stopped, restarted or moved, and
// nothing submitted may be missing.
func TestConsulServerRestart(t *testing.T) {
	c := testcluster.StartSystemdDurable(t, 3, 10*time.Second)
	reg := c.Registry()
	units := startApps(t, c.Consul.URL(), 6)
	before := pids(t, c, reg)
	started := time.Now()
	if err := c.Consul.Restart(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	back := time.Since(started)
	time.Sleep(3 * c.TTL) // long enough for anything the restart set off to happen
	after := pids(t, c, reg)
	changed := 0
	for name, w := range before {
		if after[name] != w {
			changed++
			t.Errorf("after the restart %s is %v; was %v", name, after[name], w)
		}
	}
	record(t, "Consul server crash and restart (back with a leader after %.2f s): units stopped, restarted or moved %d of %d\n",
		back.Seconds(), changed, len(before))
	if err := checkInvariants(c, reg, submittedNames(units), nil); err != nil {
		t.Error(err)
	}
}

// startApps starts n plain units app-0 to app-N-1 and returns their files.
func startApps(t *testing.T, ep string, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var units []string
	for i := range n {
		units = append(units, testcluster.WriteUnit(t, dir, fmt.Sprintf("app-%d.service", i), testcluster.HelloService))
	}
	testcluster.MustFleetctl(t, ep, append([]string{"start"}, units...)...)
	return units
}

// where is a unit's machine and main PID.
type where struct{ machine, pid string }

// pids is where every scheduled unit runs, from Consul and systemd.
func pids(t *testing.T, c *testcluster.SystemdCluster, reg *registry.Registry) map[string]where {
	t.Helper()
	s, err := reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]where{}
	for name, j := range s.Jobs {
		if j.Target != "" {
			out[name] = where{j.Target, c.Machine(j.Target).MainPID(name)}
		}
	}
	return out
}

func submittedNames(paths []string) []string {
	var names []string
	for _, p := range paths {
		names = append(names, p[strings.LastIndex(p, "/")+1:])
	}
	return names
}

// activeUnits is the services systemd on m reports active.
func activeUnits(m *testcluster.SystemdMachine) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := m.Exec(ctx, "systemctl", "list-units", "--type=service", "--state=active", "--no-legend", "--plain", "--no-pager")
	if err != nil {
		return nil, err
	}
	active := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			active[f[0]] = true
		}
	}
	return active, nil
}

// checkInvariants checks fleet's promises on a settled cluster, from
// Consul and from systemd on every live machine:
//   - nothing submitted is missing from Consul;
//   - every launched non-global unit runs on exactly one machine, the one
//     it is scheduled to;
//   - every launched global unit runs on every live machine (the suite's
//     global units fit every machine).
//
// live is the machines that are up; nil means all of c's machines.
func checkInvariants(c *testcluster.SystemdCluster, reg *registry.Registry, submitted []string, live []*testcluster.SystemdMachine) error {
	if live == nil {
		live = c.Machines
	}
	s, err := reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		return err
	}
	var problems []string
	for _, name := range submitted {
		if s.Jobs[name] == nil {
			problems = append(problems, name+" is missing from Consul")
		}
	}
	running := map[string][]string{} // unit -> machines where systemd runs it
	for _, m := range live {
		active, err := activeUnits(m)
		if err != nil {
			return fmt.Errorf("systemd on %s: %w", m.MachineID[:8], err)
		}
		for u := range active {
			running[u] = append(running[u], m.MachineID)
		}
	}
	for _, name := range s.JobNames() {
		j := s.Jobs[name]
		if j.Desired != registry.Launched || j.Unit == nil {
			continue
		}
		on := running[name]
		switch {
		case j.Global():
			if len(on) != len(live) {
				problems = append(problems, fmt.Sprintf("global %s runs on %d of %d machines", name, len(on), len(live)))
			}
		case len(on) != 1:
			problems = append(problems, fmt.Sprintf("%s runs on %d machines %v (scheduled to %q, published: %v, unplaced: %q)",
				name, len(on), short(on), j.Target, s.Machines[j.Target] != nil, j.Unplaced))
		case on[0] != j.Target:
			problems = append(problems, fmt.Sprintf("%s runs on %s but is scheduled to %q", name, on[0][:8], j.Target))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

func short(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(8, len(id))]
	}
	return out
}

// faultDuration is how long TestRandomFaults injects faults:
// FLEET_FAULT_DURATION, default 90 s (CI); RELIABILITY.md's figures use 10m.
func faultDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("FLEET_FAULT_DURATION")); err == nil && d > 0 {
		return d
	}
	return 90 * time.Second
}

// TestRandomFaults injects faults at random for FLEET_FAULT_DURATION into a
// cluster of four systemd machines and three Consul servers, running plain
// units, instances that conflict with each other, a MachineOf pair and a
// global unit: a machine dies (and a new one replaces it), the leading
// machine dies, a Consul server crashes and restarts with its data, the
// server leading raft is killed (and started again once another leads),
// two of the three servers are down for FLEET_QUORUM_LOSS, a machine's
// fleetd is frozen past its TTL and thawed, a machine is cut off from the
// network and healed. After each
// fault the cluster gets two minutes to settle; if the invariants
// (checkInvariants) do not hold by then, that is a violation. The seed is
// logged; FLEET_FAULT_SEED repeats a run.
func TestRandomFaults(t *testing.T) {
	requireIptables(t)
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("FLEET_FAULT_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("FLEET_FAULT_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	const ttl = 5 * time.Second
	c := testcluster.StartSystemdServers(t, 4, 3, ttl)
	ep := c.Endpoint()
	reg := c.Registry()
	dir := t.TempDir()
	var units []string
	for i := range 4 {
		units = append(units, testcluster.WriteUnit(t, dir, fmt.Sprintf("app-%d.service", i), testcluster.HelloService))
	}
	for i := range 2 {
		units = append(units, testcluster.WriteUnit(t, dir, fmt.Sprintf("web@%d.service", i), testcluster.HelloService+"\n[X-Fleet]\nConflicts=web@*.service\n"))
	}
	units = append(units,
		testcluster.WriteUnit(t, dir, "db.service", testcluster.HelloService),
		testcluster.WriteUnit(t, dir, "db-backup.service", testcluster.HelloService+"\n[X-Fleet]\nMachineOf=db.service\n"),
		testcluster.WriteUnit(t, dir, "logger.service", testcluster.HelloService+"\n[X-Fleet]\nGlobal=true\n"))
	testcluster.MustFleetctl(t, ep, append([]string{"start"}, units...)...)
	submitted := submittedNames(units)

	live := slices.Clone(c.Machines)
	replace := func(dead *testcluster.SystemdMachine, why string) {
		live = slices.DeleteFunc(live, func(m *testcluster.SystemdMachine) bool { return m == dead })
		live = append(live, c.AddMachine("hostname=replacement-"+why))
	}
	pickLive := func() *testcluster.SystemdMachine { return live[rng.IntN(len(live))] }
	type fault struct {
		name   string
		inject func() error
	}
	faults := []fault{
		{"machine dies", func() error {
			m := pickLive()
			if err := m.Kill(); err != nil {
				return err
			}
			replace(m, "killed")
			return nil
		}},
		{"leader dies", func() error {
			s, err := reg.Snapshot(context.Background(), 0, 0)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(live, func(m *testcluster.SystemdMachine) bool { return m.MachineID == s.Leader })
			if i < 0 {
				return fmt.Errorf("no live machine leads (leader %q)", s.Leader)
			}
			m := live[i]
			if err := m.Kill(); err != nil {
				return err
			}
			replace(m, "leader")
			return nil
		}},
		{"Consul server restarts", func() error { return c.Servers[rng.IntN(len(c.Servers))].Restart(context.Background(), true) }},
		{"raft leader killed", func() error {
			leader := raftLeader(t, c, nil)
			leader.Kill()
			raftLeader(t, c, leader)
			return leader.StartAgain(context.Background())
		}},
		{"quorum lost", func() error {
			keep := c.Servers[rng.IntN(len(c.Servers))]
			down := slices.DeleteFunc(slices.Clone(c.Servers), func(s *testcluster.Consul) bool { return s == keep })
			for _, s := range down {
				s.Kill()
			}
			time.Sleep(quorumLoss())
			return startTogether(down)
		}},
		{"fleetd frozen past its TTL", func() error {
			m := pickLive()
			if err := m.Fleetd.Freeze(); err != nil {
				return err
			}
			time.Sleep(ttl + 3*time.Second)
			return m.Fleetd.Thaw()
		}},
		{"machine cut off", func() error {
			heal := cutOff(t, pickLive().IP)
			time.Sleep(10 * time.Second)
			heal()
			return nil
		}},
	}
	counts := map[string]int{}
	violations, lost := 0, 0
	end := time.Now().Add(faultDuration())
	for i := 1; time.Now().Before(end); i++ {
		f := faults[rng.IntN(len(faults))]
		counts[f.name]++
		t.Logf("fault %d: %s", i, f.name)
		if err := f.inject(); err != nil {
			t.Fatalf("injecting %q: %v", f.name, err)
		}
		var last error
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if last = checkInvariants(c, reg, submitted, live); last == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if last != nil {
			violations++
			t.Errorf("after %q the cluster did not settle within 2 minutes: %v\n%s", f.name, last, keepLogs(t, c, seed, i))
		}
	}
	s, err := reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range submitted {
		if s.Jobs[name] == nil {
			lost++
			t.Errorf("%s is lost", name)
		}
	}
	injected := 0
	var kinds []string
	for name, n := range counts {
		injected += n
		kinds = append(kinds, fmt.Sprintf("%s %d", name, n))
	}
	slices.Sort(kinds)
	record(t, "randomized faults over %s (seed %d): %d injected (%s), invariant violations %d, units lost %d\n",
		faultDuration(), seed, injected, strings.Join(kinds, ", "), violations, lost)
}

// keepLogs copies every machine's fleetd log out of the test's temporary
// directory, which is removed when the test ends, and says where.
func keepLogs(t *testing.T, c *testcluster.SystemdCluster, seed uint64, fault int) string {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("fleet-faults-%d-%d", seed, fault))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	for _, m := range c.Machines {
		_ = os.WriteFile(filepath.Join(dir, m.MachineID[:8]+".log"), []byte(m.Log()), 0o644)
	}
	return "fleetd logs of every machine: " + dir
}
