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
// system's ssh, with a stand-in ssh on PATH that prints its arguments:
// fleet's SSH options (--tunnel, --ssh-username, --ssh-timeout,
// --known-hosts-file, --strict-host-key-checking) as flags and as FLEETCTL_*
// variables. The commands that no longer use SSH accept fleet's SSH flags.
func TestSSH(t *testing.T) {
	bin, kh := t.TempDir(), filepath.Join(t.TempDir(), "fleetctl", "known_hosts")
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte("#!/bin/sh\necho \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("FLEETCTL_KNOWN_HOSTS_FILE", kh) // not the tester's ~/.fleetctl
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	mustCtl(t, ep, "start", testcluster.WriteUnit(t, t.TempDir(), "myapp.service", testcluster.HelloService))
	m := c.Machine(testcluster.ScheduledOn(t, c.Registry(), "myapp.service"))

	defaults := "-o ConnectTimeout=10 -o UserKnownHostsFile=" + kh + " -o StrictHostKeyChecking=ask"
	if out := mustCtl(t, ep, "ssh", "myapp", "--", "echo", "foo"); strings.TrimSpace(out) != "-p 22 -l core "+defaults+" "+m.IP+" echo foo" {
		t.Errorf("ssh by unit ran: %q", out)
	}
	if fi, err := os.Stat(filepath.Dir(kh)); err != nil || !fi.IsDir() {
		t.Errorf("the known-hosts file's directory was not created: %v", err)
	}
	other := c.Machines[0]
	if other == m {
		other = c.Machines[1]
	}
	if out := mustCtl(t, ep, "ssh", "-A", "--ssh-port", "2222", registry.ShortID(other.ID)); strings.TrimSpace(out) != "-p 2222 -l core "+defaults+" -A "+other.IP {
		t.Errorf("ssh by machine prefix ran: %q", out)
	}
	out := mustCtl(t, ep, "--tunnel", "bastion:2200", "--ssh-username", "admin", "--ssh-timeout", "2.5",
		"--known-hosts-file", "/tmp/kh", "--strict-host-key-checking=false", "ssh", registry.ShortID(other.ID))
	if want := "-p 22 -l admin -J bastion:2200 -o ConnectTimeout=3 -o UserKnownHostsFile=/tmp/kh -o StrictHostKeyChecking=no " + other.IP; strings.TrimSpace(out) != want {
		t.Errorf("ssh with fleet's SSH flags ran %q, want %q", out, want)
	}
	t.Setenv("FLEETCTL_TUNNEL", "jump")
	t.Setenv("FLEETCTL_SSH_USERNAME", "ops")
	if out := mustCtl(t, ep, "ssh", registry.ShortID(other.ID)); !strings.HasPrefix(out, "-p 22 -l ops -J jump ") {
		t.Errorf("ssh with FLEETCTL_TUNNEL and FLEETCTL_SSH_USERNAME ran %q", out)
	}
	if _, errOut, code := ctl(t, ep, "ssh", "nothing-here"); code == 0 || !strings.Contains(errOut, "neither a machine nor a unit") {
		t.Errorf("ssh to nothing: exit %d %q", code, errOut)
	}

	// fleet's SSH-era flags on status and journal are accepted.
	if out := mustCtl(t, ep, "status", "--ssh-port", "2222", "myapp"); !strings.Contains(out, "active (running)") {
		t.Errorf("status --ssh-port: %q", out)
	}
	if out := mustCtl(t, ep, "journal", "--sudo", "--ssh-port", "2222", "--output", "cat", "--lines", "3", "myapp"); !strings.Contains(out, "Hello World") {
		t.Errorf("journal --sudo --output cat: %q", out)
	}
	if _, errOut, code := ctl(t, ep, "journal", "--output", "fancy", "myapp"); code == 0 || !strings.Contains(errOut, `unknown --output "fancy"`) {
		t.Errorf("journal --output fancy: exit %d %q", code, errOut)
	}
	// --debug shows the requests to Consul.
	if _, errOut, code := ctl(t, ep, "--debug", "list-machines"); code != 0 || !strings.Contains(errOut, "DEBUG consul GET /v1/kv/") {
		t.Errorf("list-machines --debug: exit %d, stderr %q", code, errOut)
	}
}

func TestExpandHome(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("no home directory to expand ~ to: %v", err)
	}
	for in, want := range map[string]string{"~/.fleetctl/known_hosts": home + "/.fleetctl/known_hosts", "/etc/kh": "/etc/kh", "~user/kh": "~user/kh"} {
		if got := expandHome(in); got != want {
			t.Errorf("expandHome(%q) = %q, want %q", in, got, want)
		}
	}
}
