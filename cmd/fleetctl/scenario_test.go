package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/leader"
	"github.com/wasmfleet/fleet/policies"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestScenariosEndToEnd runs the placement scenarios of
// policies/testdata/scenarios on a real cluster: fleetd machines with the
// IDs and metadata the script names, real Consul, units started with
// fleetctl. Each "show" waits until the cluster settles (every unit that
// should run is running where it is scheduled, or says why it waits; every
// global unit runs where its machines' agents should run it) and prints the
// same lines as the placement-level run, compared with the same golden file.
func TestScenariosEndToEnd(t *testing.T) {
	files, err := filepath.Glob("../../policies/testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel() // each scenario has its own Consul and machines
			want, err := os.ReadFile(strings.TrimSuffix(file, ".txt") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			if got := runScenarioEndToEnd(t, file); got != string(want) {
				t.Errorf("end to end, %s printed:\n%s\nwant (the placement-level golden):\n%s", file, got, want)
			}
		})
	}
}

func runScenarioEndToEnd(t *testing.T, file string) string {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, 0)
	t.Cleanup(func() { // registered after the cluster's: runs before it stops
		if t.Failed() {
			for _, m := range c.Machines {
				b, _ := os.ReadFile(filepath.Join(m.Dir, "fleetd.log"))
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("machine %s, fleetd.log (last lines):\n%s", m.ID, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
	})
	ep := c.Consul.URL()
	reg := c.Registry()
	dir := t.TempDir()
	host, err := policies.NewHost(context.Background(), policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(context.Background()) })
	placer := &policies.Placer{Builtin: policies.BuiltinNative(host)}
	live := map[string]*testcluster.Machine{}
	var out strings.Builder
	var starts []string // consecutive start lines, started together
	// How long the picture must stay the same before a show trusts it: after
	// a machine comes or goes, long enough for a new leader to take over.
	quiet := 900 * time.Millisecond
	flush := func() {
		if len(starts) == 0 {
			return
		}
		sort.Strings(starts) // the leader places in name order; so do the writes
		mustCtl(t, ep, append([]string{"start", "--no-block"}, starts...)...)
		starts = nil
	}
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fmt.Fprintf(&out, "> %s\n", line)
		head, opts, _ := strings.Cut(line, "|")
		f := strings.Fields(head)
		if f[0] != "start" {
			flush()
		}
		switch f[0] {
		case "machine":
			md := ""
			if len(f) > 2 {
				md = f[2]
			}
			if m := live[f[1]]; m != nil { // new metadata: the machine restarts with it
				m.Kill()
			}
			live[f[1]] = c.AddMachineAs(f[1], md)
			testcluster.WaitPublished(t, reg, f[1], md)
			quiet = 3 * time.Second // a restarted machine may have been the leader
		case "kill":
			live[f[1]].Kill()
			delete(live, f[1])
			testcluster.WaitPublished(t, reg, f[1], "gone")
			quiet = 3 * time.Second // the leader may have died
		case "start":
			body := testcluster.HelloService
			if opts != "" {
				body += "\n[X-Fleet]\n"
				for _, o := range strings.Split(opts, "|") {
					body += strings.TrimSpace(o) + "\n"
				}
			}
			starts = append(starts, testcluster.WriteUnit(t, dir, f[1], body))
		case "stop": // the script's stop is desired state inactive: fleetctl unload
			mustCtl(t, ep, "unload", "--no-block", f[1])
		case "restart":
			mustCtl(t, ep, "start", "--no-block", f[1])
		case "destroy":
			mustCtl(t, ep, "destroy", f[1])
		case "show":
			out.WriteString(settled(t, reg, placer, quiet))
			quiet = 900 * time.Millisecond
		default:
			t.Fatalf("%s: cannot read %q", file, line)
		}
	}
	return out.String()
}

// settled waits until the cluster is at rest and describes it in the
// placement-level scenario's words. At rest: every unit runs where it is
// scheduled or says why it waits, a leader's pass over what Consul holds
// would write nothing (the leader has caught up, however busy the host),
// and the picture stayed the same for quiet.
func settled(t *testing.T, reg *registry.Registry, placer leader.Placer, quiet time.Duration) string {
	t.Helper()
	var last string
	var since time.Time
	testcluster.Eventually(t, 60*time.Second, func() error {
		s, err := reg.Snapshot(context.Background(), 0, 0)
		if err != nil {
			return err
		}
		desc, err := describeAtRest(s)
		if err != nil {
			last = ""
			return err
		}
		if ws := leader.Writes(reg, s, leader.Reconcile(context.Background(), s, placer)); len(ws) > 0 {
			last = ""
			return fmt.Errorf("the leader's next pass would write %d keys", len(ws))
		}
		if desc != last {
			last, since = desc, time.Now()
		}
		if time.Since(since) < quiet {
			time.Sleep(300 * time.Millisecond)
			return fmt.Errorf("not yet stable")
		}
		return nil
	})
	return last
}

func describeAtRest(s *registry.Snapshot) (string, error) {
	var b strings.Builder
	for _, n := range s.JobNames() {
		j := s.Jobs[n]
		switch {
		case j.Global():
			var on []string
			for _, id := range s.MachineIDs() {
				_, runs := s.States[n][id]
				_, wanted := agent.Wanted(s, id, s.Machines[id].Metadata)[n]
				if runs != wanted {
					return "", fmt.Errorf("global %s: runs on %s %v, should %v", n, id, runs, wanted)
				}
				if runs {
					on = append(on, id)
				}
			}
			fmt.Fprintf(&b, "%s global, on %s\n", n, strings.Join(append(on, "no machine")[:max(1, len(on))], " "))
		case j.Desired == registry.Inactive:
			if j.Target != "" || len(s.States[n]) > 0 {
				return "", fmt.Errorf("%s is inactive but still scheduled or running", n)
			}
			fmt.Fprintf(&b, "%s inactive\n", n)
		case j.Target != "":
			st := s.States[n][j.Target]
			if s.Machines[j.Target] == nil || st == nil || st.Active != "active" {
				return "", fmt.Errorf("%s scheduled to %s is not running there yet (state there: %+v)", n, j.Target, st)
			}
			if others := slices.DeleteFunc(keys(s.States[n]), func(id string) bool { return id == j.Target }); len(others) > 0 {
				return "", fmt.Errorf("%s also runs on %v", n, others)
			}
			fmt.Fprintf(&b, "%s on %s\n", n, j.Target)
		case j.Unplaced != "":
			fmt.Fprintf(&b, "%s unplaced: %s\n", n, j.Unplaced)
		default:
			return "", fmt.Errorf("%s is neither placed nor told why not", n)
		}
	}
	return b.String(), nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
