package reliability

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// fourKeyCommit is the last commit whose fleetd keeps a unit as four keys
// under jobs/<name>/: key schema version 1.
const fourKeyCommit = "2893bf9eabb16f57a9c5591be84ddf7c3f0f7e60"

// TestRollingUpgradeAcrossSchema upgrades three systemd machines, one at a
// time, from a fleetd of key schema version 1 to the tree's, which moves
// the units to version 2. While any machine runs the old fleetd the new
// ones run their units but do not compete for the leader lock, and the
// keys stay in version 1; once the last machine is upgraded a new fleetd
// leads and migrates. Throughout, no unit restarts (its systemd MainPID),
// moves or is lost, and afterwards the current fleetctl lists every unit
// as the old one did.
func TestRollingUpgradeAcrossSchema(t *testing.T) {
	testcluster.RequireBoxes(t)
	oldFleetd, oldCtl := testcluster.BinariesAt(t, fourKeyCommit)
	newFleetd := testcluster.Binary(t, "fleetd")
	oldV, newV := versionOf(t, oldFleetd), versionOf(t, newFleetd)

	c := testcluster.StartSystemdTTL(t, 0, 10*time.Second)
	for i := 1; i <= 3; i++ {
		c.AddMachineWith(testcluster.MachineSetup{Metadata: fmt.Sprintf("hostname=machine-%d", i),
			Fleetd: oldFleetd, Without: []string{"--pprof"}}) // a flag the old fleetd lacks
	}
	c.WaitMachines(3)
	ep, reg := c.Endpoint(), c.Registry()
	startUpgradeUnits(t, oldCtl, ep)
	versions := map[string]string{}
	for _, m := range c.Machines {
		versions[m.MachineID] = oldV
	}
	running := scheduledRunning(t, c, reg, versions, "the units started")
	files := unitFiles(t, oldCtl, ep)
	if len(files) != 8 {
		t.Fatalf("the old fleetctl lists %d units, want 8: %v", len(files), files)
	}

	for step := 1; step <= len(c.Machines); step++ {
		m, _ := nextOld(t, c, reg, oldV)
		what := fmt.Sprintf("step %d (%s upgraded)", step, label(m))
		m.Upgrade(newFleetd)
		versions[m.MachineID] = newV
		now := scheduledRunning(t, c, reg, versions, what)
		time.Sleep(2 * c.TTL) // a unit the new fleetd restarted or a session it lost shows by now
		sameRunning(t, c, what, running, scheduledRunning(t, c, reg, versions, what))
		sameRunning(t, c, what, running, now)
		if step == len(c.Machines) {
			break
		}
		s, err := reg.Snapshot(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if s.Schema.Version != 1 || s.Machines[s.Leader] == nil || s.Machines[s.Leader].Version != oldV {
			t.Errorf("after %s, with machines on fleetd %s: schema %+v, leader %s; want version 1 led by an old fleetd", what, oldV, s.Schema, s.Leader)
		}
		if !strings.Contains(m.Log(), "not competing for the leader lock") {
			t.Errorf("after %s the new fleetd did not say why it does not lead:\n%s", what, m.Log())
		}
	}

	testcluster.Eventually(t, upgradeSettle, func() error {
		s, err := reg.Snapshot(context.Background(), 0, 0)
		switch {
		case err != nil:
			return err
		case !s.Schema.Stamped || s.Schema.Version != registry.SchemaVersion:
			return fmt.Errorf("the keys are not migrated: schema %+v", s.Schema)
		case s.Machines[s.Leader] == nil || s.Machines[s.Leader].Version != newV:
			return fmt.Errorf("leader %q does not run fleetd %s", s.Leader, newV)
		}
		return nil
	})
	if got := unitFiles(t, testcluster.Binary(t, "fleetctl"), ep); !maps.Equal(got, files) {
		t.Errorf("after the migration list-unit-files (unit: dstate target) is %v; the old fleetctl listed %v", got, files)
	}
	keys, _, err := reg.Client().KV().Keys(registry.DefaultPrefix+"jobs/", "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			t.Errorf("a unit is still in the four-key layout: %s", k)
		}
	}
	time.Sleep(2 * c.TTL)
	sameRunning(t, c, "the migration", running, scheduledRunning(t, c, reg, versions, "the migration"))
}

// scheduledRunning waits until every machine publishes the version
// versions gives it and each schedule entry to launch runs, reported
// active, and returns each entry's MainPID. It reads only the keys both
// schema versions share (machines/, schedule/, states/).
func scheduledRunning(t *testing.T, c *testcluster.SystemdCluster, reg *registry.Registry, versions map[string]string, what string) map[onMachine]string {
	t.Helper()
	var out map[onMachine]string
	testcluster.Eventually(t, upgradeSettle, func() error {
		s, err := reg.Snapshot(context.Background(), 0, 0)
		if err != nil {
			return err
		}
		for id, v := range versions {
			if m := s.Machines[id]; m == nil || m.Version != v {
				return fmt.Errorf("after %s %s does not publish fleetd %s: %+v", what, label(c.Machine(id)), v, m)
			}
		}
		out = map[onMachine]string{}
		for id, entries := range s.Schedule {
			for name, e := range entries {
				if e.Desired != registry.Launched {
					continue
				}
				if st := s.States[name][id]; st == nil || st.Active != "active" {
					return fmt.Errorf("after %s %s is not reported active on %s: %+v", what, name, label(c.Machine(id)), st)
				}
				out[onMachine{name, id}] = c.Machine(id).MainPID(name)
			}
		}
		return nil
	})
	return out
}

// sameRunning fails the test for each unit that no longer runs where it
// ran, with the MainPID it had, or runs where it did not.
func sameRunning(t *testing.T, c *testcluster.SystemdCluster, what string, was, now map[onMachine]string) {
	t.Helper()
	for k, pid := range was {
		if now[k] != pid {
			t.Errorf("after %s %s on %s: MainPID %q, was %s (restarted, moved or lost)", what, k.unit, label(c.Machine(k.machine)), now[k], pid)
		}
	}
	for k, pid := range now {
		if _, ok := was[k]; !ok {
			t.Errorf("after %s %s runs on %s (MainPID %s), where it did not", what, k.unit, label(c.Machine(k.machine)), pid)
		}
	}
}

// unitFiles is list-unit-files, run with the fleetctl at ctl: each unit's
// desired state and target.
func unitFiles(t *testing.T, ctl, ep string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, r := range testcluster.Rows(testcluster.MustFleetctlAt(t, ctl, ep, "list-unit-files", "--full", "--fields", "unit,dstate,target")) {
		files[r[0]] = strings.Join(r[1:], " ")
	}
	return files
}

// nextOld is the machine to upgrade next: the leader when it runs fleetd
// oldV, else the first machine that does; leads says which it is.
func nextOld(t *testing.T, c *testcluster.SystemdCluster, reg *registry.Registry, oldV string) (m *testcluster.SystemdMachine, leads bool) {
	t.Helper()
	s, err := reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l := s.Machines[s.Leader]; l != nil && l.Version == oldV {
		return c.Machine(s.Leader), true
	}
	for _, m := range c.Machines {
		if p := s.Machines[m.MachineID]; p != nil && p.Version == oldV {
			return m, false
		}
	}
	t.Fatalf("no machine runs fleetd %s any more", oldV)
	return nil, false
}
