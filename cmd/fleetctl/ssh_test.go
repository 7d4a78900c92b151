package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestSSH checks which machine fleetctl ssh picks and what it hands the
// system's ssh, with a stand-in ssh on PATH that prints its arguments.
func TestSSH(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte("#!/bin/sh\necho \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	mustCtl(t, ep, "start", writeUnit(t, t.TempDir(), "myapp.service", myapp))
	m := c.Machine(scheduledOn(t, c.Registry(), "myapp.service"))

	if out := mustCtl(t, ep, "ssh", "myapp", "--", "echo", "foo"); strings.TrimSpace(out) != "-p 22 -l core "+m.IP+" echo foo" {
		t.Errorf("ssh by unit ran: %q", out)
	}
	other := c.Machines[0]
	if other == m {
		other = c.Machines[1]
	}
	if out := mustCtl(t, ep, "ssh", "-A", "--ssh-port", "2222", registry.ShortID(other.ID)); strings.TrimSpace(out) != "-p 2222 -l core -A "+other.IP {
		t.Errorf("ssh by machine prefix ran: %q", out)
	}
	if _, errOut, code := ctl(t, ep, "ssh", "nothing-here"); code == 0 || !strings.Contains(errOut, "neither a machine nor a unit") {
		t.Errorf("ssh to nothing: exit %d %q", code, errOut)
	}
}
