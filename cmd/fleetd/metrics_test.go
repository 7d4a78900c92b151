package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/metrics"
	"github.com/wasmfleet/fleet/testcluster"
)

// scrape reads a fleetd's /metrics.
func scrape(url string) (metrics.Samples, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != metrics.ContentType {
		return nil, fmt.Errorf("GET %s: %s, %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	return metrics.ParseText(resp.Body)
}

// value is the sum of the matching series across machines' scrapes.
func value(scrapes []metrics.Samples, name string, match ...string) float64 {
	var sum float64
	for _, ss := range scrapes {
		v, _ := ss.Sum(name, match...)
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
	scrapeAll := func() ([]metrics.Samples, error) {
		var all []metrics.Samples
		for _, u := range urls {
			ss, err := scrape(u)
			if err != nil {
				return nil, err
			}
			all = append(all, ss)
		}
		return all, nil
	}
	var before []metrics.Samples
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
	for i, ss := range before {
		names := strings.Join(ss.Names(), " ")
		for _, want := range []string{
			"fleet_build_info", "fleet_agent_units", "fleet_agent_session_renewals_total", "fleet_agent_session_renewal_failures_total",
			"fleet_agent_sessions_created_total", "fleet_leader_is_leader", "fleet_leader_reconciles_total",
			"fleet_leader_reconcile_duration_seconds_bucket", "fleet_leader_placements_total", "fleet_leader_unplaceable_units",
		} {
			if !strings.Contains(" "+names+" ", " "+want+" ") {
				t.Errorf("machine %d exports no %s: %s", i+1, want, names)
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
