package leader_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/registrytest"
	. "github.com/wasmfleet/fleet/leader"
	"github.com/wasmfleet/fleet/policies"
)

// rules is the Placer a leader runs: fleet's rules, the built-in policy
// (natively: the same decisions as its WebAssembly build, without compiling
// it for every test).
func rules(t *testing.T) Placer {
	t.Helper()
	h, err := policies.NewHost(context.Background(), policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return &policies.Placer{Builtin: policies.BuiltinNative(h)}
}

func reconcile(t *testing.T, s *registry.Snapshot) Plan {
	t.Helper()
	return Reconcile(context.Background(), s, rules(t))
}

func describe(p Plan) string {
	var out []string
	for _, a := range p.Actions {
		out = append(out, a.Kind.String()+" "+a.Job.Name+" "+a.Machine)
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
		{"a follower comes after its target in the pass, whatever their names",
			[]string{"m1", "m2"}, []string{"x.service launched m1", "a-side.service launched | MachineOf=b.service", "b.service launched"},
			"schedule b.service m2, schedule a-side.service m2"},
		{"a replaced unit leaves its replacer's machine",
			[]string{"m1", "m2"}, []string{"a.service launched m1", "kick.service launched m1 | Replaces=a.service"},
			"unschedule a.service m1, schedule a.service m2"},
		{"a replacer among units without rules",
			[]string{"m1", "m2"}, []string{"a.service launched m1", "b.service launched m1", "kick.service launched m1 | Replaces=a.service", "x.service launched m2"},
			"unschedule a.service m1, schedule a.service m2"},
		{"circular replacement moves nothing",
			[]string{"m1", "m2"}, []string{"a.service launched m1 | Replaces=b.service", "b.service launched m1 | Replaces=a.service"},
			""},
		{"no machine fits", []string{"m1:region=east"}, []string{"a.service launched | MachineMetadata=region=mars"}, "unplaced a.service"},
		{"no machines", nil, []string{"a.service launched"}, "unplaced a.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(reconcile(t, registrytest.Snapshot(t, tc.machines, tc.units))); got != tc.want {
				t.Errorf("plan:\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

// TestRecheck: fleet's rules are checked again where units run (fleet's
// engine, loop A), for the units the built-in policy places.
func TestRecheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		machines []string
		units    []string
		want     string
		cause    Cause // of the first unschedule
	}{
		{"metadata that no longer fits moves the unit",
			[]string{"m1:disk=hdd", "m2:disk=ssd"}, []string{"a.service launched m1 | MachineMetadata=disk=ssd", "b.service launched m1"},
			"unschedule a.service m1, schedule a.service m2", "machine_metadata"},
		{"of two conflicting units on one machine the first stays",
			[]string{"m1", "m2"}, []string{"a.service launched m1", "b.service launched m1 | Conflicts=a.service"},
			"unschedule b.service m1, schedule b.service m2", "conflicts"},
		{"a conflict declared by the first unit moves the second",
			[]string{"m1", "m2"}, []string{"a.service launched m1 | Conflicts=b.service", "b.service launched m1"},
			"unschedule b.service m1, schedule b.service m2", "conflicts"},
		{"a conflict an earlier unit names is found past units without rules",
			[]string{"m1", "m2"}, []string{"a.service launched m1 | Conflicts=z.service", "b.service launched m1", "c.service launched m1", "z.service launched m1"},
			"unschedule z.service m1, schedule z.service m2", "conflicts"},
		{"a unit that names a conflict is checked against units without rules",
			[]string{"m1", "m2"}, []string{"a.service launched m1", "b.service launched m1", "c.service launched m1 | Conflicts=b.service"},
			"unschedule c.service m1, schedule c.service m2", "conflicts"},
		{"a follower goes where its target went",
			[]string{"m1", "m2"}, []string{"a.service launched m2", "b.service launched m1 | MachineOf=a.service"},
			"unschedule b.service m1, schedule b.service m2", "machine_of"},
		{"a follower whose target sorts after it stays with it",
			[]string{"m1", "m2"}, []string{"a-side.service launched m1 | MachineOf=b.service", "b.service launched m1"},
			"", ""},
		{"a pin to another machine moves the unit",
			[]string{"m1", "m2"}, []string{"a.service launched m1 | MachineID=m2"},
			"unschedule a.service m1, schedule a.service m2", "machine_id"},
		{"units of an uploaded policy stay",
			[]string{"m1:disk=hdd", "m2:disk=ssd"}, []string{"custom.service launched m1 | MachineMetadata=disk=ssd;Policy=spread"},
			"", ""},
		{"a unit that fits stays",
			[]string{"m1:disk=ssd"}, []string{"a.service launched m1 | MachineMetadata=disk=ssd"},
			"", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := reconcile(t, registrytest.Snapshot(t, tc.machines, tc.units))
			if got := describe(plan); got != tc.want {
				t.Errorf("plan:\n got: %s\nwant: %s", got, tc.want)
			}
			if tc.cause != "" && (len(plan.Actions) == 0 || plan.Actions[0].Cause != tc.cause) {
				t.Errorf("actions %s, want the first caused by %q", describe(plan), tc.cause)
			}
		})
	}
}

// TestGlobalUnitsCountAsLoad: a global unit is never scheduled, but where
// fleet's rules have machines run it, it counts toward the machine's load
// and for the rules between units.
func TestGlobalUnitsCountAsLoad(t *testing.T) {
	s := registrytest.Snapshot(t, []string{"m1:disk=ssd", "m2:disk=ssd,zone=b", "m3:disk=hdd"}, []string{
		"g.service launched | Global=true;MachineMetadata=disk=ssd", "h.service launched | Global=true;MachineMetadata=zone=b",
		"a.service launched", "b.service launched | Conflicts=h.service"})
	if got := describe(reconcile(t, s)); got != "schedule a.service m3, schedule b.service m1" {
		t.Fatalf("plan: %s, want a.service on m3 (the others run global units) and b.service off m2 (it conflicts with h)", got)
	}
}

func TestUnplacedSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		machines []string
		unit     string
		cause    Cause
		reason   string
	}{
		{"metadata", []string{"m1:region=east", "m2:region=west"}, "a.service launched | MachineMetadata=region=mars", "machine_metadata",
			"no machine fits (m1: metadata does not match MachineMetadata region=mars; m2: metadata does not match MachineMetadata region=mars)"},
		{"the rule that turns down most machines", []string{"m1:region=east", "m2:region=west", "m3:region=west"},
			"a.service launched | MachineMetadata=region=west;MachineID=m1", "machine_id",
			"no machine fits (m1: metadata does not match MachineMetadata region=west; m2: unit is pinned to MachineID m1; m3: unit is pinned to MachineID m1)"},
		{"no machines", nil, "a.service launched", CauseNoMachines, "no live machines"},
		{"a policy not uploaded", []string{"m1"}, "a.service launched | Policy=nowhere", CausePolicyError,
			"placement failed: policy nowhere is not uploaded (fleetctl policy list)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := reconcile(t, registrytest.Snapshot(t, tc.machines, []string{tc.unit}))
			if len(p.Unplaced) != 1 || p.Unplaced[0].Cause != tc.cause || p.Unplaced[0].Reason != tc.reason {
				t.Fatalf("unplaced = %+v\nwant cause %q, reason %q", p.Unplaced, tc.cause, tc.reason)
			}
		})
	}
}

// TestSchedulesNamePolicy: a schedule action says which policy chose.
func TestSchedulesNamePolicy(t *testing.T) {
	p := reconcile(t, registrytest.Snapshot(t, []string{"m1"}, []string{"a.service launched"}))
	if len(p.Actions) != 1 || p.Actions[0].Policy != registry.BuiltinPolicy || p.Actions[0].Cause != CausePlaced {
		t.Fatalf("actions = %+v", p.Actions)
	}
}

// A placer that names a machine that does not exist must not crash the
// leader or schedule anything.
type badPlacer struct{}

func (badPlacer) Begin(context.Context, *registry.Snapshot, []Candidate) Pass { return badPlacer{} }
func (badPlacer) Place(*registry.Job) Decision                                { return Decision{Machine: "ghost"} }
func (badPlacer) Placed(*registry.Job, string)                                {}

func TestReconcileIgnoresNonsensePlacement(t *testing.T) {
	p := Reconcile(context.Background(), registrytest.Snapshot(t, []string{"m1"}, []string{"a.service launched"}), badPlacer{})
	if len(p.Actions) != 0 || len(p.Unplaced) != 1 || p.Unplaced[0].Cause != CauseNotLive || !strings.Contains(p.Unplaced[0].Reason, "ghost") {
		t.Fatalf("plan = %s (%+v)", describe(p), p.Unplaced)
	}
}

// TestRunNeedsPlacer: a leader without a Placer does not start, rather than
// place units some other way.
func TestRunNeedsPlacer(t *testing.T) {
	if err := Run(context.Background(), Config{}); !errors.Is(err, ErrNoPlacer) {
		t.Fatalf("Run without a Placer: %v", err)
	}
}
