package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// listSnapshot is the cluster listWorld builds, written by hand as the
// registry would read it: three machines; web launched on the first, db
// loaded on the second, idle inactive, logs global and running on all
// three, nowhere waiting for a machine-9.
func listSnapshot(t *testing.T) *registry.Snapshot {
	t.Helper()
	s := &registry.Snapshot{
		Index: 42,
		Jobs:  map[string]*registry.Job{},
		Machines: map[string]*registry.Machine{
			goldenM1: {ID: goldenM1, IP: "127.0.2.1", Metadata: map[string]string{"hostname": "machine-1"}},
			goldenM2: {ID: goldenM2, IP: "127.0.2.2", Metadata: map[string]string{"hostname": "machine-2", "disk": "ssd"}},
			goldenM3: {ID: goldenM3, IP: "127.0.2.3", Metadata: map[string]string{"hostname": "machine-3"}},
		},
		States: map[string]map[string]*registry.UnitState{},
	}
	job := func(name, desc, xfleet string, desired registry.DesiredState, target string) *registry.Job {
		f, err := unitfile.Parse(listUnitBody(desc, xfleet))
		if err != nil {
			t.Fatal(err)
		}
		j := &registry.Job{Name: name, Hash: f.Hash(), Desired: desired, Target: target, Unit: f}
		s.Jobs[name] = j
		return j
	}
	report := func(j *registry.Job, machine string, state registry.DesiredState, active, sub string) {
		if s.States[j.Name] == nil {
			s.States[j.Name] = map[string]*registry.UnitState{}
		}
		s.States[j.Name][machine] = &registry.UnitState{Name: j.Name, Machine: machine, Hash: j.Hash.String(),
			State: state, Load: "loaded", Active: active, Sub: sub}
	}
	web := job("web.service", "Web frontend", "MachineMetadata=hostname=machine-1", registry.Launched, goldenM1)
	report(web, goldenM1, registry.Launched, "active", "running")
	db := job("db.service", "Database", "MachineMetadata=disk=ssd", registry.Loaded, goldenM2)
	report(db, goldenM2, registry.Loaded, "inactive", "dead")
	job("idle.service", "", "", registry.Inactive, "")
	logs := job("logs.service", "Log shipper", "Global=true", registry.Launched, "")
	for _, m := range []string{goldenM1, goldenM2, goldenM3} {
		report(logs, m, registry.Launched, "active", "running")
	}
	nowhere := job("nowhere.service", "", "MachineMetadata=hostname=machine-9", registry.Launched, "")
	nowhere.Unplaced = "no machine fits (11111111: metadata does not match MachineMetadata hostname=machine-9; " +
		"22222222: metadata does not match MachineMetadata hostname=machine-9; " +
		"33333333: metadata does not match MachineMetadata hostname=machine-9)"
	return s
}

// TestListFromSnapshot renders list-machines, list-units and list-unit-files
// from listSnapshot with no Consul, and checks them against the golden
// files TestListOutput checks the same world against on a real cluster.
func TestListFromSnapshot(t *testing.T) {
	s := listSnapshot(t)
	checkListGoldens(t, func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		c := newCLI(&out, &errOut)
		c.state = fixedCluster{s}
		// Nothing listens on port 1: a read that went to Consul would fail.
		if code := c.execute(append([]string{"--endpoint", "http://127.0.0.1:1"}, args...)); code != 0 {
			t.Fatalf("fleetctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out.String(), errOut.String())
		}
		return out.String()
	})
}

// TestListMachinesVersion: list-machines shows the fleetd version each
// machine publishes, as a rolling upgrade leaves them mixed, and "-" (""
// in JSON) for a machine whose older fleetd publishes none.
func TestListMachinesVersion(t *testing.T) {
	s := listSnapshot(t)
	s.Machines[goldenM1].Version = "v1.2.3"
	s.Machines[goldenM2].Version = "v1.3.0"
	list := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		c := newCLI(&out, &errOut)
		c.state = fixedCluster{s}
		if code := c.execute(append([]string{"--endpoint", "http://127.0.0.1:1", "list-machines"}, args...)); code != 0 {
			t.Fatalf("fleetctl list-machines %v: exit %d\nstderr: %s", args, code, errOut.String())
		}
		return out.String()
	}
	want := "MACHINE\t\tIP\t\tVERSION\n" +
		"11111111...\t127.0.2.1\tv1.2.3\n" +
		"22222222...\t127.0.2.2\tv1.3.0\n" +
		"33333333...\t127.0.2.3\t-\n"
	if got := list("--fields", "machine,ip,version"); got != want {
		t.Errorf("list-machines --fields machine,ip,version:\n%s\nwant:\n%s", got, want)
	}
	var rows []machineJSON
	if err := json.Unmarshal([]byte(list("-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.Version)
	}
	if want := []string{"v1.2.3", "v1.3.0", ""}; !slices.Equal(got, want) {
		t.Errorf("list-machines -o json versions %q, want %q", got, want)
	}
}
