package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestTemplates starts instances of a template found in the cluster, and of
// one found on local disk beside the argument; the template itself cannot be
// started.
func TestTemplates(t *testing.T) {
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	dir := t.TempDir()
	tpl := testcluster.WriteUnit(t, dir, "hello@.service", "[Service]\nExecStart=/bin/sh -c 'while true; do echo Hello World %i; sleep 0.2; done'\n")
	if out := mustCtl(t, ep, "submit", tpl); out != "Unit hello@.service inactive\n" {
		t.Fatalf("submit printed %q", out)
	}
	// No local file named after the instances: the registry's template is used.
	out := mustCtl(t, ep, "start", "hello@1", "hello@2")
	if strings.Count(out, "launched on") != 2 {
		t.Fatalf("start printed %q", out)
	}
	files := testcluster.Rows(mustCtl(t, ep, "list-unit-files", "--fields", "unit,hash,dstate"))
	if len(files) != 3 || files[0][1] != files[1][1] || files[1][1] != files[2][1] {
		t.Fatalf("instances must share the template's body and hash: %v", files)
	}
	// The instance name reaches the unit: %i is expanded when it runs.
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, r := range testcluster.Rows(mustCtl(t, ep, "list-units", "--full")) {
			m := c.Machine(strings.Split(r[1], "/")[0])
			if err := m.CheckRunning(r[0]); err != nil {
				return err
			}
			inst := strings.TrimSuffix(strings.TrimPrefix(r[0], "hello@"), ".service")
			if b, _ := os.ReadFile(filepath.Join(m.Dir, "logs", r[0]+".log")); !strings.Contains(string(b), "Hello World "+inst+"\n") {
				return fmt.Errorf("%s did not print its instance name: %q", r[0], b)
			}
		}
		return nil
	})

	// A template only on local disk, beside the named instance.
	other := t.TempDir()
	testcluster.WriteUnit(t, other, "disk@.service", "[Service]\nExecStart=/bin/sleep 60\n")
	if out := mustCtl(t, ep, "start", filepath.Join(other, "disk@a")); !strings.HasPrefix(out, "Unit disk@a.service launched on ") {
		t.Fatalf("start of a local template's instance printed %q", out)
	}
	if _, errOut, code := ctl(t, ep, "start", "hello@"); code == 0 || !strings.Contains(errOut, "cannot activate template") {
		t.Fatalf("starting a template: exit %d %q", code, errOut)
	}
}

// TestReplace changes a running unit's file and starts it with --replace:
// the cluster gets the new body and the unit runs it.
func TestReplace(t *testing.T) {
	c := testcluster.Start(t, 1)
	ep := c.Consul.URL()
	dir := t.TempDir()
	p := testcluster.WriteUnit(t, dir, "web.service", "[Service]\nExecStart=/bin/sh -c 'while true; do echo Hello World v1; sleep 0.2; done'\n")
	mustCtl(t, ep, "start", p)
	v2 := "[Service]\nExecStart=/bin/sh -c 'while true; do echo Hello World v2; sleep 0.2; done'\n"
	testcluster.WriteUnit(t, dir, "web.service", v2)

	_, errOut, _ := ctl(t, ep, "start", p)
	if !strings.Contains(errOut, "differs from local unit file") || !strings.Contains(errOut, "--replace") {
		t.Fatalf("start of a changed unit without --replace: %q", errOut)
	}
	before := mustCtl(t, ep, "cat", "web")
	if strings.Contains(before, "v2") {
		t.Fatal("the unit was replaced without --replace")
	}
	// fleet's matrix: submit replaces only an inactive unit, load an
	// inactive or loaded one; web is launched, so both refuse.
	for _, verb := range []string{"submit", "load"} {
		_, errOut, _ := ctl(t, ep, verb, "--replace", p)
		if !strings.Contains(errOut, "Warning: can not replace Unit(web.service) in state 'launched', use the appropriate command") {
			t.Fatalf("%s --replace of a launched unit: %q", verb, errOut)
		}
		if got := mustCtl(t, ep, "cat", "web"); got != before {
			t.Fatalf("%s --replace changed a launched unit:\n%s", verb, got)
		}
	}
	mustCtl(t, ep, "start", "--replace", p)
	if got := mustCtl(t, ep, "cat", "web"); !strings.Contains(got, "v2") {
		t.Fatalf("cat after --replace:\n%s", got)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		out := mustCtl(t, ep, "list-units", "--fields", "unit,active,hash")
		want := testcluster.Rows(mustCtl(t, ep, "list-unit-files", "--fields", "unit,hash"))[0][1]
		if r := testcluster.Rows(out); len(r) != 1 || r[0][1] != "active" || r[0][2] != want {
			return fmt.Errorf("list-units %v, want active with hash %s", r, want)
		}
		return nil
	})
}
