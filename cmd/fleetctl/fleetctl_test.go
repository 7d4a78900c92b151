package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/version"
	"github.com/wasmfleet/fleet/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// ctl runs fleetctl in-process against endpoint.
func ctl(t *testing.T, endpoint string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"--endpoint", endpoint}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

func mustCtl(t *testing.T, endpoint string, args ...string) string {
	t.Helper()
	out, errOut, code := ctl(t, endpoint, args...)
	if code != 0 {
		t.Fatalf("fleetctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// TestGuide follows the start of the fleet guide: start a unit, see it
// running, kill its machine, see it move; then stop, unload and destroy it.
func TestGuide(t *testing.T) {
	c := testcluster.Start(t, 3)
	ep := c.Consul.URL()
	reg := c.Registry()
	dir := t.TempDir()
	path := testcluster.WriteUnit(t, dir, "myapp.service", testcluster.HelloService)

	out := mustCtl(t, ep, "start", path)
	if !strings.HasPrefix(out, "Unit myapp.service launched on ") {
		t.Fatalf("start printed %q", out)
	}
	first := testcluster.ScheduledOn(t, reg, "myapp.service")
	if first == "" {
		t.Fatal("start returned but the unit is not scheduled")
	}
	lu := testcluster.Rows(mustCtl(t, ep, "list-units"))
	if len(lu) != 1 || lu[0][0] != "myapp.service" || lu[0][1] != registry.ShortID(first)+"..."+"/"+c.Machine(first).IP ||
		lu[0][2] != "active" || lu[0][3] != "running" {
		t.Fatalf("list-units rows = %v", lu)
	}
	if err := c.Machine(first).CheckRunning("myapp.service"); err != nil {
		t.Fatal(err)
	}

	// The machine dies: the unit runs elsewhere, the machine leaves the list.
	c.Machine(first).Kill()
	var second string
	testcluster.Eventually(t, 30*time.Second, func() error {
		lu := testcluster.Rows(mustCtl(t, ep, "list-units", "--full"))
		if len(lu) != 1 || lu[0][1] == "" || strings.HasPrefix(lu[0][1], first) || lu[0][2] != "active" {
			return fmt.Errorf("list-units after the kill: %v", lu)
		}
		second = strings.Split(lu[0][1], "/")[0]
		return nil
	})
	if err := c.Machine(second).CheckRunning("myapp.service"); err != nil {
		t.Fatal(err)
	}
	lm := mustCtl(t, ep, "list-machines", "--full")
	if strings.Contains(lm, first) || len(testcluster.Rows(lm)) != 2 {
		t.Fatalf("list-machines still lists the dead machine or lost another:\n%s", lm)
	}

	// stop: loaded on the same machine, no longer running.
	out = mustCtl(t, ep, "stop", "myapp")
	if !strings.HasPrefix(out, "Unit myapp.service loaded on "+registry.ShortID(second)) {
		t.Fatalf("stop printed %q", out)
	}
	if got := testcluster.Rows(mustCtl(t, ep, "list-unit-files")); len(got) != 1 || got[0][2] != "loaded" || got[0][3] != "loaded" ||
		!strings.HasPrefix(got[0][4], registry.ShortID(second)) {
		t.Fatalf("list-unit-files after stop: %v", got)
	}
	if got := testcluster.Rows(mustCtl(t, ep, "list-units")); len(got) != 1 || got[0][2] != "inactive" || got[0][3] != "dead" {
		t.Fatalf("list-units after stop: %v", got)
	}
	if _, _, code := ctl(t, ep, "stop", "myapp"); code != 0 {
		t.Fatal("stop of a loaded unit must succeed and do nothing")
	}

	// unload: inactive, on no machine.
	if out := mustCtl(t, ep, "unload", "myapp.service"); out != "Unit myapp.service inactive\n" {
		t.Fatalf("unload printed %q", out)
	}
	if got := testcluster.Rows(mustCtl(t, ep, "list-unit-files")); len(got) != 1 || got[0][2] != "inactive" || got[0][3] != "inactive" || got[0][4] != "-" {
		t.Fatalf("list-unit-files after unload: %v", got)
	}
	if got := testcluster.Rows(mustCtl(t, ep, "list-units")); len(got) != 0 {
		t.Fatalf("list-units after unload: %v", got)
	}
	if _, errOut, code := ctl(t, ep, "stop", "myapp"); code != 1 || !strings.Contains(errOut, "Unable to stop unit myapp.service in state inactive") {
		t.Fatalf("stop of an inactive unit: exit %d, %q", code, errOut)
	}

	// start again from the registry (no file needed), then destroy.
	if out := mustCtl(t, ep, "start", "myapp"); !strings.Contains(out, "launched") {
		t.Fatalf("restart printed %q", out)
	}
	if out := mustCtl(t, ep, "destroy", "myapp"); out != "Destroyed myapp.service\n" {
		t.Fatalf("destroy printed %q", out)
	}
	if got := testcluster.Rows(mustCtl(t, ep, "list-unit-files")); len(got) != 0 {
		t.Fatalf("list-unit-files after destroy: %v", got)
	}
	if got := testcluster.Rows(mustCtl(t, ep, "list-units")); len(got) != 0 {
		t.Fatalf("list-units after destroy: %v", got)
	}
	if out := mustCtl(t, ep, "destroy", "myapp"); out != "Units not found in registry\n" {
		t.Fatalf("second destroy printed %q", out)
	}
}

// TestPlacement checks fleet's rules end to end: least loaded first, and
// MachineMetadata; an unplaceable unit says why instead of hanging silently.
func TestPlacement(t *testing.T) {
	c := testcluster.Start(t, 3)
	ep := c.Consul.URL()
	dir := t.TempDir()
	for i := 1; i <= 3; i++ {
		testcluster.WriteUnit(t, dir, fmt.Sprintf("spread%d.service", i), strings.Replace(testcluster.HelloService, "MyApp", fmt.Sprint("spread ", i), 1))
	}
	mustCtl(t, ep, "start", filepath.Join(dir, "spread1.service"), filepath.Join(dir, "spread2.service"), filepath.Join(dir, "spread3.service"))
	seen := map[string]bool{}
	for _, r := range testcluster.Rows(mustCtl(t, ep, "list-units")) {
		seen[r[1]] = true
	}
	if len(seen) != 3 {
		t.Fatalf("3 units on an empty 3-machine cluster must land on 3 machines, got %v", seen)
	}

	// The guide's apache@ template: Conflicts keeps instances apart, so a
	// fourth instance on three machines waits and says why.
	testcluster.WriteUnit(t, dir, "apache@.service", testcluster.HelloService+"\n[X-Fleet]\nConflicts=apache@*.service\n")
	mustCtl(t, ep, "start", filepath.Join(dir, "apache@1"), filepath.Join(dir, "apache@2"), filepath.Join(dir, "apache@3"))
	apaches := map[string]bool{}
	for _, r := range testcluster.Rows(mustCtl(t, ep, "list-units")) {
		if strings.HasPrefix(r[0], "apache@") {
			apaches[r[1]] = true
		}
	}
	if len(apaches) != 3 {
		t.Fatalf("three conflicting instances share machines: %v", apaches)
	}
	if _, errOut, code := ctl(t, ep, "start", "--block-attempts", "2", filepath.Join(dir, "apache@4")); code == 0 || !strings.Contains(errOut, "conflicts with apache@") {
		t.Fatalf("a fourth conflicting instance: exit %d %q", code, errOut)
	}
	mustCtl(t, ep, "destroy", "apache@1", "apache@2", "apache@3", "apache@4")

	pinned := testcluster.WriteUnit(t, dir, "pinned.service", testcluster.HelloService+"\n[X-Fleet]\nMachineMetadata=hostname=machine-2\n")
	mustCtl(t, ep, "start", pinned)
	want := c.Machines[1]
	if got := testcluster.Rows(mustCtl(t, ep, "list-units", "--full", "--fields", "unit,machine")); !contains(got, []string{"pinned.service", want.ID + "/" + want.IP}) {
		t.Fatalf("pinned.service not on machine-2 (%s): %v", want.ID, got)
	}
	// The leader logs the placement with the unit's machine as its target;
	// machine= is the logging fleetd's own, as on its every line.
	if line := placementLog(t, c, "pinned.service"); !strings.Contains(line, " target="+want.ID+" ") || strings.Count(line, " machine=") != 1 {
		t.Fatalf("the leader's log of pinned.service's placement on %s: %s", want.ID, line)
	}

	nowhere := testcluster.WriteUnit(t, dir, "nowhere.service", testcluster.HelloService+"\n[X-Fleet]\nMachineMetadata=hostname=machine-9\n")
	_, errOut, code := ctl(t, ep, "start", "--block-attempts", "2", nowhere)
	if code == 0 || !strings.Contains(errOut, "cannot be placed yet") || !strings.Contains(errOut, "hostname=machine-9") {
		t.Fatalf("unplaceable start: exit %d, stderr %q", code, errOut)
	}
	if got := testcluster.Rows(mustCtl(t, ep, "list-unit-files", "--fields", "unit,dstate,state")); !contains(got, []string{"nowhere.service", "launched", "inactive"}) {
		t.Fatalf("unplaceable unit should stay desired launched and inactive: %v", got)
	}
	// list-unit-files says why: the reason field, "-" for a placed unit;
	// the default columns stay fleet's (TARGET "-") and stderr points to it.
	reasons := map[string]string{}
	for _, r := range testcluster.Rows(mustCtl(t, ep, "list-unit-files", "--fields", "unit,reason")) {
		reasons[r[0]] = strings.Join(r[1:], " ")
	}
	if !strings.Contains(reasons["nowhere.service"], "metadata does not match MachineMetadata hostname=machine-9") || reasons["pinned.service"] != "-" {
		t.Fatalf("list-unit-files reasons: %q", reasons)
	}
	out, errOut, code := ctl(t, ep, "list-unit-files")
	var row []string // UNIT HASH DSTATE STATE TARGET
	for _, r := range testcluster.Rows(out) {
		if r[0] == "nowhere.service" {
			row = r
		}
	}
	if code != 0 || len(row) != 5 || strings.Join(row[2:], " ") != "launched inactive -" ||
		!strings.Contains(errOut, "1 unit cannot be placed; fleetctl list-unit-files --fields unit,dstate,reason says why") {
		t.Fatalf("list-unit-files with an unplaced unit: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	// A machine that fits appears: the waiting unit is placed on it.
	m := c.AddMachine("hostname=machine-9")
	testcluster.Eventually(t, 30*time.Second, func() error {
		if got := testcluster.Rows(mustCtl(t, ep, "list-units", "--full", "--fields", "unit,machine,active")); !contains(got, []string{"nowhere.service", m.ID + "/" + m.IP, "active"}) {
			return fmt.Errorf("nowhere.service not running on the new machine: %v", got)
		}
		return nil
	})
	testcluster.Eventually(t, 10*time.Second, func() error {
		if got := testcluster.Rows(mustCtl(t, ep, "list-unit-files", "--fields", "unit,reason")); !contains(got, []string{"nowhere.service", "-"}) {
			return fmt.Errorf("a placed unit still has a reason: %v", got)
		}
		return nil
	})
}

func contains(rows [][]string, want []string) bool {
	for _, r := range rows {
		if strings.Join(r, " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}

// kvDump is every key in Consul with its value and ModifyIndex, but the
// change log's: the leader removes its entries once it has read them,
// whenever that is, and a write that changes nothing else writes none.
func kvDump(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	client, err := c.Consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	pairs, _, err := client.KV().List("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range pairs {
		if !strings.HasPrefix(p.Key, "fleet/changes/") {
			fmt.Fprintf(&b, "%s=%s@%d\n", p.Key, p.Value, p.ModifyIndex)
		}
	}
	return b.String()
}

// TestBadInput checks each bad input gives a one-line error, a non-zero
// exit, and leaves Consul exactly as it was.
func TestBadInput(t *testing.T) {
	c := testcluster.Start(t, 1)
	ep := c.Consul.URL()
	dir := t.TempDir()
	mustCtl(t, ep, "submit", testcluster.WriteUnit(t, dir, "ok.service", testcluster.HelloService))
	// The cluster's own first writes (the leader keeps each machine's
	// schedule key) are done before Consul is compared.
	testcluster.Eventually(t, 30*time.Second, func() error {
		if dump := kvDump(t, c); !strings.Contains(dump, "/schedule/"+c.Machines[0].ID+"/=") {
			return fmt.Errorf("the leader has not kept the machine's schedule yet:\n%s", dump)
		}
		return nil
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unparsable unit", []string{"start", testcluster.WriteUnit(t, dir, "broken.service", "[Service\nExecStart=/bin/true\n")}, "does not parse"},
		{"empty unit", []string{"submit", testcluster.WriteUnit(t, dir, "empty.service", "# nothing\n")}, "no options"},
		{"invalid name", []string{"start", "bad name"}, "invalid unit name"},
		{"invalid type", []string{"submit", "web@1.mount"}, "invalid unit name"},
		{"unknown unit to start", []string{"start", "nope"}, "nope.service not found"},
		{"unknown unit to stop", []string{"stop", "nope"}, "nope.service does not exist"},
		{"unknown unit to unload", []string{"unload", "ok", "nope"}, "nope.service does not exist"},
		{"unknown unit to cat", []string{"cat", "nope"}, "Unit nope.service not found"},
		{"a bad unit among good ones", []string{"start", "ok", testcluster.WriteUnit(t, dir, "bad2.service", "[Service\n")}, "does not parse"},
		{"template", []string{"start", testcluster.WriteUnit(t, dir, "web@.service", testcluster.HelloService)}, "cannot activate template"},
		{"forbidden X-Fleet combination", []string{"start", "ok", testcluster.WriteUnit(t, dir, "pinned.service", testcluster.HelloService+"[X-Fleet]\nMachineID=abc\nConflicts=x*\n")},
			"MachineID cannot be used with Conflicts"},
		{"unresolvable requirements", []string{"submit", testcluster.WriteUnit(t, dir, "side.service", testcluster.HelloService+"[X-Fleet]\nMachineOf=web.service\nConflicts=web*\n")},
			"unresolvable requirements"},
		{"unknown X-Fleet option", []string{"start", testcluster.WriteUnit(t, dir, "typo.service", testcluster.HelloService+"[X-Fleet]\nMachineMetdata=disk=ssd\n")},
			`unknown [X-Fleet] option "MachineMetdata"; fleet knows MachineID`},
		{"bad field", []string{"list-units", "--fields", "unit,colour"}, "invalid field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := kvDump(t, c)
			out, errOut, code := ctl(t, ep, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, stdout %q", out)
			}
			if lines := strings.Count(strings.TrimSpace(errOut), "\n") + 1; lines != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q: want one line containing %q", errOut, tc.want)
			}
			if after := kvDump(t, c); after != before {
				t.Errorf("Consul changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	t.Run("unreachable Consul", func(t *testing.T) {
		ports, err := testcluster.FreePorts("127.0.0.1", 1)
		if err != nil {
			t.Fatal(err)
		}
		_, errOut, code := ctl(t, fmt.Sprintf("http://127.0.0.1:%d", ports[0]), "start", filepath.Join(dir, "ok.service"))
		if code == 0 || !strings.Contains(errOut, "cannot reach Consul") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
}

// TestVersion: fleetctl version and fleetctl --version print one line, the
// version with its commit and Go release.
func TestVersion(t *testing.T) {
	want := "fleetctl version " + version.String() + "\n"
	out, _, code := ctl(t, "http://127.0.0.1:1", "version")
	if code != 0 || out != want {
		t.Fatalf("version: exit %d %q, want %q", code, out, want)
	}
	var b bytes.Buffer
	if code := run([]string{"--version"}, &b, &b); code != 0 || b.String() != want {
		t.Fatalf("--version: exit %d %q, want %q", code, b.String(), want)
	}
}

// TestHelpListsFleetCommands: every command of fleet's fleetctl is where an
// operator looks for it, and each has its own help.
func TestHelpListsFleetCommands(t *testing.T) {
	var b bytes.Buffer
	if code := run([]string{"help"}, &b, &b); code != 0 {
		t.Fatalf("help: exit %d\n%s", code, b.String())
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(line, "  ") {
			listed[f[0]] = true
		}
	}
	for _, cmd := range []string{"cat", "destroy", "journal", "list-machines", "list-unit-files", "list-units", "load",
		"restart", "ssh", "start", "status", "stop", "submit", "unload", "verify", "version", "help"} {
		if !listed[cmd] {
			t.Errorf("fleetctl help does not list %s:\n%s", cmd, b.String())
			continue
		}
		var h bytes.Buffer
		if code := run([]string{"help", cmd}, &h, &h); code != 0 || !strings.Contains(h.String(), "Usage:") {
			t.Errorf("fleetctl help %s: exit %d\n%s", cmd, code, h.String())
		}
	}
	// Shell completion, for the shells cobra knows.
	for shell, want := range map[string]string{"bash": "__start_fleetctl", "zsh": "#compdef fleetctl", "fish": "complete -c fleetctl"} {
		var c bytes.Buffer
		if code := run([]string{"completion", shell}, &c, &c); code != 0 || !strings.Contains(c.String(), want) {
			t.Errorf("fleetctl completion %s: exit %d, no %q in %.200q", shell, code, want, c.String())
		}
	}
}

// placementLog is the leader's log line of unit's placement, from the
// fleetd.log of whichever machine leads.
func placementLog(t *testing.T, c *testcluster.Cluster, unit string) string {
	t.Helper()
	for _, m := range c.Machines {
		b, _ := os.ReadFile(filepath.Join(m.Dir, "fleetd.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `msg="schedule changed"`) && strings.Contains(line, " unit="+unit+" ") {
				return line
			}
		}
	}
	t.Fatalf("no machine's fleetd.log has the placement of %s", unit)
	return ""
}
