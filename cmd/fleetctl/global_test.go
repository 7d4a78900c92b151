package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// activeOn counts the machines on which list-units shows unit with ACTIVE
// state.
func activeOn(t *testing.T, ep, unit, state string) int {
	t.Helper()
	n := 0
	for _, r := range testcluster.Rows(mustCtl(t, ep, "list-units", "--fields", "unit,active")) {
		if r[0] == unit && r[1] == state {
			n++
		}
	}
	return n
}

// TestGlobalUnits is fleet's TestScheduleGlobalUnits and
// TestScheduleGlobalConflicts: a global unit runs on every machine whose
// metadata fits, conflicts between global units are honoured, stop reaches
// every copy, and a dead machine's copy goes with it.
func TestGlobalUnits(t *testing.T) {
	c := testcluster.Start(t, 3)
	ep := c.Consul.URL()
	dir := t.TempDir()
	global := func(name, extra string) string {
		return testcluster.WriteUnit(t, dir, name, testcluster.HelloService+"\n[X-Fleet]\nGlobal=true\n"+extra)
	}
	if out := mustCtl(t, ep, "start", testcluster.WriteUnit(t, dir, "hello.service", testcluster.HelloService), global("global.service", "")); !strings.Contains(out, "Triggered global unit global.service start") {
		t.Fatalf("start printed %q", out)
	}
	mustCtl(t, ep, "start", global("only2.service", "MachineMetadata=hostname=machine-2\n"))
	mustCtl(t, ep, "start", global("g1.service", "Conflicts=g2.service\n"))
	mustCtl(t, ep, "start", global("g2.service", ""))
	testcluster.Eventually(t, 20*time.Second, func() error {
		for unit, want := range map[string]int{"global.service": 3, "only2.service": 1, "g1.service": 3, "g2.service": 0, "hello.service": 1} {
			if got := activeOn(t, ep, unit, "active"); got != want {
				return fmt.Errorf("%s active on %d machines, want %d", unit, got, want)
			}
		}
		return nil
	})
	if got := testcluster.Rows(mustCtl(t, ep, "list-unit-files", "--fields", "unit,dstate,state,target,global")); !contains(got, []string{"global.service", "launched", "-", "global", "true"}) {
		t.Fatalf("list-unit-files: %v", got)
	}

	if out := mustCtl(t, ep, "stop", "global"); !strings.Contains(out, "Triggered global unit global.service stop") {
		t.Fatalf("stop printed %q", out)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		if got := activeOn(t, ep, "global.service", "inactive"); got != 3 {
			return fmt.Errorf("global.service inactive on %d machines, want 3", got)
		}
		return nil
	})

	c.Machines[0].Kill()
	testcluster.Eventually(t, 30*time.Second, func() error {
		if got := activeOn(t, ep, "g1.service", "active"); got != 2 {
			return fmt.Errorf("g1.service active on %d machines after a kill, want 2", got)
		}
		return nil
	})
}

// TestReplaces is fleet's TestScheduleReplace: a unit that Replaces another
// takes its machine, and the replaced unit moves to another one.
func TestReplaces(t *testing.T) {
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	reg := c.Registry()
	dir := t.TempDir()
	m1, m2 := c.Machines[0].ID, c.Machines[1].ID
	if m2 < m1 {
		m1, m2 = m2, m1
	}
	mustCtl(t, ep, "start", testcluster.WriteUnit(t, dir, "replace.0.service", testcluster.HelloService+"\n[X-Fleet]\nMachineMetadata=hostname=machine-1\nMachineMetadata=hostname=machine-2\n"))
	first := testcluster.ScheduledOn(t, reg, "replace.0.service")
	other := m1
	if first == m1 {
		other = m2
	}
	mustCtl(t, ep, "start", testcluster.WriteUnit(t, dir, "replace.1.service", testcluster.HelloService+fmt.Sprintf("\n[X-Fleet]\nMachineID=%s\n", other)),
		testcluster.WriteUnit(t, dir, "replace.2.service", testcluster.HelloService+"\n[X-Fleet]\nMachineOf=replace.1.service\n"))
	// kick0 goes to the least-loaded machine, replace.0's; replace.0 moves.
	mustCtl(t, ep, "start", testcluster.WriteUnit(t, dir, "replace-kick0.service", testcluster.HelloService+"\n[X-Fleet]\nReplaces=replace.0.service\n"))
	testcluster.Eventually(t, 20*time.Second, func() error {
		kick, moved := testcluster.ScheduledOn(t, reg, "replace-kick0.service"), testcluster.ScheduledOn(t, reg, "replace.0.service")
		if kick != first || moved != other {
			return fmt.Errorf("kick0 on %q (want %q), replace.0 on %q (want %q)", kick, first, moved, other)
		}
		if got := activeOn(t, ep, "replace.0.service", "active"); got != 1 {
			return fmt.Errorf("replace.0 active on %d machines", got)
		}
		return nil
	})
}
