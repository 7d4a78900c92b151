// Command origclient drives fleet's HTTP API with CoreOS fleet's own Go
// client package (github.com/coreos/fleet/client, v1.0.0) as a program
// written against it would, and fails (exit 1) at the first answer that is
// not what that package's users rely on. TestOriginalClientPackage builds
// it in a module of fleet's pinned dependencies and checks the cluster
// afterwards with our fleetctl.
//
//	origclient unix:///path/fleet.sock MACHINES
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/googleapi"

	"github.com/coreos/fleet/client"
	"github.com/coreos/fleet/schema"
)

func main() {
	if len(os.Args) != 3 {
		fail("usage: origclient unix:///path/fleet.sock MACHINES")
	}
	machines, _ := strconv.Atoi(os.Args[2])
	sock := strings.TrimPrefix(os.Args[1], "unix://")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	c, err := client.NewHTTPClient(hc, url.URL{Scheme: "http", Host: "domain-sock"})
	check("NewHTTPClient", err)
	svc, err := schema.New(hc)
	check("schema.New", err)
	svc.BasePath = "http://domain-sock/fleet/v1/"

	ms, err := c.Machines()
	check("Machines", err)
	if len(ms) != machines {
		fail("Machines: %d, want %d", len(ms), machines)
	}
	lifecycle(c, svc)
	templates(c)
	refused(c)
	fmt.Println("ok")
}

var options = []*schema.UnitOption{
	{Section: "Unit", Name: "Description", Value: "client"},
	{Section: "Service", Name: "ExecStart", Value: "/bin/sleep 1000"},
}

// lifecycle creates a unit, reads it, launches it, reads its states, and
// leaves it loaded.
func lifecycle(c client.API, svc *schema.Service) {
	check("CreateUnit", c.CreateUnit(&schema.Unit{Name: "client.service", Options: options}))
	u, err := c.Unit("client.service")
	check("Unit", err)
	if u == nil || u.DesiredState != "inactive" || u.CurrentState != "inactive" || len(u.Options) != 2 || u.Options[1].Value != "/bin/sleep 1000" {
		fail("Unit after CreateUnit: %+v", u)
	}
	if u, err := c.Unit("nope.service"); u != nil || err != nil {
		fail("Unit of an unknown unit: %+v, %v; want nil, nil", u, err)
	}
	check("SetUnitTargetState launched", c.SetUnitTargetState("client.service", "launched"))
	u = waitUnit(c, "client.service", "launched")
	st := waitState(c, "client.service", "active")
	if st.MachineID != u.MachineID || len(st.Hash) != 40 || st.SystemdLoadState != "loaded" {
		fail("UnitState: %+v for unit %+v", st, u)
	}
	if st, err := c.UnitState("nope.service"); st != nil || err != nil {
		fail("UnitState of an unknown unit: %+v, %v; want nil, nil", st, err)
	}
	all, err := c.UnitStates()
	check("UnitStates", err)
	if len(all) != 1 || all[0].Name != "client.service" {
		fail("UnitStates: %v", all)
	}
	page, err := svc.UnitState.List().MachineID(u.MachineID).UnitName("client.service").Do()
	check("UnitState.List filtered", err)
	if len(page.States) != 1 {
		fail("UnitState.List of the unit's machine: %v", page.States)
	}
	page, err = svc.UnitState.List().MachineID("elsewhere").Do()
	check("UnitState.List of another machine", err)
	if len(page.States) != 0 {
		fail("UnitState.List of a machine that is none: %v", page.States)
	}
	check("SetUnitTargetState loaded", c.SetUnitTargetState("client.service", "loaded"))
	waitUnit(c, "client.service", "loaded")
}

// templates creates a template and an instance already launched, is
// refused launching the template, and destroys both.
func templates(c client.API) {
	tpl := []*schema.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/bin/sleep 100%i"}}
	check("CreateUnit template", c.CreateUnit(&schema.Unit{Name: "web@.service", Options: tpl}))
	check("CreateUnit instance", c.CreateUnit(&schema.Unit{Name: "web@1.service", Options: tpl, DesiredState: "launched"}))
	waitUnit(c, "web@1.service", "launched")
	expectError("SetUnitTargetState of a template", c.SetUnitTargetState("web@.service", "launched"), 400, `cannot activate template "web@.service"`)
	units, err := c.Units()
	check("Units", err)
	var names []string
	for _, u := range units {
		names = append(names, u.Name)
	}
	if strings.Join(names, " ") != "client.service web@.service web@1.service" {
		fail("Units: %v", names)
	}
	check("DestroyUnit instance", c.DestroyUnit("web@1.service"))
	check("DestroyUnit template", c.DestroyUnit("web@.service"))
}

// refused sends what the API refuses, each answered with fleet's error.
func refused(c client.API) {
	expectError("CreateUnit with a bad name", c.CreateUnit(&schema.Unit{Name: "bad name.service", Options: options}), 400, "bad name.service")
	expectError("CreateUnit without options", c.CreateUnit(&schema.Unit{Name: "empty.service"}), 409, "unit does not exist and options field empty")
	expectError("SetUnitTargetState to no state", c.SetUnitTargetState("client.service", "running"), 400, `unknown desired state "running"`)
	expectError("DestroyUnit of an unknown unit", c.DestroyUnit("nope.service"), 404, "unit does not exist")
	bad := []*schema.UnitOption{{Section: "X-Fleet", Name: "Global", Value: "true"}, {Section: "X-Fleet", Name: "Replaces", Value: "a.service"}}
	expectError("CreateUnit with conflicting options", c.CreateUnit(&schema.Unit{Name: "bad.service", Options: bad}), 400, "Global cannot be used with Replaces")
}

func waitUnit(c client.API, name, current string) *schema.Unit {
	var u *schema.Unit
	wait(name+" "+current, func() (bool, error) {
		var err error
		u, err = c.Unit(name)
		return u != nil && u.CurrentState == current && u.MachineID != "", err
	}, func() string { return fmt.Sprintf("%+v", u) })
	return u
}

func waitState(c client.API, name, active string) *schema.UnitState {
	var st *schema.UnitState
	wait(name+" "+active, func() (bool, error) {
		var err error
		st, err = c.UnitState(name)
		return st != nil && st.SystemdActiveState == active, err
	}, func() string { return fmt.Sprintf("%+v", st) })
	return st
}

// wait polls done for a while, as fleetctl does; a busy machine may take
// its time.
func wait(what string, done func() (bool, error), last func() string) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		ok, err := done()
		check("wait for "+what, err)
		if ok {
			return
		}
	}
	fail("waited 2m for %s; last: %s", what, last())
}

func expectError(what string, err error, code int, msg string) {
	e, ok := err.(*googleapi.Error)
	if !ok || e.Code != code || !strings.Contains(e.Message, msg) {
		fail("%s: %v (%T), want googleapi error %d with %q", what, err, err, code, msg)
	}
}

func check(what string, err error) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "origclient: "+format+"\n", args...)
	os.Exit(1)
}
