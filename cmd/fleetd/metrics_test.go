package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
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
// banner and the state file, scrapes them (fleet's metrics beside the Go
// runtime's and the process's), starts a unit and a unit no machine can
// take, sees the leader's and the agents' counters move, and compares what
// is exported with docs/operations.md's table.
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
			"fleet_consul_read_bytes_total":              dto.MetricType_COUNTER,
			"fleet_agent_units":                          dto.MetricType_GAUGE,
			"fleet_agent_session_renewals_total":         dto.MetricType_COUNTER,
			"fleet_agent_session_renewal_failures_total": dto.MetricType_COUNTER,
			"fleet_agent_session_read_failures_total":    dto.MetricType_COUNTER,
			"fleet_agent_sessions_created_total":         dto.MetricType_COUNTER,
			"fleet_leader_is_leader":                     dto.MetricType_GAUGE,
			"fleet_leader_reconciles_total":              dto.MetricType_COUNTER,
			"fleet_leader_reconcile_duration_seconds":    dto.MetricType_HISTOGRAM,
			"fleet_leader_placements_total":              dto.MetricType_COUNTER,
			"fleet_leader_unplaceable_units":             dto.MetricType_GAUGE,
			// the Go runtime's and the process's, beside fleet's own
			"go_goroutines":                 dto.MetricType_GAUGE,
			"go_memstats_heap_alloc_bytes":  dto.MetricType_GAUGE,
			"process_resident_memory_bytes": dto.MetricType_GAUGE,
			"process_cpu_seconds_total":     dto.MetricType_COUNTER,
		} {
			if got, ok := exported[name]; !ok {
				t.Errorf("machine %d exports no %s", i+1, name)
			} else if got != typ {
				t.Errorf("machine %d exports %s as a %s, want a %s", i+1, name, got, typ)
			}
		}
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
			if v, _ := testcluster.MetricSum(fams, name); v <= 0 {
				t.Errorf("machine %d: %s = %v, want more than 0", i+1, name, v)
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

	var after [][]*dto.MetricFamily
	testcluster.Eventually(t, 20*time.Second, func() error {
		var err error
		if after, err = scrapeAll(); err != nil {
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
			grew("fleet_leader_placements_total", 1, "policy", "default"),
			grew("fleet_leader_policy_call_duration_seconds_count", 2), // hello, and nowhere at least once
			grew("fleet_agent_driver_operations_total", 1, "op", "load", "result", "ok"),
			grew("fleet_agent_driver_operations_total", 1, "op", "start", "result", "ok"),
			grew("fleet_agent_session_renewals_total", 2), // dev machines beat every second
			grew("fleet_consul_read_bytes_total", 1),      // the new units' schedule and body, at least
		} {
			if err != nil {
				return err
			}
		}
		if n := value(after, "fleet_agent_units", "state", "active"); n != 1 {
			return fmt.Errorf("fleet_agent_units{state=active} = %v across machines, want 1", n)
		}
		if n := value(after, "fleet_leader_unplaceable_units", "cause", "machine_metadata"); n != 1 {
			return fmt.Errorf("fleet_leader_unplaceable_units{cause=machine_metadata} = %v, want 1 (nowhere.service)", n)
		}
		if n := value(after, "fleet_leader_unplaceable_units"); n != 1 {
			return fmt.Errorf("fleet_leader_unplaceable_units = %v in all, want 1", n)
		}
		if n := value(after, "fleet_agent_driver_operations_total", "result", "error"); n != 0 {
			return fmt.Errorf("%v driver operations failed", n)
		}
		return nil
	})
	checkDocumented(t, after)

	var pids []int
	for _, m := range d.st.Machines {
		pids = append(pids, m.PID)
	}
	d.stop(append(pids, d.st.ConsulPID)...)
}

// checkDocumented compares the fleet_ metrics that the machines' scrapes
// export, together, with the table in docs/operations.md: each documented
// metric is there with its type and labels, and none is undocumented.
func checkDocumented(t *testing.T, scrapes [][]*dto.MetricFamily) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	// | `fleet_agent_driver_operations_total` | counter | `op`, `result` | ...
	row := regexp.MustCompile("(?m)^\\| `(fleet_[a-z_]+)` \\| ([a-z]+) \\| ([^|]*)\\|")
	documented := map[string]string{} // name: "type [labels]"
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		labels := strings.Fields(strings.NewReplacer("`", "", ",", "").Replace(m[3]))
		sort.Strings(labels)
		documented[m[1]] = fmt.Sprintf("%s %v", m[2], labels)
	}
	if len(documented) == 0 {
		t.Fatal("docs/operations.md has no table of fleet_ metrics")
	}
	exported := map[string]string{}
	for _, fams := range scrapes {
		for _, f := range fams {
			if !strings.HasPrefix(f.GetName(), "fleet_") {
				continue
			}
			var labels []string
			for _, l := range f.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
			}
			sort.Strings(labels)
			exported[f.GetName()] = fmt.Sprintf("%s %v", strings.ToLower(f.GetType().String()), labels)
		}
	}
	for name, want := range documented {
		if got, ok := exported[name]; !ok {
			t.Errorf("docs/operations.md lists %s (%s), which no machine exports", name, want)
		} else if got != want {
			t.Errorf("%s: exported as %q, documented as %q", name, got, want)
		}
	}
	for name, got := range exported {
		if _, ok := documented[name]; !ok {
			t.Errorf("%s (%s) is exported but not in docs/operations.md", name, got)
		}
	}
}

// TestMetricsServer serves a fleetd's registry as fleetd does: GET gives
// the text format with fleet_build_info and the Go runtime's metrics, HEAD
// is allowed, any other method is not.
func TestMetricsServer(t *testing.T) {
	m := &metricsServer{handler: promhttp.HandlerFor(newMetricsRegistry(), promhttp.HandlerOpts{})}
	defer m.close()
	addr, err := m.listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + "/metrics"
	fams, err := testcluster.ScrapeMetrics(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fleet_build_info", "go_goroutines", "process_resident_memory_bytes"} {
		if v, ok := testcluster.MetricSum(fams, name); !ok || v <= 0 {
			t.Errorf("%s = %v (found: %v), want more than 0", name, v, ok)
		}
	}
	for method, want := range map[string]int{http.MethodHead: http.StatusOK, http.MethodPost: http.StatusMethodNotAllowed, http.MethodDelete: http.StatusMethodNotAllowed} {
		req, _ := http.NewRequest(method, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s /metrics: %s, want %d", method, resp.Status, want)
		}
	}
}

// TestPprof: Go's profiles are served beside the metrics with --pprof, and
// not without it.
func TestPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		m := &metricsServer{handler: promhttp.HandlerFor(newMetricsRegistry(), promhttp.HandlerOpts{}), pprof: on}
		addr, err := m.listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
		m.close()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if served := resp.StatusCode == http.StatusOK && strings.Contains(string(body), "goroutine profile"); served != on {
			t.Errorf("--pprof=%v: %s %.80q", on, resp.Status, body)
		}
	}
}
