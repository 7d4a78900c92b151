package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// origSession drives a fleetd dev cluster with the original fleetctl
// (--driver API on machine 1's socket) and checks it with ours (Consul).
type origSession struct {
	t    *testing.T
	orig *testcluster.OrigFleet
	d    *devCluster
	dir  string // unit files
}

// run runs the original fleetctl and checks its exit code.
func (s *origSession) run(wantCode int, args ...string) (stdout, stderr string) {
	s.t.Helper()
	stdout, stderr, code := s.orig.Run(s.t, s.d.st.Machines[0].FleetAPI, args...)
	if code != wantCode {
		s.t.Fatalf("original fleetctl %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, stdout, stderr)
	}
	return stdout, stderr
}

// ours runs our fleetctl against the cluster's Consul; it must succeed.
func (s *origSession) ours(args ...string) string {
	s.t.Helper()
	return testcluster.MustFleetctl(s.t, s.d.st.ConsulHTTPAddr, args...)
}

// same checks that a list command prints the same with both fleetctls,
// retrying while the cluster settles.
func (s *origSession) same(args ...string) {
	s.t.Helper()
	testcluster.Eventually(s.t, time.Minute, func() error {
		theirs, _ := s.run(0, args...)
		if ours := s.ours(args...); theirs != ours {
			return fmt.Errorf("%v differs:\noriginal fleetctl:\n%s\nours:\n%s", args, theirs, ours)
		}
		return nil
	})
}

// unitFile is a row of our list-unit-files --output json.
type unitFile struct {
	Unit, DState, State, Target, Reason string
}

// units is our fleetctl's view of every unit.
func (s *origSession) units() map[string]unitFile {
	s.t.Helper()
	var rows []unitFile
	if err := json.Unmarshal([]byte(s.ours("list-unit-files", "--output", "json")), &rows); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]unitFile{}
	for _, r := range rows {
		out[r.Unit] = r
	}
	return out
}

// TestOriginalFleetctl drives a fleetd dev cluster with CoreOS fleet's own
// fleetctl v1.0.0 over the fleet HTTP API, as an operator moving from fleet
// would, and checks with our fleetctl that the cluster did what it was
// told. Building that fleetctl needs the Go module proxy; the test fails,
// never skips, when it cannot.
func TestOriginalFleetctl(t *testing.T) {
	s := &origSession{t: t, orig: testcluster.OrigFleetT(t), d: startDev(t, "--machines", "2"), dir: t.TempDir()}
	out, _ := s.run(0, "list-machines", "--no-legend", "--full")
	for _, m := range s.d.st.Machines {
		if !strings.Contains(out, m.ID+"\t"+m.IP+"\t"+m.Metadata) {
			t.Errorf("list-machines lacks %s:\n%s", m.ID, out)
		}
	}
	s.same("list-machines", "--no-legend", "--full")
	t.Run("lifecycle", s.lifecycle)
	t.Run("templates", s.templates)
	t.Run("xfleet", s.xfleet)
	t.Run("refused", s.refused)
}

// lifecycle takes one unit through submit, load, start, stop, unload and
// destroy.
func (s *origSession) lifecycle(t *testing.T) {
	s.t = t
	hello := testcluster.WriteUnit(t, s.dir, "hello.service", testcluster.HelloService)
	if out, _ := s.run(0, "submit", hello); out != "Unit hello.service inactive\n" {
		t.Errorf("submit printed %q", out)
	}
	if u := s.units()["hello.service"]; u.DState != "inactive" || u.State != "inactive" {
		t.Errorf("after submit: %+v", u)
	}
	s.same("list-unit-files", "--no-legend", "--full")
	if out, _ := s.run(0, "cat", "hello.service"); out != s.ours("cat", "hello.service") {
		t.Errorf("cat: %q differs from ours", out)
	}
	if out, _ := s.run(0, "load", "hello.service"); !strings.HasPrefix(out, "Unit hello.service loaded on ") {
		t.Errorf("load printed %q", out)
	}
	if out, _ := s.run(0, "start", "hello.service"); !strings.HasPrefix(out, "Unit hello.service launched on ") {
		t.Errorf("start printed %q", out)
	}
	if u := s.units()["hello.service"]; u.DState != "launched" || u.State != "launched" || u.Target == "" {
		t.Errorf("after start: %+v", u)
	}
	s.same("list-units", "--no-legend", "--full")
	s.same("list-unit-files", "--no-legend", "--full")
	s.run(0, "stop", "hello.service")
	if u := s.units()["hello.service"]; u.DState != "loaded" || u.State != "loaded" {
		t.Errorf("after stop: %+v", u)
	}
	s.run(0, "unload", "hello.service")
	if u := s.units()["hello.service"]; u.DState != "inactive" || u.Target != "" {
		t.Errorf("after unload: %+v", u)
	}
	if out, _ := s.run(0, "destroy", "hello.service"); out != "Destroyed hello.service\n" {
		t.Errorf("destroy printed %q", out)
	}
	if u, ok := s.units()["hello.service"]; ok {
		t.Errorf("after destroy: %+v", u)
	}
}

// templates submits a template, starts two instances, and is refused
// starting the template itself.
func (s *origSession) templates(t *testing.T) {
	s.t = t
	tpl := testcluster.WriteUnit(t, s.dir, "web@.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	s.run(0, "submit", tpl)
	s.run(0, "start", "web@1.service", "web@2.service")
	us := s.units()
	for _, n := range []string{"web@1.service", "web@2.service"} {
		if us[n].State != "launched" {
			t.Errorf("%s: %+v", n, us[n])
		}
	}
	if u := us["web@.service"]; u.DState != "inactive" {
		t.Errorf("the template: %+v", u)
	}
	_, errOut := s.run(1, "start", "web@.service")
	if !strings.Contains(errOut, `googleapi: Error 400: cannot activate template "web@.service"`) {
		t.Errorf("start a template: %q", errOut)
	}
	s.same("list-unit-files", "--no-legend", "--full")
	s.run(0, "destroy", "web@1.service", "web@2.service", "web@.service")
	if us := s.units(); len(us) != 0 {
		t.Errorf("units left: %v", us)
	}
}

// xfleet places units by [X-Fleet] options: MachineMetadata, Conflicts,
// and a unit no machine fits, which waits with a reason.
func (s *origSession) xfleet(t *testing.T) {
	s.t = t
	md := testcluster.WriteUnit(t, s.dir, "md.service", "[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\nMachineMetadata=hostname=machine-2\n")
	s.run(0, "start", md)
	if u := s.units()["md.service"]; u.Target != s.d.st.Machines[1].ID || u.State != "launched" {
		t.Errorf("MachineMetadata=hostname=machine-2: %+v, want it on %s", u, s.d.st.Machines[1].ID)
	}
	one := testcluster.WriteUnit(t, s.dir, "one@.service", "[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\nConflicts=one@*.service\n")
	s.run(0, "submit", one)
	s.run(0, "start", "one@1.service", "one@2.service")
	us := s.units()
	if a, b := us["one@1.service"].Target, us["one@2.service"].Target; a == "" || b == "" || a == b {
		t.Errorf("conflicting units on %q and %q, want two machines", a, b)
	}
	if out, _ := s.run(0, "start", "--no-block", "one@3.service"); !strings.Contains(out, "Triggered unit one@3.service start") {
		t.Errorf("start --no-block printed %q", out)
	}
	testcluster.Eventually(t, time.Minute, func() error {
		if u := s.units()["one@3.service"]; u.Reason == "" || u.Target != "" {
			return fmt.Errorf("a third conflicting unit on two machines: %+v, want it unplaced with a reason", u)
		}
		return nil
	})
	s.same("list-unit-files", "--no-legend", "--full")
	s.run(0, "destroy", "md.service", "one@1.service", "one@2.service", "one@3.service", "one@.service")
}

// refused checks the original fleetctl's exit code and message for bad
// input: those it catches itself (a bad name, a file that does not parse, a
// unit that is nowhere) and those our API refuses, which it shows as
// "googleapi: Error N: message"; and that nothing was written.
func (s *origSession) refused(t *testing.T) {
	s.t = t
	bad := func(name, body string) string { return testcluster.WriteUnit(t, s.dir, name, body) }
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"submit", bad("bad name.service", "[Service]\nExecStart=/bin/true\n")}, 1, "invalid character ' ' in unit name"},
		{[]string{"submit", bad("unterminated.service", "[Service\nExecStart=/bin/true\n")}, 1, "unable to find end of section"},
		{[]string{"submit", "nope.service"}, 1, "unable to find Unit(nope.service) in Registry or on filesystem"},
		{[]string{"start", "nope.service"}, 1, "unable to find Unit(nope.service) in Registry or on filesystem"},
		{[]string{"cat", "nope.service"}, 1, "Unit nope.service not found"},
		{[]string{"status", "nope.service"}, 1, "Unit nope.service does not exist."},
		{[]string{"destroy", "nope.service"}, 0, "Units not found in registry"},
		{[]string{"submit", bad("empty.service", "garbage\n")}, 1, "googleapi: Error 409: unit does not exist and options field empty"},
		{[]string{"submit", bad("typo.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetaData=a=b\n")}, 1, `googleapi: Error 400: unit typo.service: unknown [X-Fleet] option "MachineMetaData"`},
	} {
		_, errOut := s.run(c.code, c.args...)
		if !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: stderr %q, want %q", c.args, errOut, c.msg)
		}
	}
	if us := s.units(); len(us) != 0 {
		t.Errorf("refused input left units: %v", us)
	}
}

// TestOriginalClientPackage runs testdata/origclient, a program written
// with CoreOS fleet's own Go client package, against a fleetd dev cluster
// over the fleet API, and checks with our fleetctl what it left: its unit
// loaded on a machine, its template and instance gone.
func TestOriginalClientPackage(t *testing.T) {
	orig := testcluster.OrigFleetT(t)
	bin := orig.BuildProgram(t, "testdata/origclient")
	d := startDev(t, "--machines", "2")
	cmd := exec.Command(bin, d.st.Machines[1].FleetAPI, "2")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "ok\n" {
		t.Fatalf("origclient: %v\n%s", err, out)
	}
	s := &origSession{t: t, orig: orig, d: d}
	us := s.units()
	if u := us["client.service"]; len(us) != 1 || u.DState != "loaded" || u.State != "loaded" || u.Target == "" {
		t.Errorf("units after origclient: %+v, want client.service alone, loaded", us)
	}
}
