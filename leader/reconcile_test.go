package leader

import (
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// world builds a snapshot from a compact description: machines as
// "id:k=v,k=v" and units as "name desired [target] [| X-Fleet lines]".
func world(t *testing.T, machines []string, units []string) *registry.Snapshot {
	t.Helper()
	s := &registry.Snapshot{Jobs: map[string]*registry.Job{}, Machines: map[string]*registry.Machine{}}
	for _, m := range machines {
		id, md, _ := strings.Cut(m, ":")
		mach := &registry.Machine{ID: id, Metadata: map[string]string{}}
		for _, kv := range strings.Split(md, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				mach.Metadata[k] = v
			}
		}
		s.Machines[id] = mach
	}
	for _, u := range units {
		head, xfleet, _ := strings.Cut(u, "|")
		f := strings.Fields(head)
		body := "[Service]\nExecStart=/bin/true\n"
		if xfleet != "" {
			body += "[X-Fleet]\n" + strings.ReplaceAll(strings.TrimSpace(xfleet), ";", "\n") + "\n"
		}
		uf, err := unitfile.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		j := &registry.Job{Name: f[0], Desired: registry.DesiredState(f[1]), Unit: uf, Hash: uf.Hash()}
		if len(f) > 2 {
			j.Target = f[2]
		}
		s.Jobs[j.Name] = j
	}
	return s
}

func describe(p Plan) string {
	var out []string
	for _, a := range p.Actions {
		verb := map[ActionKind]string{Schedule: "schedule", Unschedule: "unschedule"}[a.Kind]
		out = append(out, verb+" "+a.Job.Name+" "+a.Machine)
	}
	for _, u := range p.Unplaced {
		out = append(out, "unplaced "+u.Job.Name)
	}
	return strings.Join(out, ", ")
}

func TestReconcile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		machines []string
		units    []string
		want     string
	}{
		{"nothing to do", []string{"m1"}, []string{"a.service inactive"}, ""},
		{"place on least loaded, ties by ID",
			[]string{"m2", "m1", "m3"}, []string{"a.service launched", "b.service loaded", "c.service launched", "d.service launched"},
			"schedule a.service m1, schedule b.service m2, schedule c.service m3, schedule d.service m1"},
		{"count existing load",
			[]string{"m1", "m2"}, []string{"a.service launched m1", "b.service launched"},
			"schedule b.service m2"},
		{"inactive units leave their machine and free it",
			[]string{"m1", "m2"}, []string{"a.service inactive m1", "b.service launched m2", "c.service launched"},
			"unschedule a.service m1, schedule c.service m1"},
		{"units of a dead machine move",
			[]string{"m2", "m3"}, []string{"a.service launched m1", "b.service launched m2"},
			"unschedule a.service m1, schedule a.service m3"},
		{"metadata decides",
			[]string{"m1:region=east", "m2:region=west,disk=ssd", "m3:region=west"},
			[]string{"a.service launched | MachineMetadata=region=west;MachineMetadata=disk=ssd", "b.service launched | MachineMetadata=region=east"},
			"schedule a.service m2, schedule b.service m1"},
		{"metadata values of one key are OR",
			[]string{"m1:region=east", "m2:region=west"},
			[]string{"a.service launched m2", "b.service launched | MachineMetadata=region=west;MachineMetadata=region=east"},
			"schedule b.service m1"},
		{"a replaced unit leaves its replacer's machine",
			[]string{"m1", "m2"}, []string{"a.service launched m1", "kick.service launched m1 | Replaces=a.service"},
			"unschedule a.service m1, schedule a.service m2"},
		{"circular replacement moves nothing",
			[]string{"m1", "m2"}, []string{"a.service launched m1 | Replaces=b.service", "b.service launched m1 | Replaces=a.service"},
			""},
		{"no machine fits", []string{"m1:region=east"}, []string{"a.service launched | MachineMetadata=region=mars"}, "unplaced a.service"},
		{"no machines", nil, []string{"a.service launched"}, "unplaced a.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := describe(Reconcile(world(t, tc.machines, tc.units), LeastLoaded{}))
			if got != tc.want {
				t.Errorf("plan:\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

// fleetRules is LeastLoaded that says units named "custom*" are placed by a
// custom policy and the rest by fleet's rules.
type fleetRules struct{ LeastLoaded }

func (fleetRules) FleetRules(j *registry.Job) bool { return !strings.HasPrefix(j.Name, "custom") }

// TestRecheck: fleet's rules are checked again where units run (fleet's
// engine, loop A). The real rules are the built-in policy's; LeastLoaded
// only knows metadata, which also shows the guard against a placer that
// disagrees.
func TestRecheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		machines []string
		units    []string
		want     string
	}{
		{"metadata that no longer fits moves the unit",
			[]string{"m1:disk=hdd", "m2:disk=ssd"}, []string{"a.service launched m1 | MachineMetadata=disk=ssd", "b.service launched m1"},
			"unschedule a.service m1, schedule a.service m2"},
		{"of two conflicting units on one machine the first stays",
			[]string{"m1", "m2"}, []string{"a.service launched m1", "b.service launched m1 | Conflicts=a.service"},
			"unschedule b.service m1, schedule b.service m2"},
		{"a placer that puts the unit back changes nothing",
			[]string{"m1", "m2"}, []string{"a.service launched m2", "b.service launched m1 | MachineOf=a.service"},
			""},
		{"units of a custom policy stay",
			[]string{"m1:disk=hdd", "m2:disk=ssd"}, []string{"custom.service launched m1 | MachineMetadata=disk=ssd"},
			""},
		{"a unit that fits stays",
			[]string{"m1:disk=ssd"}, []string{"a.service launched m1 | MachineMetadata=disk=ssd"},
			""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(Reconcile(world(t, tc.machines, tc.units), fleetRules{})); got != tc.want {
				t.Errorf("plan:\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

// TestGlobalUnitsCountAsLoad: a global unit is never scheduled, but where
// its agents run it, it counts toward the machine's load.
func TestGlobalUnitsCountAsLoad(t *testing.T) {
	s := world(t, []string{"m1", "m2"}, []string{"g.service launched | Global=true", "a.service launched"})
	s.States = map[string]map[string]*registry.UnitState{"g.service": {"m1": {Name: "g.service", Machine: "m1"}}}
	if got := describe(Reconcile(s, LeastLoaded{})); got != "schedule a.service m2" {
		t.Fatalf("plan: %s, want a.service on m2 (m1 runs the global unit)", got)
	}
}

func TestUnplacedReasonNamesMachines(t *testing.T) {
	p := Reconcile(world(t, []string{"m1:region=east"}, []string{"a.service launched | MachineMetadata=region=mars"}), LeastLoaded{})
	if len(p.Unplaced) != 1 || !strings.Contains(p.Unplaced[0].Reason, "m1") || !strings.Contains(p.Unplaced[0].Reason, "region=mars") {
		t.Fatalf("unplaced = %+v", p.Unplaced)
	}
}

// A placer that names a machine that does not exist must not crash the
// leader or schedule anything.
type badPlacer struct{}

func (badPlacer) Begin([]Candidate) Pass       { return badPlacer{} }
func (badPlacer) Place(*registry.Job) Decision { return Decision{Machine: "ghost"} }
func (badPlacer) Placed(*registry.Job, string) {}

func TestReconcileIgnoresNonsensePlacement(t *testing.T) {
	p := Reconcile(world(t, []string{"m1"}, []string{"a.service launched"}), badPlacer{})
	if len(p.Actions) != 0 || len(p.Unplaced) != 1 || !strings.Contains(p.Unplaced[0].Reason, "ghost") {
		t.Fatalf("plan = %s (%+v)", describe(p), p.Unplaced)
	}
}
