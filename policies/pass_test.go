package policies

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/leader"
)

// burst is a cluster where units already run (plain ones, and a global unit
// on the SSD machines) and many more were just started, with fleet's rules
// between them: metadata, MachineID pins, Conflicts globs, and MachineOf
// followers of units started with them.
func burst(t *testing.T, seed uint64) *registry.Snapshot {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 8))
	s := &registry.Snapshot{Jobs: map[string]*registry.Job{}, Machines: map[string]*registry.Machine{},
		States: map[string]map[string]*registry.UnitState{}, DefaultPolicy: registry.BuiltinPolicy}
	regions, disks := []string{"east", "west", "north"}, []string{"ssd", "hdd"}
	var ids []string
	for i := range 12 {
		id := fmt.Sprintf("m%02d", i)
		ids = append(ids, id)
		s.Machines[id] = &registry.Machine{ID: id, Metadata: map[string]string{"region": regions[rng.IntN(3)], "disk": disks[i%2]}}
	}
	job := func(name string, xfleet ...string) *registry.Job {
		body := "[Service]\nExecStart=/bin/true\n"
		if len(xfleet) > 0 {
			body += "[X-Fleet]\n" + strings.Join(xfleet, "\n") + "\n"
		}
		f, err := unitfile.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		j := &registry.Job{Name: name, Desired: registry.Launched, Unit: f, Hash: f.Hash()}
		s.Jobs[name] = j
		return j
	}
	for u := range 20 {
		job(fmt.Sprintf("old%02d.service", u)).Target = ids[rng.IntN(len(ids))]
	}
	job("g.service", "Global=true", "MachineMetadata=disk=ssd")
	s.States["g.service"] = map[string]*registry.UnitState{}
	for _, id := range ids {
		if s.Machines[id].Metadata["disk"] == "ssd" {
			s.States["g.service"][id] = &registry.UnitState{Name: "g.service", Machine: id}
		}
	}
	for u := range 150 {
		var xf []string
		switch rng.IntN(8) {
		case 0:
			xf = append(xf, "MachineMetadata=region="+regions[rng.IntN(3)])
		case 1:
			xf = append(xf, "MachineMetadata=disk=hdd", "MachineMetadata=region="+regions[rng.IntN(3)])
		case 2:
			xf = append(xf, fmt.Sprintf("Conflicts=u%d*.service", rng.IntN(10)))
		case 3:
			xf = append(xf, "Conflicts=old1*.service g.service")
		case 4:
			if u > 0 {
				xf = append(xf, fmt.Sprintf("MachineOf=u%03d.service", rng.IntN(u)))
			}
		case 5:
			xf = append(xf, "MachineID="+ids[rng.IntN(len(ids))])
		}
		job(fmt.Sprintf("u%03d.service", u), xf...)
	}
	return s
}

// anyConflict hides which unit a "conflicts with" reason names: of several
// on a machine, the default policy names the first it meets in a Go map.
var anyConflict = regexp.MustCompile(`conflicts with [^;)]+`)

// outcome is where each unit that should run ended up, or why it did not.
func outcome(s *registry.Snapshot, why map[string]string) string {
	var out []string
	for _, n := range s.JobNames() {
		switch j := s.Jobs[n]; {
		case j.Global():
		case j.Target != "":
			out = append(out, n+" on "+j.Target)
		default:
			out = append(out, n+" unplaced: "+anyConflict.ReplaceAllString(why[n], "conflicts with a unit"))
		}
	}
	return strings.Join(out, "\n")
}

// apply takes plan's schedule changes into s and returns why units were
// left unplaced.
func apply(t *testing.T, s *registry.Snapshot, plan leader.Plan) map[string]string {
	t.Helper()
	for _, a := range plan.Actions {
		if a.Kind != leader.Schedule {
			t.Fatalf("unexpected %s", a)
		}
		a.Job.Target = a.Machine
	}
	why := map[string]string{}
	for _, u := range plan.Unplaced {
		why[u.Job.Name] = u.Reason
	}
	return why
}

// TestOnePassPlacesAsOnePassPerUnit: a pass is told the cluster once and
// then each of its placements (Placer.Begin), and must decide exactly as
// if each unit were placed in a pass of its own, in the pass's order (name
// order, MachineOf followers last), with the cluster given whole every
// time, as the leader did before passes.
func TestOnePassPlacesAsOnePassPerUnit(t *testing.T) {
	h := newHost(t, Config{})
	placers := map[string]func() leader.Placer{
		"wasm":   func() leader.Placer { return &Placer{Builtin: Builtin(h)} },
		"native": func() leader.Placer { return &Placer{Builtin: BuiltinNative(h)} },
	}
	for name, newPlacer := range placers {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/seed=%d", name, seed), func(t *testing.T) {
				reconcile := func(p leader.Placer, s *registry.Snapshot) leader.Plan {
					return leader.Reconcile(context.Background(), s, p)
				}

				all := burst(t, seed)
				plan := reconcile(newPlacer(), all)
				if len(plan.Actions) < 100 {
					t.Fatalf("one pass placed only %d units: the test needs a pass that places many", len(plan.Actions))
				}
				once := outcome(all, apply(t, all, plan))

				// The same units, started one by one: each pass has one
				// unit to place. Units not yet started are inactive, so
				// every pass knows them all (rules between units).
				each := burst(t, seed)
				var order []*registry.Job
				for _, n := range each.JobNames() {
					if j := each.Jobs[n]; j.Target == "" && !j.Global() {
						j.Desired = registry.Inactive
						order = append(order, j)
					}
				}
				sort.SliceStable(order, func(a, b int) bool {
					return len(order[a].Spec().Peers) == 0 && len(order[b].Spec().Peers) > 0
				})
				p := newPlacer()
				why := map[string]string{}
				for _, j := range order {
					j.Desired = registry.Launched
					plan := reconcile(p, each)
					if len(plan.Actions)+len(plan.Unplaced) != 1 {
						t.Fatalf("starting %s: plan %v, unplaced %v; want one decision", j.Name, plan.Actions, plan.Unplaced)
					}
					for n, r := range apply(t, each, plan) {
						why[n] = r
						each.Jobs[n].Desired = registry.Inactive // not offered again: one decision per unit
					}
				}
				if got := outcome(each, why); got != once {
					t.Errorf("one pass:\n%s\n\none pass per unit:\n%s", once, got)
				}
			})
		}
	}
}
