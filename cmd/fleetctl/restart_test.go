package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// restartable writes to its log "started" when it starts and "stopped" when
// it is told to stop, so a test sees every stop and start a restart caused.
const restartable = `[Service]
ExecStart=/bin/sh -c "echo started; trap 'echo stopped; exit 0' INT TERM; while true; do sleep 0.2; done"
`

// lifeOf is what unit wrote to its log on machine m: its starts and stops
// in order, such as "started stopped started" (the shell's own
// "Terminated" for the killed sleep left out).
func lifeOf(m *testcluster.Machine, unit string) string {
	b, _ := os.ReadFile(filepath.Join(m.Dir, "logs", unit+".log"))
	var life []string
	for _, w := range strings.Fields(string(b)) {
		if w == "started" || w == "stopped" {
			life = append(life, w)
		}
	}
	return strings.Join(life, " ")
}

// waitLife waits until unit's log on m reads want.
func waitLife(t *testing.T, m *testcluster.Machine, unit, want string) {
	t.Helper()
	testcluster.Eventually(t, 10*time.Second, func() error {
		if got := lifeOf(m, unit); got != want {
			return fmt.Errorf("%s on %s: log %q, want %q", unit, m.ID, got, want)
		}
		return nil
	})
}

// TestRestart restarts a launched, a loaded, an inactive and a global unit,
// and checks from each unit's own log that a restart stops it and starts it
// again, where it ran.
func TestRestart(t *testing.T) {
	c := testcluster.Start(t, 3)
	ep := c.Consul.URL()
	reg := c.Registry()
	dir := t.TempDir()
	for _, n := range []string{"launched", "loaded", "idle", "a", "b"} {
		testcluster.WriteUnit(t, dir, n+".service", restartable)
	}
	testcluster.WriteUnit(t, dir, "everywhere.service", restartable+"\n[X-Fleet]\nGlobal=true\n")
	path := func(n string) string { return filepath.Join(dir, n+".service") }
	label := func(id string) string { return registry.ShortID(id) + ".../" + c.Machine(id).IP }

	mustCtl(t, ep, "start", path("launched"))
	mustCtl(t, ep, "load", path("loaded"))
	mustCtl(t, ep, "submit", path("idle"))

	t.Run("launched", func(t *testing.T) {
		id := testcluster.ScheduledOn(t, reg, "launched.service")
		m := c.Machine(id)
		waitLife(t, m, "launched.service", "started")
		out := mustCtl(t, ep, "restart", "launched")
		if want := fmt.Sprintf("Unit launched.service loaded on %s\nUnit launched.service launched on %s\n", label(id), label(id)); out != want {
			t.Fatalf("restart printed %q, want %q", out, want)
		}
		waitLife(t, m, "launched.service", "started stopped started")
		if got := testcluster.ScheduledOn(t, reg, "launched.service"); got != id {
			t.Fatalf("restart moved the unit from %s to %s", id, got)
		}
	})

	t.Run("loaded", func(t *testing.T) {
		id := testcluster.ScheduledOn(t, reg, "loaded.service")
		out := mustCtl(t, ep, "restart", "loaded.service")
		if want := fmt.Sprintf("Unit loaded.service launched on %s\n", label(id)); out != want {
			t.Fatalf("restart printed %q, want %q", out, want)
		}
		waitLife(t, c.Machine(id), "loaded.service", "started")
		if got := testcluster.Rows(mustCtl(t, ep, "list-unit-files", "--fields", "unit,dstate,state")); !contains(got, []string{"loaded.service", "launched", "launched"}) {
			t.Fatalf("list-unit-files after restarting a loaded unit: %v", got)
		}
	})

	t.Run("inactive", func(t *testing.T) {
		before := kvDump(t, c)
		// Every unit is checked before any is touched: launched is left alone.
		out, errOut, code := ctl(t, ep, "restart", "launched", "idle")
		if code != 1 || out != "" || errOut != "Error: Unable to restart unit idle.service in state inactive\n" {
			t.Fatalf("restart of an inactive unit: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if after := kvDump(t, c); after != before {
			t.Fatalf("a refused restart changed Consul:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	t.Run("global", func(t *testing.T) {
		if out := mustCtl(t, ep, "start", path("everywhere")); out != "Triggered global unit everywhere.service start\n" {
			t.Fatalf("start printed %q", out)
		}
		for _, m := range c.Machines {
			waitLife(t, m, "everywhere.service", "started")
		}
		out := mustCtl(t, ep, "restart", "everywhere")
		var want strings.Builder
		for _, state := range []string{"loaded", "launched"} {
			for _, id := range []string{c.Machines[0].ID, c.Machines[1].ID, c.Machines[2].ID} {
				fmt.Fprintf(&want, "Unit everywhere.service %s on %s\n", state, label(id))
			}
		}
		if got := sortedLines(out); got != sortedLines(want.String()) {
			t.Fatalf("restart of a global unit printed\n%s\nwant (in any order)\n%s", out, want.String())
		}
		if i := strings.Index(out, "launched on"); i < strings.LastIndex(out, "loaded on") {
			t.Fatalf("a copy was launched before every copy was stopped:\n%s", out)
		}
		for _, m := range c.Machines {
			waitLife(t, m, "everywhere.service", "started stopped started")
		}
		if got := activeOn(t, ep, "everywhere.service", "active"); got != 3 {
			t.Fatalf("everywhere.service active on %d machines after restart, want 3", got)
		}
	})

	t.Run("no-block", func(t *testing.T) {
		id := testcluster.ScheduledOn(t, reg, "launched.service")
		// The stop is still waited for; the start is not.
		out := mustCtl(t, ep, "restart", "--no-block", "launched")
		if want := fmt.Sprintf("Unit launched.service loaded on %s\nTriggered unit launched.service start\n", label(id)); out != want {
			t.Fatalf("restart --no-block printed %q, want %q", out, want)
		}
		waitLife(t, c.Machine(id), "launched.service", "started stopped started stopped started")
	})

	// Written to files, as a script's output is: no progress line, only
	// fleet's lines.
	t.Run("no progress line when not a terminal", func(t *testing.T) {
		stdout, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
		if err != nil {
			t.Fatal(err)
		}
		defer stdout.Close()
		stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		defer stderr.Close()
		if code := run([]string{"--endpoint", ep, "start", path("a"), path("b")}, stdout, stderr); code != 0 {
			t.Fatalf("start: exit %d", code)
		}
		if code := run([]string{"--endpoint", ep, "restart", "a", "b"}, stdout, stderr); code != 0 {
			t.Fatalf("restart: exit %d", code)
		}
		if code := run([]string{"--endpoint", ep, "stop", "a", "b"}, stdout, stderr); code != 0 {
			t.Fatalf("stop: exit %d", code)
		}
		out, _ := os.ReadFile(stdout.Name())
		errOut, _ := os.ReadFile(stderr.Name())
		la, lb := label(testcluster.ScheduledOn(t, reg, "a.service")), label(testcluster.ScheduledOn(t, reg, "b.service"))
		want := sortedLines(fmt.Sprintf("Unit a.service launched on %[1]s\nUnit b.service launched on %[2]s\n"+
			"Unit a.service loaded on %[1]s\nUnit a.service launched on %[1]s\nUnit b.service loaded on %[2]s\nUnit b.service launched on %[2]s\n"+
			"Unit a.service loaded on %[1]s\nUnit b.service loaded on %[2]s\n", la, lb))
		if sortedLines(string(out)) != want {
			t.Errorf("stdout:\n%s\nwant these lines:\n%s", out, want)
		}
		if string(errOut) != "Successfully stopped units [a.service b.service].\n" {
			t.Errorf("stderr %q: want only fleet's line", errOut)
		}
	})
}

// sortedLines is s with its lines sorted, to compare output whose order
// depends on which machine answers first.
func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestVerify checks fleet's answer to the removed verify command.
func TestVerify(t *testing.T) {
	out, errOut, code := ctl(t, "http://127.0.0.1:1", "verify", "web.service")
	if code != 2 || out != "" || errOut != "WARNING: The signed/verified units feature is DEPRECATED and cannot be used.\n" {
		t.Fatalf("verify: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
