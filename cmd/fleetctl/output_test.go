package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/version"
	"github.com/wasmfleet/fleet/testcluster"
)

var updateGolden = flag.Bool("update", false, "rewrite cmd/fleetctl/testdata/*.golden")

// Fixed machine IDs make the list tables the same on every run: placement
// ties, short IDs, hashes and IPs (127.0.2.N in start order) are all fixed.
const (
	goldenM1 = "11111111111111111111111111111111"
	goldenM2 = "22222222222222222222222222222222"
	goldenM3 = "33333333333333333333333333333333"
)

// listWorld starts three machines with fixed IDs and puts units in every
// state the list commands show: launched (web), loaded (db), inactive
// (idle), global on every machine (logs), and unplaceable (nowhere). It
// returns once the machines report the units settled.
func listWorld(t *testing.T) *testcluster.Cluster {
	t.Helper()
	c := testcluster.Start(t, 0)
	c.AddMachineAs(goldenM1, "hostname=machine-1")
	c.AddMachineAs(goldenM2, "hostname=machine-2,disk=ssd")
	c.AddMachineAs(goldenM3, "hostname=machine-3")
	c.WaitMachines(3)
	ep := c.Consul.URL()
	dir := t.TempDir()
	unit := func(name, desc, xfleet string) string {
		return testcluster.WriteUnit(t, dir, name, listUnitBody(desc, xfleet))
	}
	mustCtl(t, ep, "start", unit("web.service", "Web frontend", "MachineMetadata=hostname=machine-1"))
	mustCtl(t, ep, "load", unit("db.service", "Database", "MachineMetadata=disk=ssd"))
	mustCtl(t, ep, "submit", unit("idle.service", "", ""))
	mustCtl(t, ep, "start", unit("logs.service", "Log shipper", "Global=true"))
	mustCtl(t, ep, "start", "--no-block", unit("nowhere.service", "", "MachineMetadata=hostname=machine-9"))

	reg := c.Registry()
	testcluster.Eventually(t, 30*time.Second, func() error {
		s, err := reg.Snapshot(context.Background(), 0, 0)
		if err != nil {
			return err
		}
		if s.Jobs["nowhere.service"] == nil || s.Jobs["nowhere.service"].Unplaced == "" {
			return fmt.Errorf("nowhere.service has no reason yet")
		}
		want := map[string]string{
			"web.service/" + goldenM1:  "active running",
			"db.service/" + goldenM2:   "inactive dead",
			"logs.service/" + goldenM1: "active running",
			"logs.service/" + goldenM2: "active running",
			"logs.service/" + goldenM3: "active running",
		}
		got := map[string]string{}
		for name, byMachine := range s.States {
			for id, st := range byMachine {
				got[name+"/"+id] = st.Active + " " + st.Sub
			}
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("unit states %v, want %v", got, want)
		}
		return nil
	})
	return c
}

// listUnitBody is the body of a unit of listWorld: a service with
// Description desc and the X-Fleet section xfleet, each left out when "".
func listUnitBody(desc, xfleet string) string {
	body := "[Service]\nExecStart=/bin/sh -c \"trap 'exit 0' INT TERM; while true; do sleep 0.2; done\"\n"
	if desc != "" {
		body = "[Unit]\nDescription=" + desc + "\n\n" + body
	}
	if xfleet != "" {
		body += "\n[X-Fleet]\n" + xfleet + "\n"
	}
	return body
}

// TestListOutput checks the three list commands' tables against golden
// files, and their --output json field by field.
func TestListOutput(t *testing.T) {
	c := listWorld(t)
	ep := c.Consul.URL()

	t.Run("golden", func(t *testing.T) {
		checkListGoldens(t, func(args ...string) string { return mustCtl(t, ep, args...) })
	})

	t.Run("json", func(t *testing.T) {
		files := listJSON(t, ep, "list-unit-files", "--output", "json")
		// --fields, --full and --no-legend do not change JSON.
		if again := listJSON(t, ep, "list-unit-files", "-o", "json", "--fields", "unit", "--no-legend"); !reflect.DeepEqual(again, files) {
			t.Errorf("list-unit-files JSON changed with --fields and --no-legend:\n%v\n%v", again, files)
		}
		hash := map[string]string{}
		var names []string
		for _, f := range files {
			checkKeys(t, "list-unit-files", f, "unit", "hash", "dstate", "state", "target", "target_ip", "global", "reason", "desc")
			names = append(names, f["unit"].(string))
			hash[f["unit"].(string)] = f["hash"].(string)
			if h := f["hash"].(string); len(h) != 40 {
				t.Errorf("%s: hash %q is not the full 40-character hash", f["unit"], h)
			}
		}
		if want := []string{"db.service", "idle.service", "logs.service", "nowhere.service", "web.service"}; !slices.Equal(names, want) {
			t.Fatalf("list-unit-files JSON units %v, want %v", names, want)
		}
		for i, want := range []map[string]any{
			{"dstate": "loaded", "state": "loaded", "target": goldenM2, "target_ip": "127.0.2.2", "global": false, "reason": "", "desc": "Database"},
			{"dstate": "inactive", "state": "inactive", "target": "", "target_ip": "", "global": false, "reason": "", "desc": ""},
			{"dstate": "launched", "state": "", "target": "", "target_ip": "", "global": true, "reason": "", "desc": "Log shipper"},
			{"dstate": "launched", "state": "inactive", "target": "", "target_ip": "", "global": false, "desc": ""},
			{"dstate": "launched", "state": "launched", "target": goldenM1, "target_ip": "127.0.2.1", "global": false, "reason": "", "desc": "Web frontend"},
		} {
			checkFields(t, files[i], want)
		}
		if r, _ := files[3]["reason"].(string); !strings.Contains(r, "metadata does not match MachineMetadata hostname=machine-9") {
			t.Errorf("nowhere.service reason %q", r)
		}

		units := listJSON(t, ep, "list-units", "-o", "json")
		type key struct{ unit, machine string }
		var got []key
		for _, u := range units {
			checkKeys(t, "list-units", u, "unit", "machine", "machine_ip", "active", "sub", "load", "hash")
			got = append(got, key{u["unit"].(string), u["machine"].(string)})
		}
		want := []key{{"db.service", goldenM2}, {"logs.service", goldenM1}, {"logs.service", goldenM2}, {"logs.service", goldenM3}, {"web.service", goldenM1}}
		if !slices.Equal(got, want) {
			t.Fatalf("list-units JSON rows %v, want %v", got, want)
		}
		ips := map[string]string{goldenM1: "127.0.2.1", goldenM2: "127.0.2.2", goldenM3: "127.0.2.3"}
		for _, u := range units {
			active, sub := "active", "running"
			if u["unit"] == "db.service" {
				active, sub = "inactive", "dead"
			}
			checkFields(t, u, map[string]any{"machine_ip": ips[u["machine"].(string)], "active": active, "sub": sub,
				"load": "loaded", "hash": hash[u["unit"].(string)]})
		}

		// Every machine runs the fleetd built from this tree, which
		// publishes its version.
		machines := listJSON(t, ep, "list-machines", "--output=json")
		for i, want := range []map[string]any{
			{"machine": goldenM1, "ip": "127.0.2.1", "metadata": map[string]any{"hostname": "machine-1"}, "units": 2.0, "version": version.Version},
			{"machine": goldenM2, "ip": "127.0.2.2", "metadata": map[string]any{"hostname": "machine-2", "disk": "ssd"}, "units": 2.0, "version": version.Version},
			{"machine": goldenM3, "ip": "127.0.2.3", "metadata": map[string]any{"hostname": "machine-3"}, "units": 1.0, "version": version.Version},
		} {
			if len(machines) != 3 {
				t.Fatalf("list-machines JSON has %d machines, want 3: %v", len(machines), machines)
			}
			checkKeys(t, "list-machines", machines[i], "machine", "ip", "metadata", "units", "version")
			checkFields(t, machines[i], want)
		}
	})

	t.Run("bad output format", func(t *testing.T) {
		for _, cmd := range []string{"list-units", "list-unit-files", "list-machines"} {
			out, errOut, code := ctl(t, ep, cmd, "--output", "yaml")
			if code != 1 || out != "" || !strings.Contains(errOut, `unknown output format "yaml"; allowed: table, json`) {
				t.Errorf("%s --output yaml: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
			}
		}
	})
}

// checkListGoldens runs the list commands with the arguments each golden
// file records, through fleetctl (which returns what a command printed),
// and compares their output with the files.
func checkListGoldens(t *testing.T, fleetctl func(args ...string) string) {
	t.Helper()
	for _, tc := range []struct {
		golden string
		runs   [][]string
	}{
		{"list-machines.golden", [][]string{
			{"list-machines"},
			{"list-machines", "--full", "--fields", "machine,ip,units,metadata"},
			{"list-machines", "--no-legend", "--fields", "machine,units"},
		}},
		{"list-units.golden", [][]string{
			{"list-units"},
			{"list-units", "--full", "--fields", "unit,machine,load,active,sub,hash"},
			{"list-units", "--no-legend"},
		}},
		{"list-unit-files.golden", [][]string{
			{"list-unit-files"},
			{"list-unit-files", "--full", "--fields", "unit,desc,dstate,state,target,global,reason"},
			{"list-unit-files", "--no-legend", "--fields", "unit,hash"},
		}},
	} {
		var b strings.Builder
		for i, args := range tc.runs {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "$ fleetctl %s\n%s", strings.Join(args, " "), fleetctl(args...))
		}
		checkGolden(t, filepath.Join("testdata", tc.golden), b.String())
	}
}

// listJSON runs a list command that prints JSON and decodes its array.
func listJSON(t *testing.T, ep string, args ...string) []map[string]any {
	t.Helper()
	out := mustCtl(t, ep, args...)
	var v []map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("fleetctl %v: not a JSON array of objects: %v\n%s", args, err, out)
	}
	return v
}

// checkKeys fails unless obj has exactly the documented fields.
func checkKeys(t *testing.T, what string, obj map[string]any, keys ...string) {
	t.Helper()
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("%s JSON fields %v, want %v", what, got, keys)
	}
}

// checkFields compares the fields of obj named in want.
func checkFields(t *testing.T, obj, want map[string]any) {
	t.Helper()
	label := obj["unit"]
	if label == nil {
		label = obj["machine"]
	}
	for k, w := range want {
		if !reflect.DeepEqual(obj[k], w) {
			t.Errorf("%v: %s = %#v, want %#v", label, k, obj[k], w)
		}
	}
}

// checkGolden compares got with a golden file; go test -update rewrites it.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestListOutput -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -run TestListOutput -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
