package reliability

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// Faults of a Consul shaped as production runs it: three servers, each
// keeping its state on disk, and real systemd machines joined through their
// own client agents.

// quorumLoss is how long TestConsulServerFaults keeps two of three servers
// down: FLEET_QUORUM_LOSS, default 30 s.
func quorumLoss() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("FLEET_QUORUM_LOSS")); err == nil && d > 0 {
		return d
	}
	return 30 * time.Second
}

// raftLeader is the server that leads raft, as the cluster reports it,
// once that is not not (nil: any server).
func raftLeader(t *testing.T, c *testcluster.SystemdCluster, not *testcluster.Consul) *testcluster.Consul {
	t.Helper()
	var leader *testcluster.Consul
	testcluster.Eventually(t, 60*time.Second, func() error {
		addr, err := c.Registry().Client().Status().Leader()
		if err != nil {
			return err
		}
		for _, s := range c.Servers {
			if s.RaftAddr == addr && s != not {
				leader = s
				return nil
			}
		}
		return fmt.Errorf("raft leader %q is none of the servers that may lead", addr)
	})
	return leader
}

// TestConsulServerFaults runs three faults in turn on a cluster of three
// Consul servers with six units running on three systemd machines: the
// server that leads raft is killed (SIGKILL) and later started again; a
// follower is killed and restarted with its data; two of the three are
// killed, which loses the quorum, for FLEET_QUORUM_LOSS, and started again.
// After each, no unit may have been stopped, restarted, moved, lost or
// duplicated (checkInvariants). After quorum returns, a new unit is placed:
// how soon is recorded (RELIABILITY.md).
func TestConsulServerFaults(t *testing.T) {
	c := testcluster.StartSystemdServers(t, 3, 3, 10*time.Second)
	ep := c.Endpoint()
	reg := c.Registry()
	units := startApps(t, ep, 6)
	before := pids(t, c, reg)
	sessions := machineSessions(t, c)
	ctx := context.Background()
	unchanged := func(fault string) {
		t.Helper()
		time.Sleep(3 * c.TTL) // long enough for anything the fault set off to happen
		after := pids(t, c, reg)
		changed := 0
		for name, w := range before {
			if after[name] != w {
				changed++
				t.Errorf("after %s %s is on %s with MainPID %s; was on %s with %s", fault, name, after[name].machine, after[name].pid, w.machine, w.pid)
			}
		}
		if err := checkInvariants(c, reg, submittedNames(units), nil); err != nil {
			t.Errorf("after %s: %v", fault, err)
		}
		// What keeps the units in place: no machine's session lapses.
		if got := machineSessions(t, c); !maps.Equal(got, sessions) {
			t.Errorf("after %s the machines' sessions are %v; were %v", fault, got, sessions)
		}
		record(t, "3 Consul servers, %s: units stopped, restarted or moved %d of %d\n", fault, changed, len(before))
		if changed > 0 {
			for _, m := range c.Machines {
				t.Logf("fleetd on %s:\n%s", m.MachineID, m.Log())
			}
		}
	}
	others := func(s *testcluster.Consul) []*testcluster.Consul {
		var rest []*testcluster.Consul
		for _, x := range c.Servers {
			if x != s {
				rest = append(rest, x)
			}
		}
		return rest
	}

	leader := raftLeader(t, c, nil)
	leader.Kill()
	started := time.Now()
	raftLeader(t, c, leader)
	t.Logf("a new raft leader %.2f s after the old one was killed", time.Since(started).Seconds())
	unchanged("the raft leader killed")
	if err := leader.StartAgain(ctx); err != nil {
		t.Fatal(err)
	}

	follower := others(raftLeader(t, c, nil))[0]
	if err := follower.Restart(ctx, true); err != nil {
		t.Fatal(err)
	}
	unchanged("a follower restarted with its data")

	down := others(c.Servers[0])
	for _, s := range down {
		s.Kill()
	}
	d := quorumLoss()
	t.Logf("quorum lost for %s", d)
	time.Sleep(d)
	if err := startTogether(down); err != nil {
		t.Fatal(err)
	}
	back := time.Now() // the servers are ready: a leader again
	placed := placeOne(t, ep, reg, back)
	unchanged(fmt.Sprintf("quorum lost for %s", d))
	record(t, "3 Consul servers, quorum lost for %s: a new unit placed %.2f s after quorum returned\n", d, placed.Seconds())
}

// startTogether starts stopped servers again, all at once: with the quorum
// lost none has a leader until enough are back.
func startTogether(servers []*testcluster.Consul) error {
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.StartAgain(context.Background()) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// placeOne starts one more unit through fleetctl (retrying while Consul
// refuses it) and returns how long after since it was scheduled to a
// machine. It fails the test after two minutes.
func placeOne(t *testing.T, ep string, reg *registry.Registry, since time.Time) time.Duration {
	t.Helper()
	file := testcluster.WriteUnit(t, t.TempDir(), "after-quorum.service", testcluster.HelloService)
	testcluster.Eventually(t, 2*time.Minute, func() error {
		if _, stderr, code := testcluster.Fleetctl(t, ep, "start", "--no-block", file); code != 0 {
			return fmt.Errorf("fleetctl start: %s", stderr)
		}
		return nil
	})
	var placed time.Duration
	testcluster.Eventually(t, 2*time.Minute, func() error {
		s, err := reg.Snapshot(context.Background(), 0, 0)
		if err != nil {
			return err
		}
		if j := s.Jobs["after-quorum.service"]; j == nil || j.Target == "" {
			return fmt.Errorf("after-quorum.service is not placed")
		}
		placed = time.Since(since)
		return nil
	})
	return placed
}
