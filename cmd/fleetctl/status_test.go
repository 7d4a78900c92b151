package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestStatusAndJournal reads a unit's status and output from the machine
// that runs it, through its fleetd, without SSH.
func TestStatusAndJournal(t *testing.T) {
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	dir := t.TempDir()
	mustCtl(t, ep, "start", testcluster.WriteUnit(t, dir, "myapp.service", testcluster.HelloService))
	time.Sleep(time.Second) // let it print a few lines

	out := mustCtl(t, ep, "status", "myapp")
	for _, want := range []string{"myapp.service - MyApp", "Active: active (running)", "Hello World"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out = mustCtl(t, ep, "journal", "--lines", "3", "myapp")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || lines[0] != "Hello World" {
		t.Errorf("journal --lines 3 printed %q", out)
	}

	// --follow keeps printing until stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testcluster.Binary(t, "fleetctl"), "journal", "--follow", "--lines", "1", "myapp")
	cmd.Env = append(os.Environ(), "FLEETCTL_ENDPOINT="+ep)
	b, _ := cmd.Output()
	if n := strings.Count(string(b), "Hello World"); n < 4 {
		t.Errorf("journal --follow printed %d lines in 2s, want several:\n%s", n, b)
	}

	mustCtl(t, ep, "unload", "myapp")
	if _, errOut, code := ctl(t, ep, "status", "myapp"); code == 0 || !strings.Contains(errOut, "does not appear to be loaded") {
		t.Errorf("status of an unloaded unit: exit %d %q", code, errOut)
	}
	if _, errOut, code := ctl(t, ep, "status", "nope"); code == 0 || !strings.Contains(errOut, "Unit nope.service does not exist.") {
		t.Errorf("status of an unknown unit: exit %d %q", code, errOut)
	}
}
