package reliability

import (
	"context"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// upgradeFrom is the commit whose fleetd and fleetctl TestRollingUpgrade
// upgrades from: the last one whose fleetd writes no key-schema version.
const upgradeFrom = "e469870ec8ef5eebddc1def5b37c99d3274050da"

// upgradeSettle is how long the cluster gets to settle after each step.
const upgradeSettle = 2 * time.Minute

// TestRollingUpgrade upgrades a running cluster of three systemd machines
// from the fleetd built at upgradeFrom to the tree's, one machine at a
// time, as an operator does. The cluster runs a plain unit, three template
// instances that conflict with each other, a MachineOf pair and a global
// unit, started with the old fleetctl. Each step stops the leading machine's
// fleetd while it is an old one (otherwise any old machine's), starts the
// new fleetd in its place, and waits until the machine publishes the new
// version and the cluster settles. After every step no unit may have
// restarted (its systemd MainPID), moved, been lost from list-unit-files or
// changed its desired state, or run twice; the leader lock must have passed
// on. At the end the old fleetctl must still read the upgraded cluster and
// start and destroy a unit in it, and the current fleetctl read what it
// wrote.
func TestRollingUpgrade(t *testing.T) {
	testcluster.RequireBoxes(t) // before building the old release
	oldFleetd, oldCtl := testcluster.BinariesAt(t, upgradeFrom)
	newFleetd := testcluster.Binary(t, "fleetd")
	oldV, newV := versionOf(t, oldFleetd), versionOf(t, newFleetd)
	if oldV == newV {
		t.Fatalf("the fleetd at %s and the tree's both say version %q: the test cannot tell them apart", upgradeFrom, oldV)
	}
	if v := versionOf(t, oldCtl); v != oldV {
		t.Fatalf("the old fleetctl says version %q, its fleetd %q", v, oldV)
	}
	t.Logf("upgrading from fleetd %s to %s", oldV, newV)

	c := testcluster.StartSystemdTTL(t, 0, 10*time.Second)
	for i := 1; i <= 3; i++ {
		c.AddMachineWith(testcluster.MachineSetup{Metadata: fmt.Sprintf("hostname=machine-%d", i), Fleetd: oldFleetd})
	}
	c.WaitMachines(3)
	ep := c.Endpoint()
	reg := c.Registry()
	submitted := startUpgradeUnits(t, oldCtl, ep)
	versions := map[string]string{}
	for _, m := range c.Machines {
		versions[m.MachineID] = oldV
	}
	u := &upgrade{t: t, c: c, reg: reg, ep: ep, submitted: submitted}
	u.settled("the units started", versions)
	u.record()
	checkListedVersions(t, oldCtl, ep, versions, "the units started")
	leaders := []leaderAt{u.leader("before the upgrade")}

	handoffs := 0
	for step := 1; step <= len(c.Machines); step++ {
		m, leads := nextOld(t, c, reg, oldV)
		if leads {
			handoffs++
		}
		what := fmt.Sprintf("step %d (%s upgraded, leading: %v)", step, label(m), leads)
		t.Logf("%s: stopping fleetd %s", what, oldV)
		m.Upgrade(newFleetd)
		versions[m.MachineID] = newV
		u.settled(what, versions)
		time.Sleep(2 * c.TTL) // a session the new fleetd failed to keep would have lapsed by now
		u.unchanged(what)
		leaders = append(leaders, u.leader("after "+what))
		checkListedVersions(t, oldCtl, ep, versions, what)
	}
	var led []string
	for _, l := range leaders {
		led = append(led, l.String())
	}
	t.Logf("the leader, step by step:\n%s", strings.Join(led, "\n"))
	if handoffs == 0 {
		t.Errorf("no step stopped a leading old fleetd: the leader role never passed from an old fleetd")
	}
	if first, last := leaders[0], leaders[len(leaders)-1]; first.version != oldV || last.version != newV {
		t.Errorf("the leader should run fleetd %s first and %s last; it was %s and %s", oldV, newV, first, last)
	}

	u.oldFleetctlWorks(oldCtl, newV)
	u.unchanged("the old fleetctl's checks")
}

// versionOf is the version the fleetd or fleetctl binary at path says it
// is ("fleetd version V (commit ...)").
func versionOf(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(path, "--version").CombinedOutput()
	f := strings.Fields(string(out))
	if err != nil || len(f) < 3 || f[1] != "version" {
		t.Fatalf("%s --version: %v: %q", path, err, out)
	}
	return f[2]
}

// startUpgradeUnits starts, with the fleetctl at ctl, a unit of every kind:
// app (plain), web@1 to web@3 (instances of a template, each conflicting
// with the others), db and db-backup (MachineOf=db.service) and logger
// (global). It returns every name submitted, the template's included.
func startUpgradeUnits(t *testing.T, ctl, ep string) []string {
	t.Helper()
	dir := t.TempDir()
	unit := func(name, xfleet string) string {
		body := testcluster.HelloService
		if xfleet != "" {
			body += "\n[X-Fleet]\n" + xfleet + "\n"
		}
		return testcluster.WriteUnit(t, dir, name, body)
	}
	testcluster.MustFleetctlAt(t, ctl, ep, "submit", unit("web@.service", "Conflicts=web@*.service"))
	testcluster.MustFleetctlAt(t, ctl, ep, "start", unit("app.service", ""), unit("db.service", ""),
		unit("db-backup.service", "MachineOf=db.service"), unit("logger.service", "Global=true"),
		"web@1", "web@2", "web@3")
	return []string{"app.service", "web@.service", "web@1.service", "web@2.service", "web@3.service",
		"db.service", "db-backup.service", "logger.service"}
}

// upgrade is a rolling upgrade under way and what it must not change.
type upgrade struct {
	t         *testing.T
	c         *testcluster.SystemdCluster
	reg       *registry.Registry
	ep        string
	submitted []string
	pids      map[string]where     // each non-global unit's machine and MainPID
	global    map[onMachine]string // each global unit's MainPID on each machine
	files     map[string]string    // list-unit-files: unit -> "dstate target"
	sessions  map[string]string    // machine key -> the session holding it
}

// onMachine is a unit on one machine.
type onMachine struct{ unit, machine string }

// label names a machine in messages: its box and short ID.
func label(m *testcluster.SystemdMachine) string {
	return fmt.Sprintf("%s (%s)", m.Name, m.MachineID[:8])
}

// settled waits until every machine is published with the version versions
// gives it (machine ID -> version), a machine leads, every launched unit is
// reported active where it runs, and fleet's invariants hold.
func (u *upgrade) settled(what string, versions map[string]string) {
	u.t.Helper()
	var last error
	deadline := time.Now().Add(upgradeSettle)
	for {
		if last = u.settledNow(versions); last == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, m := range u.c.Machines {
		u.t.Logf("fleetd on %s:\n%s", label(m), m.Log())
	}
	u.t.Fatalf("after %s the cluster did not settle within %s: %v", what, upgradeSettle, last)
}

func (u *upgrade) settledNow(versions map[string]string) error {
	s, err := u.reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		return err
	}
	if len(s.Machines) != len(versions) {
		return fmt.Errorf("%d machines published, want %d", len(s.Machines), len(versions))
	}
	for _, m := range u.c.Machines {
		switch p := s.Machines[m.MachineID]; {
		case p == nil:
			return fmt.Errorf("%s is not published", label(m))
		case p.Version != versions[m.MachineID]:
			return fmt.Errorf("%s publishes fleetd %q, want %q", label(m), p.Version, versions[m.MachineID])
		}
	}
	if s.Machines[s.Leader] == nil {
		return fmt.Errorf("no machine leads (leader %q)", s.Leader)
	}
	for _, name := range s.JobNames() {
		j := s.Jobs[name]
		if j.Desired != registry.Launched {
			continue
		}
		on := []string{j.Target}
		if j.Global() {
			on = slices.Collect(maps.Keys(s.Machines))
		}
		for _, id := range on {
			if st := s.States[name][id]; st == nil || st.Active != "active" {
				return fmt.Errorf("%s on %q is not reported active (%+v)", name, id, st)
			}
		}
	}
	return checkInvariants(u.c, u.reg, u.submitted, nil)
}

// record notes where every unit runs, with which MainPID, what
// list-unit-files says of it, and each machine's session: what no step may
// change.
func (u *upgrade) record() {
	u.t.Helper()
	u.pids, u.global, u.files, u.sessions = u.now()
	for name, w := range u.pids {
		if w.pid == "" || w.pid == "0" {
			u.t.Fatalf("%s runs no process on %s (MainPID %q)", name, w.machine, w.pid)
		}
	}
	for k, pid := range u.global {
		if pid == "" || pid == "0" {
			u.t.Fatalf("global %s runs no process on %s (MainPID %q)", k.unit, label(u.c.Machine(k.machine)), pid)
		}
	}
	for _, name := range u.submitted {
		if u.files[name] == "" {
			u.t.Fatalf("%s is missing from list-unit-files: %v", name, u.files)
		}
	}
	u.t.Logf("units: %v\nglobal: %v\nlist-unit-files: %v", u.pids, u.global, u.files)
}

func (u *upgrade) now() (map[string]where, map[onMachine]string, map[string]string, map[string]string) {
	u.t.Helper()
	s, err := u.reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		u.t.Fatal(err)
	}
	global := map[onMachine]string{}
	for _, name := range s.JobNames() {
		if j := s.Jobs[name]; j.Global() && j.Desired == registry.Launched {
			for _, m := range u.c.Machines {
				global[onMachine{name, m.MachineID}] = m.MainPID(name)
			}
		}
	}
	files := unitFiles(u.t, testcluster.Binary(u.t, "fleetctl"), u.ep)
	return pids(u.t, u.c, u.reg), global, files, machineSessions(u.t, u.c)
}

// unchanged fails the test for every unit that restarted, moved, was lost
// or changed its desired state since record (or the last call), and for
// every machine whose session changed. What it finds is the next call's
// baseline, so a change is reported once, after the step that made it.
func (u *upgrade) unchanged(what string) {
	u.t.Helper()
	pids, global, files, sessions := u.now()
	defer func() { u.pids, u.global, u.files, u.sessions = pids, global, files, sessions }()
	name := func(id string) string { return label(u.c.Machine(id)) }
	for unit, w := range u.pids {
		switch now, ok := pids[unit]; {
		case !ok:
			u.t.Errorf("after %s %s is scheduled nowhere; it ran on %s", what, unit, name(w.machine))
		case now.machine != w.machine:
			u.t.Errorf("after %s %s moved from %s to %s", what, unit, name(w.machine), name(now.machine))
		case now.pid != w.pid:
			u.t.Errorf("after %s %s restarted on %s: MainPID %s, was %s", what, unit, name(w.machine), now.pid, w.pid)
		}
	}
	for k, pid := range u.global {
		if global[k] != pid {
			u.t.Errorf("after %s global %s restarted on %s: MainPID %q, was %s", what, k.unit, name(k.machine), global[k], pid)
		}
	}
	for unit, f := range u.files {
		if files[unit] != f {
			u.t.Errorf("after %s list-unit-files says %s is %q, was %q (dstate target)", what, unit, files[unit], f)
		}
	}
	for unit, f := range files {
		if u.files[unit] == "" {
			u.t.Errorf("after %s list-unit-files shows %s (%s), which was not there", what, unit, f)
		}
	}
	for key, s := range u.sessions {
		if sessions[key] != s {
			u.t.Errorf("after %s %s is held by session %q, was %q: the machine's session lapsed", what, key, sessions[key], s)
		}
	}
	if err := checkInvariants(u.c, u.reg, u.submitted, nil); err != nil {
		u.t.Errorf("after %s: %v", what, err)
	}
}

// leaderAt is the machine that held the leader key at some point, and the
// fleetd version it published.
type leaderAt struct{ when, machine, version string }

func (l leaderAt) String() string {
	return fmt.Sprintf("%s: %s leads, fleetd %s", l.when, l.machine, l.version)
}

// leader is the machine that holds the leader key now.
func (u *upgrade) leader(when string) leaderAt {
	u.t.Helper()
	s, err := u.reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		u.t.Fatal(err)
	}
	l := s.Machines[s.Leader]
	if l == nil {
		u.t.Fatalf("%s no published machine leads (leader key: %q)", when, s.Leader)
	}
	return leaderAt{when, label(u.c.Machine(l.ID)), l.Version}
}

// checkListedVersions checks that list-machines, run with the fleetctl at
// ctl, lists every machine with the version versions gives it.
func checkListedVersions(t *testing.T, ctl, ep string, versions map[string]string, what string) {
	t.Helper()
	rows := testcluster.Rows(testcluster.MustFleetctlAt(t, ctl, ep, "list-machines", "--full", "--fields", "machine,version"))
	listed := map[string]string{}
	for _, r := range rows {
		listed[r[0]] = r[1]
	}
	if !maps.Equal(listed, versions) {
		t.Errorf("after %s %s list-machines lists (machine: version) %v, want %v", what, ctl, listed, versions)
	}
}

// oldFleetctlWorks checks that the fleetctl at ctl, an old one, reads the
// machines and unit files of the upgraded cluster (every machine at fleetd
// newV) as the current one does, and starts and destroys a unit in it,
// which the current fleetctl sees. The units' states it does not read:
// the cluster is in key schema version 3, where each machine reports its
// states in its machine key (docs/keys.md), so its list-units lists none,
// and it starts the unit without waiting for a state it cannot see.
func (u *upgrade) oldFleetctlWorks(ctl, newV string) {
	u.t.Helper()
	t := u.t
	versions := map[string]string{}
	for _, m := range u.c.Machines {
		versions[m.MachineID] = newV
	}
	checkListedVersions(t, ctl, u.ep, versions, "the upgrade")
	if files := unitFiles(t, ctl, u.ep); !maps.Equal(files, u.files) {
		t.Errorf("the old fleetctl's list-unit-files (unit: dstate target) is %v; the current one's was %v", files, u.files)
	}
	want := map[onMachine]string{}
	for unit, w := range u.pids {
		want[onMachine{unit, w.machine}] = "active"
	}
	for k := range u.global {
		want[k] = "active"
	}
	if got := listedUnits(t, testcluster.Binary(t, "fleetctl"), u.ep); !maps.Equal(got, want) {
		t.Errorf("the current fleetctl's list-units (unit, machine: active) is %v, want %v", got, want)
	}
	testcluster.Eventually(t, upgradeSettle, func() error {
		if got := listedUnits(t, ctl, u.ep); len(got) != 0 {
			return fmt.Errorf("the old fleetctl's list-units lists %v: the machines did not move their states to their machine keys", got)
		}
		return nil
	})

	// A unit the old fleetctl writes.
	canary := testcluster.WriteUnit(t, t.TempDir(), "canary.service", testcluster.HelloService)
	testcluster.MustFleetctlAt(t, ctl, u.ep, "start", "--no-block", canary)
	var on *testcluster.SystemdMachine
	testcluster.Eventually(t, upgradeSettle, func() error {
		id := testcluster.ScheduledOn(t, u.reg, "canary.service")
		if id == "" {
			return fmt.Errorf("canary.service, started with the old fleetctl, is not placed")
		}
		on = u.c.Machine(id)
		if got := on.Output("systemctl", "is-active", "canary.service"); got != "active" {
			return fmt.Errorf("canary.service, started with the old fleetctl, is %q on %s", got, label(on))
		}
		if got := listedUnits(t, testcluster.Binary(t, "fleetctl"), u.ep)[onMachine{"canary.service", id}]; got != "active" {
			return fmt.Errorf("the current fleetctl's list-units says canary.service is %q on %s", got, label(on))
		}
		return nil
	})
	rows := testcluster.Rows(testcluster.MustFleetctl(t, u.ep, "list-unit-files", "--full", "--fields", "unit,dstate,target"))
	if !slices.ContainsFunc(rows, func(r []string) bool {
		return slices.Equal(r, []string{"canary.service", "launched", on.MachineID + "/" + on.IP})
	}) {
		t.Errorf("the current fleetctl's list-unit-files does not show canary.service launched on %s: %v", label(on), rows)
	}
	if cur, old := testcluster.MustFleetctl(t, u.ep, "cat", "canary.service"), testcluster.MustFleetctlAt(t, ctl, u.ep, "cat", "canary.service"); cur != old || !strings.Contains(cur, "ExecStart=") {
		t.Errorf("fleetctl cat canary.service: the current fleetctl prints %q, the old one %q", cur, old)
	}

	testcluster.MustFleetctlAt(t, ctl, u.ep, "destroy", "canary.service")
	testcluster.Eventually(t, upgradeSettle, func() error {
		for _, r := range testcluster.Rows(testcluster.MustFleetctl(t, u.ep, "list-unit-files")) {
			if r[0] == "canary.service" {
				return fmt.Errorf("canary.service, destroyed with the old fleetctl, is still in list-unit-files: %v", r)
			}
		}
		if got := on.Output("systemctl", "is-active", "canary.service"); got == "active" {
			return fmt.Errorf("canary.service, destroyed with the old fleetctl, still runs on %s", label(on))
		}
		return nil
	})
}

// listedUnits is what list-units, run with the fleetctl at ctl, says each
// unit's active state is on each machine.
func listedUnits(t *testing.T, ctl, ep string) map[onMachine]string {
	t.Helper()
	got := map[onMachine]string{}
	for _, r := range testcluster.Rows(testcluster.MustFleetctlAt(t, ctl, ep, "list-units", "--full", "--fields", "unit,machine,active")) {
		id, _, _ := strings.Cut(r[1], "/")
		got[onMachine{r[0], id}] = r[2]
	}
	return got
}
