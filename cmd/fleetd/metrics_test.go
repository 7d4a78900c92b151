package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wasmfleet/fleet/testcluster"
)

// value is the sum of the matching series across machines' scrapes.
func value(scrapes [][]*dto.MetricFamily, name string, match ...string) float64 {
	var sum float64
	for _, fams := range scrapes {
		v, _ := testcluster.MetricSum(fams, name, match...)
		sum += v
	}
	return sum
}

// TestMetrics runs "fleetd dev", finds each machine's metrics URL in the
// banner and the state file, scrapes them, starts a unit and a unit no
// machine can take, and sees the leader's and the agents' counters move.
func TestMetrics(t *testing.T) {
	d := startDev(t, "--machines", "2")
	var urls []string
	for _, m := range d.st.Machines {
		if !strings.HasPrefix(m.Metrics, "http://127.0.0.1:") || !strings.HasSuffix(m.Metrics, "/metrics") {
			t.Fatalf("machine %s: metrics URL %q, want one on 127.0.0.1", m.ID, m.Metrics)
		}
		if !strings.Contains(d.out.String(), m.Metrics) {
			t.Errorf("the banner lacks %s:\n%s", m.Metrics, d.out.String())
		}
		urls = append(urls, m.Metrics)
	}
	scrapeAll := func() ([][]*dto.MetricFamily, error) {
		var all [][]*dto.MetricFamily
		for _, u := range urls {
			ss, err := testcluster.ScrapeMetrics(context.Background(), u)
			if err != nil {
				return nil, err
			}
			all = append(all, ss)
		}
		return all, nil
	}
	var before [][]*dto.MetricFamily
	testcluster.Eventually(t, 20*time.Second, func() error {
		var err error
		if before, err = scrapeAll(); err != nil {
			return err
		}
		if n := value(before, "fleet_leader_is_leader"); n != 1 {
			return fmt.Errorf("%v machines say they lead, want 1", n)
		}
		if value(before, "fleet_leader_reconciles_total") == 0 {
			return fmt.Errorf("the leader has not reconciled yet")
		}
		return nil
	})
	for i, fams := range before {
		exported := map[string]dto.MetricType{}
		for _, f := range fams {
			exported[f.GetName()] = f.GetType()
		}
		for name, typ := range map[string]dto.MetricType{
			"fleet_build_info":                           dto.MetricType_GAUGE,
			"fleet_agent_units":                          dto.MetricType_GAUGE,
			"fleet_agent_session_renewals_total":         dto.MetricType_COUNTER,
			"fleet_agent_session_renewal_failures_total": dto.MetricType_COUNTER,
			"fleet_agent_sessions_created_total":         dto.MetricType_COUNTER,
			"fleet_leader_is_leader":                     dto.MetricType_GAUGE,
			"fleet_leader_reconciles_total":              dto.MetricType_COUNTER,
			"fleet_leader_reconcile_duration_seconds":    dto.MetricType_HISTOGRAM,
			"fleet_leader_placements_total":              dto.MetricType_COUNTER,
			"fleet_leader_unplaceable_units":             dto.MetricType_GAUGE,
		} {
			if got, ok := exported[name]; !ok {
				t.Errorf("machine %d exports no %s", i+1, name)
			} else if got != typ {
				t.Errorf("machine %d exports %s as a %s, want a %s", i+1, name, got, typ)
			}
		}
	}

	dir := t.TempDir()
	unit := func(name, xfleet string) string {
		p := filepath.Join(dir, name)
		body := "[Service]\nExecStart=/bin/sh -c \"while true; do sleep 0.2; done\"\n" + xfleet
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, args := range [][]string{
		{"start", unit("hello.service", "")},
		{"start", "--no-block", unit("nowhere.service", "\n[X-Fleet]\nMachineMetadata=hostname=machine-9\n")},
	} {
		cmd := exec.Command(testcluster.Binary(t, "fleetctl"), args...)
		cmd.Env = append(os.Environ(), "FLEETCTL_ENDPOINT="+d.st.ConsulHTTPAddr)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fleetctl %v: %v\n%s", args, err, out)
		}
	}

	testcluster.Eventually(t, 20*time.Second, func() error {
		after, err := scrapeAll()
		if err != nil {
			return err
		}
		grew := func(name string, by float64, match ...string) error {
			if b, a := value(before, name, match...), value(after, name, match...); a < b+by {
				return fmt.Errorf("%s%v went from %v to %v, want +%v", name, match, b, a, by)
			}
			return nil
		}
		for _, err := range []error{
			grew("fleet_leader_reconciles_total", 1),
			grew("fleet_leader_reconcile_duration_seconds_count", 1),
			grew("fleet_leader_placements_total", 1),
			grew("fleet_leader_policy_call_duration_seconds_count", 2), // hello, and nowhere at least once
			grew("fleet_agent_driver_operations_total", 1, "op", "load", "result", "ok"),
			grew("fleet_agent_driver_operations_total", 1, "op", "start", "result", "ok"),
			grew("fleet_agent_session_renewals_total", 2), // dev machines beat every second
		} {
			if err != nil {
				return err
			}
		}
		if n := value(after, "fleet_agent_units", "state", "active"); n != 1 {
			return fmt.Errorf("fleet_agent_units{state=active} = %v across machines, want 1", n)
		}
		if n := value(after, "fleet_leader_unplaceable_units"); n != 1 {
			return fmt.Errorf("fleet_leader_unplaceable_units = %v, want 1 (nowhere.service)", n)
		}
		if n := value(after, "fleet_agent_driver_operations_total", "result", "error"); n != 0 {
			return fmt.Errorf("%v driver operations failed", n)
		}
		return nil
	})
	var pids []int
	for _, m := range d.st.Machines {
		pids = append(pids, m.PID)
	}
	d.stop(append(pids, d.st.ConsulPID)...)
}
