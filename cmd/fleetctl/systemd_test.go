package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestSystemdLifecycle drives real systemd machines through fleet's whole
// unit lifecycle: start, status, journal, a fleetd restart that must not
// touch the unit, replace, stop, unload, and health in Consul.
func TestSystemdLifecycle(t *testing.T) {
	c := testcluster.StartSystemd(t, 2)
	ep := c.Consul.URL()
	reg := c.Registry()
	dir := t.TempDir()
	p := testcluster.WriteUnit(t, dir, "myapp.service", testcluster.HelloService)

	if out := mustCtl(t, ep, "start", p); !strings.HasPrefix(out, "Unit myapp.service launched on ") {
		t.Fatalf("start printed %q", out)
	}
	m := c.Machine(testcluster.ScheduledOn(t, reg, "myapp.service"))
	if got := m.Output("systemctl", "is-active", "myapp.service"); got != "active" {
		t.Fatalf("systemctl is-active in the machine: %q\n%s", got, m.Log())
	}
	if lu := testcluster.Rows(mustCtl(t, ep, "list-units")); len(lu) != 1 || lu[0][2] != "active" || lu[0][3] != "running" {
		t.Fatalf("list-units: %v", lu)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if out := mustCtl(t, ep, "status", "myapp"); !strings.Contains(out, "Active: active (running)") {
			return fmt.Errorf("status:\n%s", out)
		}
		if out := mustCtl(t, ep, "journal", "--lines", "5", "myapp"); !strings.Contains(out, "Hello World") {
			return fmt.Errorf("journal:\n%s", out)
		}
		return nil
	})

	// fleetd restarts: the unit keeps running, same PID, same machine.
	pid := m.MainPID("myapp.service")
	m.StopFleetd()
	if got := m.Output("systemctl", "is-active", "myapp.service"); got != "active" {
		t.Fatalf("unit stopped with fleetd: %q", got)
	}
	m.StartFleetd()
	time.Sleep(3 * c.TTL) // past the TTL: a lost session would have moved the unit by now
	if got := testcluster.ScheduledOn(t, reg, "myapp.service"); got != m.MachineID {
		t.Fatalf("after a fleetd restart the unit moved to %s\n%s", got, m.Log())
	}
	if got := m.MainPID("myapp.service"); got != pid {
		t.Fatalf("after a fleetd restart the unit's PID is %s, was %s", got, pid)
	}
	if lu := testcluster.Rows(mustCtl(t, ep, "list-units")); len(lu) != 1 || lu[0][2] != "active" {
		t.Fatalf("list-units after the fleetd restart: %v", lu)
	}

	// replace: a new body restarts the unit with it.
	testcluster.WriteUnit(t, dir, "myapp.service", strings.Replace(testcluster.HelloService, "Hello World", "Hello Again", 1))
	mustCtl(t, ep, "start", "--replace", p)
	testcluster.Eventually(t, 20*time.Second, func() error {
		if got := m.MainPID("myapp.service"); got == pid || got == "0" {
			return fmt.Errorf("MainPID %s after replace, was %s", got, pid)
		}
		if out := m.Output("cat", "/run/fleet/units/myapp.service"); !strings.Contains(out, "Hello Again") {
			return fmt.Errorf("unit file in the machine:\n%s", out)
		}
		return nil
	})

	// systemd re-executes (an upgrade): the driver reconnects, and state
	// changes keep flowing.
	m.Output("systemctl", "daemon-reexec")
	time.Sleep(3 * time.Second) // the driver checks its connection every 2s
	m.Output("systemctl", "kill", "--signal", "KILL", "myapp.service")
	testcluster.Eventually(t, 20*time.Second, func() error {
		lu := testcluster.Rows(mustCtl(t, ep, "list-units", "--fields", "unit,active"))
		if len(lu) != 1 || lu[0][1] != "failed" {
			return fmt.Errorf("list-units after a kill behind fleet's back: %v\n%s", lu, m.Log())
		}
		return nil
	})
	m.Output("systemctl", "start", "myapp.service")

	// stop, then unload: the file leaves the machine.
	mustCtl(t, ep, "stop", "myapp")
	if got := m.Output("systemctl", "is-active", "myapp.service"); got != "inactive" {
		t.Fatalf("after stop: %q", got)
	}
	mustCtl(t, ep, "unload", "myapp")
	if got := m.Output("ls", "/run/fleet/units"); got != "" {
		t.Fatalf("units directory after unload: %q", got)
	}
	if got := m.Output("systemctl", "show", "--property", "LoadState", "--value", "myapp.service"); got != "not-found" {
		t.Fatalf("systemd still knows the unit after unload: %q", got)
	}
	mustCtl(t, ep, "destroy", "myapp")
}

// TestSystemdInstallAndBindsTo is fleet's TestInstallUnit: a unit with
// [Install] WantedBy= starts with the unit that wants it, and a sidekick
// bound with BindsTo= stops with it.
func TestSystemdInstallAndBindsTo(t *testing.T) {
	c := testcluster.StartSystemd(t, 2)
	ep := c.Consul.URL()
	dir := t.TempDir()
	pin := "\n[X-Fleet]\nMachineMetadata=hostname=machine-2\n"
	hello := testcluster.WriteUnit(t, dir, "hello.service", testcluster.HelloService+pin)
	discovery := testcluster.WriteUnit(t, dir, "discovery.service", `[Unit]
Description=announce hello
BindsTo=hello.service
After=hello.service

[Service]
ExecStart=/bin/sh -c "while true; do echo announcing hello; sleep 1; done"

[Install]
WantedBy=hello.service
`+pin)
	mustCtl(t, ep, "load", hello, discovery)
	m := c.Machines[1]
	if got := m.Output("systemctl", "is-active", "discovery.service"); got != "inactive" {
		t.Fatalf("discovery after load: %q", got)
	}
	mustCtl(t, ep, "start", "hello")
	testcluster.Eventually(t, 10*time.Second, func() error {
		if got := m.Output("systemctl", "is-active", "discovery.service"); got != "active" {
			return fmt.Errorf("discovery after starting hello: %q", got)
		}
		return nil
	})
	mustCtl(t, ep, "stop", "hello")
	testcluster.Eventually(t, 10*time.Second, func() error {
		if got := m.Output("systemctl", "is-active", "discovery.service"); got != "inactive" {
			return fmt.Errorf("discovery after stopping hello: %q", got)
		}
		return nil
	})
}

// TestSystemdFailures: a machine dies and its unit moves; a unit systemd
// rejects shows systemd's reason while the machine keeps running its other
// units; a crashed unit is critical in Consul while a running one passes.
func TestSystemdFailures(t *testing.T) {
	c := testcluster.StartSystemd(t, 2)
	ep := c.Consul.URL()
	reg := c.Registry()
	dir := t.TempDir()
	mustCtl(t, ep, "start", testcluster.WriteUnit(t, dir, "web.service", testcluster.HelloService))
	first := c.Machine(testcluster.ScheduledOn(t, reg, "web.service"))

	if err := first.Box.Kill(); err != nil {
		t.Fatal(err)
	}
	second := c.Machines[0]
	if second == first {
		second = c.Machines[1]
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if got := testcluster.ScheduledOn(t, reg, "web.service"); got != second.MachineID {
			return fmt.Errorf("web.service on %q", got)
		}
		if got := second.Output("systemctl", "is-active", "web.service"); got != "active" {
			return fmt.Errorf("web.service on the surviving machine: %q", got)
		}
		return nil
	})

	_, _, _ = ctl(t, ep, "start", "--block-attempts", "3", testcluster.WriteUnit(t, dir, "bad.service", "[Service]\nExecStart=relative/path\n"))
	testcluster.Eventually(t, 20*time.Second, func() error {
		lu := testcluster.Rows(mustCtl(t, ep, "list-units", "--fields", "unit,load,active"))
		if !contains(lu, []string{"bad.service", "bad-setting", "inactive"}) || !contains(lu, []string{"web.service", "loaded", "active"}) {
			return fmt.Errorf("list-units: %v", lu)
		}
		if out := mustCtl(t, ep, "status", "bad"); !strings.Contains(out, "bad-setting") {
			return fmt.Errorf("status of the rejected unit:\n%s", out)
		}
		return nil
	})

	_, _, _ = ctl(t, ep, "start", testcluster.WriteUnit(t, dir, "crash.service", "[Service]\nExecStart=/bin/sh -c 'sleep 0.5; exit 3'\n"))
	client, _ := c.Consul.Client()
	testcluster.Eventually(t, 20*time.Second, func() error {
		// The leader drops the dead machine's catalog node; only the live
		// machine's instance may pass.
		web, _, err := client.Health().Service("web", "", true, nil)
		if err != nil || len(web) != 1 || web[0].Node.Node != registry.CatalogNode(second.MachineID) {
			return fmt.Errorf("passing web instances: %v %v", web, err)
		}
		crash, _, err := client.Health().Checks("crash", nil)
		if err != nil || crash.AggregatedStatus() != api.HealthCritical {
			return fmt.Errorf("crash checks: %v %v", crash, err)
		}
		return nil
	})
}

// TestSystemdUser drives a user's systemd (systemd --user), as fleet's
// systemd_user option did.
func TestSystemdUser(t *testing.T) {
	c := testcluster.StartSystemd(t, 0)
	const run = "/run/user/0"
	m := c.AddMachineWith(testcluster.MachineSetup{
		Metadata: "hostname=user-machine",
		Prepare:  [][]string{{"systemctl", "start", "user@0.service"}},
		Env:      []string{"XDG_RUNTIME_DIR=" + run, "DBUS_SESSION_BUS_ADDRESS=unix:path=" + run + "/bus"},
		Extra:    []string{"--systemd-user", "--units-dir", run + "/fleet/units"},
	})
	c.WaitMachines(1)
	ep := c.Consul.URL()
	mustCtl(t, ep, "start", testcluster.WriteUnit(t, t.TempDir(), "myapp.service", testcluster.HelloService))
	user := func(args ...string) string {
		return m.Output(append([]string{"env", "XDG_RUNTIME_DIR=" + run, "systemctl", "--user"}, args...)...)
	}
	if got := user("is-active", "myapp.service"); got != "active" {
		t.Fatalf("systemctl --user is-active: %q\n%s", got, m.Log())
	}
	if got := m.Output("systemctl", "is-active", "myapp.service"); got == "active" {
		t.Fatal("the unit runs in the system manager, not the user's")
	}
	if out := mustCtl(t, ep, "status", "myapp"); !strings.Contains(out, "Active: active (running)") {
		t.Errorf("status:\n%s", out)
	}
	mustCtl(t, ep, "unload", "myapp")
	if got := user("show", "--property", "LoadState", "--value", "myapp.service"); got != "not-found" {
		t.Fatalf("after unload the user manager still has the unit: %q", got)
	}
}
