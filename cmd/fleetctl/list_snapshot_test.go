package main

import (
	"bytes"
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
