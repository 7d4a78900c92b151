package policies

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/leader"
)

var update = flag.Bool("update", false, "rewrite the golden files of the scenario tests")

// TestScenarios runs the scripts in testdata/scenarios through the leader's
// reconcile and the built-in policy in WebAssembly, and compares what they
// print with the .golden file beside each (go test -update rewrites them).
// cmd/fleetctl's TestScenariosEndToEnd runs the same scripts on a real
// cluster and compares with the same golden files.
//
// Commands, one a line ('#' starts a comment):
//
//	machine ID [k=v,k=v]       a machine joins, or changes its metadata
//	kill ID                    a machine dies
//	start NAME [| Key=Value]...  a unit with these [X-Fleet] options should run
//	stop NAME                  the unit should not run (desired state inactive)
//	restart NAME               the stopped unit should run again
//	destroy NAME               the unit is gone
//	show                       reconcile until nothing changes, print where every unit is
func TestScenarios(t *testing.T) {
	h := newHost(t, Config{})
	files, _ := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/scenarios")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			placer := &Placer{Builtin: Builtin(h)}
			got := runScenario(t, file, placer)
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", file, golden, got, want)
			}
		})
	}
}

func runScenario(t *testing.T, file string, placer *Placer) string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := &registry.Snapshot{Jobs: map[string]*registry.Job{}, Machines: map[string]*registry.Machine{},
		States: map[string]map[string]*registry.UnitState{}, DefaultPolicy: registry.BuiltinPolicy}
	var out strings.Builder
	for n, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fmt.Fprintf(&out, "> %s\n", line)
		head, opts, _ := strings.Cut(line, "|")
		f := strings.Fields(head)
		bad := func() { t.Fatalf("%s:%d: cannot read %q", file, n+1, line) }
		switch f[0] {
		case "machine":
			if len(f) < 2 {
				bad()
			}
			md := map[string]string{}
			if len(f) > 2 {
				for _, kv := range strings.Split(f[2], ",") {
					k, v, _ := strings.Cut(kv, "=")
					md[k] = v
				}
			}
			s.Machines[f[1]] = &registry.Machine{ID: f[1], Metadata: md}
		case "kill":
			delete(s.Machines, f[1])
		case "start":
			body := "[Service]\nExecStart=/bin/true\n"
			if opts != "" {
				body += "[X-Fleet]\n"
				for _, o := range strings.Split(opts, "|") {
					body += strings.TrimSpace(o) + "\n"
				}
			}
			uf, err := unitfile.Parse(body)
			if err != nil {
				t.Fatalf("%s:%d: %v", file, n+1, err)
			}
			s.Jobs[f[1]] = &registry.Job{Name: f[1], Desired: registry.Launched, Unit: uf, Hash: uf.Hash()}
		case "destroy":
			delete(s.Jobs, f[1])
		case "stop":
			s.Jobs[f[1]].Desired = registry.Inactive
		case "restart":
			s.Jobs[f[1]].Desired = registry.Launched
		case "show":
			settle(t, s, placer, &out)
		default:
			bad()
		}
	}
	return out.String()
}

// runGlobals plays every machine's agent for global units: each runs the
// global units agent.Wanted gives it, which the leader sees as their states.
func runGlobals(s *registry.Snapshot) {
	for n, j := range s.Jobs {
		if j.Global() {
			delete(s.States, n)
		}
	}
	for _, id := range s.MachineIDs() {
		for n := range agent.Wanted(s, id, s.Machines[id].Metadata) {
			if s.Jobs[n].Global() {
				if s.States[n] == nil {
					s.States[n] = map[string]*registry.UnitState{}
				}
				s.States[n][id] = &registry.UnitState{Name: n, Machine: id}
			}
		}
	}
}

// settle reconciles until nothing changes and prints every unit's place.
func settle(t *testing.T, s *registry.Snapshot, placer *Placer, out *strings.Builder) {
	var last leader.Plan
	for round := 0; round < 10; round++ {
		runGlobals(s)
		last = leader.Reconcile(context.Background(), s, placer)
		if len(last.Actions) == 0 {
			break
		}
		for _, a := range last.Actions {
			switch a.Kind {
			case leader.Schedule:
				a.Job.Target = a.Machine
			case leader.Unschedule:
				a.Job.Target = ""
			}
		}
	}
	if len(last.Actions) != 0 {
		t.Fatalf("no steady state after 10 reconciles: %v", last.Actions)
	}
	why := map[string]string{}
	for _, u := range last.Unplaced {
		why[u.Job.Name] = u.Reason
	}
	runGlobals(s)
	for _, n := range s.JobNames() {
		if j := s.Jobs[n]; j.Global() {
			var on []string
			for id := range s.States[n] {
				on = append(on, id)
			}
			sort.Strings(on)
			fmt.Fprintf(out, "%s global, on %s\n", n, strings.Join(append(on, "no machine")[:max(1, len(on))], " "))
		} else if j.Target != "" {
			fmt.Fprintf(out, "%s on %s\n", n, j.Target)
		} else if j.Desired == registry.Inactive {
			fmt.Fprintf(out, "%s inactive\n", n)
		} else {
			fmt.Fprintf(out, "%s unplaced: %s\n", n, why[n])
		}
	}
}
