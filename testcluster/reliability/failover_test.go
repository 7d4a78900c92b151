package reliability

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestLeaderDies kills the leading machine: another machine takes the lock
// and both the dead leader's unit and a unit started afterwards are placed.
func TestLeaderDies(t *testing.T) {
	c := testcluster.Start(t, 3)
	ep := c.Consul.URL()
	reg := c.Registry()
	dir := t.TempDir()

	s, err := reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := s.Leader
	if old == "" {
		t.Fatal("no leader in a running cluster")
	}
	// Pin a unit to the leader so its death also moves a unit.
	idx := 0
	for i, m := range c.Machines {
		if m.ID == old {
			idx = i + 1
		}
	}
	pinned := testcluster.WriteUnit(t, dir, "a.service", testcluster.HelloService+fmt.Sprintf("\n[X-Fleet]\nMachineMetadata=hostname=machine-%d\nMachineMetadata=hostname=machine-9\n", idx))
	testcluster.MustFleetctl(t, ep, "start", pinned)
	if got := testcluster.ScheduledOn(t, reg, "a.service"); got != old {
		t.Fatalf("a.service on %s, want the leader %s", got, old)
	}

	c.Machine(old).Kill()
	testcluster.Eventually(t, 30*time.Second, func() error {
		s, err := reg.Snapshot(context.Background(), 0, 0)
		if err != nil {
			return err
		}
		if s.Leader == "" || s.Leader == old {
			return fmt.Errorf("leader is %q", s.Leader)
		}
		return nil
	})
	// a.service fits only the dead machine or a machine-9: it waits, then
	// lands on a machine-9 when one joins.
	m9 := c.AddMachine("hostname=machine-9")
	testcluster.MustFleetctl(t, ep, "start", "--block-attempts", "15", testcluster.WriteUnit(t, dir, "b.service", testcluster.HelloService))
	testcluster.Eventually(t, 30*time.Second, func() error {
		if got := testcluster.ScheduledOn(t, reg, "a.service"); got != m9.ID {
			return fmt.Errorf("a.service on %q, want the new machine-9 %s", got, m9.ID)
		}
		return nil
	})
}

// TestGracefulStop stops a machine with SIGTERM: it stops its units before it
// leaves, and they start elsewhere.
func TestGracefulStop(t *testing.T) {
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	reg := c.Registry()
	testcluster.MustFleetctl(t, ep, "start", testcluster.WriteUnit(t, t.TempDir(), "myapp.service", testcluster.HelloService))
	first := c.Machine(testcluster.ScheduledOn(t, reg, "myapp.service"))
	first.Stop()
	if err := first.CheckRunning("myapp.service"); err == nil {
		t.Fatal("the unit still runs on the stopped machine")
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		lu := testcluster.Rows(testcluster.MustFleetctl(t, ep, "list-units", "--full"))
		if len(lu) != 1 || strings.HasPrefix(lu[0][1], first.ID) || lu[0][2] != "active" {
			return fmt.Errorf("list-units: %v", lu)
		}
		return c.Machine(strings.Split(lu[0][1], "/")[0]).CheckRunning("myapp.service")
	})
	if got := testcluster.Rows(testcluster.MustFleetctl(t, ep, "list-machines", "--full")); len(got) != 1 || got[0][0] == first.ID {
		t.Fatalf("list-machines after graceful stop: %v", got)
	}
}

// TestMachineOfMovesTogether is fleet's TestScheduleMachineOf: a unit and
// its MachineOf follower share a machine, and move together when it dies.
func TestMachineOfMovesTogether(t *testing.T) {
	c := testcluster.Start(t, 3)
	ep := c.Consul.URL()
	reg := c.Registry()
	dir := t.TempDir()
	testcluster.MustFleetctl(t, ep, "start", testcluster.WriteUnit(t, dir, "other.service", testcluster.HelloService))
	testcluster.MustFleetctl(t, ep, "start", testcluster.WriteUnit(t, dir, "ping.1.service", testcluster.HelloService),
		testcluster.WriteUnit(t, dir, "pong.1.service", testcluster.HelloService+"\n[X-Fleet]\nMachineOf=ping.1.service\n"))
	first := testcluster.ScheduledOn(t, reg, "ping.1.service")
	if got := testcluster.ScheduledOn(t, reg, "pong.1.service"); got != first || first == "" {
		t.Fatalf("ping.1 on %q, pong.1 on %q: want the same machine", first, got)
	}
	c.Machine(first).Kill()
	testcluster.Eventually(t, 30*time.Second, func() error {
		ping, pong := testcluster.ScheduledOn(t, reg, "ping.1.service"), testcluster.ScheduledOn(t, reg, "pong.1.service")
		if ping == "" || ping == first || pong != ping {
			return fmt.Errorf("after the kill ping.1 on %q, pong.1 on %q", ping, pong)
		}
		return nil
	})
}

// TestFrozenMachineComesBack freezes a machine's fleetd (SIGSTOP) past its
// heartbeat: the cluster moves its unit; when it thaws, it stops its stale
// copy at once, and the unit stays where it moved (fleet's partition-heal
// behaviour, without the duplicate lasting).
func TestFrozenMachineComesBack(t *testing.T) {
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	reg := c.Registry()
	testcluster.MustFleetctl(t, ep, "start", testcluster.WriteUnit(t, t.TempDir(), "myapp.service", testcluster.HelloService))
	first := c.Machine(testcluster.ScheduledOn(t, reg, "myapp.service"))
	if err := syscall.Kill(first.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(first.PID(), syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw) // before the cluster stops its machines
	var second *testcluster.Machine
	testcluster.Eventually(t, 30*time.Second, func() error {
		id := testcluster.ScheduledOn(t, reg, "myapp.service")
		if id == "" || id == first.ID {
			return fmt.Errorf("myapp.service still on %q", id)
		}
		second = c.Machine(id)
		return second.CheckRunning("myapp.service")
	})
	// The frozen agent could not stop its copy: both run now.
	if err := first.CheckRunning("myapp.service"); err != nil {
		t.Fatalf("the frozen machine's copy should still run until it thaws: %v", err)
	}
	thaw()
	start := time.Now()
	testcluster.Eventually(t, 15*time.Second, func() error {
		if first.CheckRunning("myapp.service") == nil {
			return fmt.Errorf("the thawed machine still runs its stale copy")
		}
		return nil
	})
	t.Logf("stale copy stopped %s after the machine thawed", time.Since(start).Round(100*time.Millisecond))
	if id := testcluster.ScheduledOn(t, reg, "myapp.service"); id != second.ID {
		t.Fatalf("myapp.service moved again, to %q", id)
	}
	if err := second.CheckRunning("myapp.service"); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 15*time.Second, func() error { // the thawed machine rejoins
		if got := len(testcluster.Rows(testcluster.MustFleetctl(t, ep, "list-machines"))); got != 2 {
			return fmt.Errorf("%d machines listed", got)
		}
		return nil
	})
}

// TestMachineReturnsAfterItsTTL restarts a machine's fleetd long after it
// died (a reboot): the local Consul agent still has the machine's check,
// critical, and the machine must still rejoin. It could not before: a
// session cannot be bound to a critical check, and registering the check
// again kept its status.
func TestMachineReturnsAfterItsTTL(t *testing.T) {
	c := testcluster.Start(t, 0)
	reg := c.Registry()
	c.AddMachineAs("m1", "role=web")
	testcluster.WaitPublished(t, reg, "m1", "role=web")
	c.Machine("m1").Kill()
	testcluster.WaitPublished(t, reg, "m1", "gone") // the TTL ran out: the check is critical
	c.AddMachineAs("m1", "role=db")
	testcluster.WaitPublished(t, reg, "m1", "role=db")
}
