package throughput

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// body is every unit's: a process that runs until stopped.
const body = "[Service]\nExecStart=/bin/sleep infinity\n"

// poll is how often the benchmark looks at the machines' systemd.
const poll = 200 * time.Millisecond

// BenchmarkSystemdStart starts FLEET_BENCH_UNITS (1000) instances of a
// template on 3 systemd machines with one "fleetctl start --no-block", and,
// in the same iteration, the floor: the same number of instances of the
// same template started straight through each machine's systemd, one
// "systemctl start --no-block" per machine, all machines at once. Each
// start is timed until systemd on the machines reports every unit active;
// fleet's also until fleetctl list-units shows them all active. Then
// fleet's units are stopped and destroyed, each timed until systemd agrees.
//
// Metrics per iteration: floor-s, fleet-s and their ratio (the goal is at
// most 1.5), reported-s, stop-s and destroy-s (fleet), floor-stop-s; and
// the CPU the machines' systemd (each one's PID 1) used for each start and
// stop, added up over the machines: floor-systemd-cpu-s, fleet-systemd-cpu-s,
// floor-stop-systemd-cpu-s, stop-systemd-cpu-s.
//
//	make bench-systemd
func BenchmarkSystemdStart(b *testing.B) {
	units := 1000
	if v := os.Getenv("FLEET_BENCH_UNITS"); v != "" {
		var err error
		if units, err = strconv.Atoi(v); err != nil || units < 3 {
			b.Fatalf("FLEET_BENCH_UNITS=%q: want a number of units, 3 or more", v)
		}
	}
	c := testcluster.StartSystemdTTL(b, 3, 10*time.Second)
	w := &world{b: b, c: c, ep: c.Consul.URL(), units: units}
	w.prepare()
	var floor, fleet, reported, stop, destroy, floorStop time.Duration
	var cpu [4]time.Duration // systemd's: floor start, floor stop, fleet start, fleet stop
	timed := func(into *time.Duration, cpuInto *time.Duration, f func() time.Duration) {
		c := w.systemdCPU()
		*into += f()
		*cpuInto += w.systemdCPU() - c
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		timed(&floor, &cpu[0], w.floorStart)
		timed(&floorStop, &cpu[1], w.floorStop)
		timed(&fleet, &cpu[2], w.fleetStart)
		reported += w.reported()
		timed(&stop, &cpu[3], w.fleetStop)
		destroy += w.fleetDestroy()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(floor.Seconds()/n, "floor-s")
	b.ReportMetric(fleet.Seconds()/n, "fleet-s")
	b.ReportMetric(fleet.Seconds()/floor.Seconds(), "fleet/floor")
	b.ReportMetric(reported.Seconds()/n, "reported-s")
	b.ReportMetric(stop.Seconds()/n, "stop-s")
	b.ReportMetric(destroy.Seconds()/n, "destroy-s")
	b.ReportMetric(floorStop.Seconds()/n, "floor-stop-s")
	for i, name := range []string{"floor-systemd-cpu-s", "floor-stop-systemd-cpu-s", "fleet-systemd-cpu-s", "stop-systemd-cpu-s"} {
		b.ReportMetric(cpu[i].Seconds()/n, name)
	}
}

// systemdCPU is the CPU the machines' systemd (each one's PID 1) has used
// so far, added up.
func (w *world) systemdCPU() time.Duration {
	var d time.Duration
	for _, m := range w.c.Machines {
		d += testcluster.CPUTimeT(w.b, m.Box.PID())
	}
	return d
}

// world is the benchmark's cluster and units.
type world struct {
	b     *testing.B
	c     *testcluster.SystemdCluster
	ep    string
	units int
	names []string // fleet's units: bench@1.service ...
}

// prepare writes the template for fleet (submitted once) and for the floor
// (installed in each machine, with one daemon-reload), and names the units.
func (w *world) prepare() {
	dir := w.b.TempDir()
	tpl := filepath.Join(dir, "bench@.service")
	if err := os.WriteFile(tpl, []byte(body), 0o644); err != nil {
		w.b.Fatal(err)
	}
	testcluster.MustFleetctl(w.b, w.ep, "submit", tpl)
	for i := 1; i <= w.units; i++ {
		w.names = append(w.names, fmt.Sprintf("bench@%d.service", i))
	}
	w.each(func(m *testcluster.SystemdMachine, _ int) {
		m.Output("sh", "-c", "printf '%s' '"+body+"' > /run/systemd/system/floor@.service && systemctl daemon-reload")
	})
}

// each runs f for every machine at once and waits for all.
func (w *world) each(f func(m *testcluster.SystemdMachine, k int)) {
	var wg sync.WaitGroup
	for k, m := range w.c.Machines {
		wg.Add(1)
		go func() { defer wg.Done(); f(m, k) }()
	}
	wg.Wait()
}

// count is how many units matching pattern each machine's systemd lists in
// state (systemctl list-units --state), summed.
func (w *world) count(pattern, state string) int {
	var mu sync.Mutex
	total := 0
	w.each(func(m *testcluster.SystemdMachine, _ int) {
		out := m.Output("systemctl", "list-units", "--all", "--no-legend", "--plain", "--state="+state, pattern)
		n := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, ".service") {
				n++
			}
		}
		mu.Lock()
		total += n
		mu.Unlock()
	})
	return total
}

// until polls the machines until done says so, and returns how long since
// start that took.
func (w *world) until(start time.Time, what string, done func() bool) time.Duration {
	limit := start.Add(10 * time.Minute)
	for !done() {
		if time.Now().After(limit) {
			w.b.Fatalf("%s: not done after 10 minutes", what)
		}
		time.Sleep(poll)
	}
	return time.Since(start)
}

// floorStart starts the floor's units: machine k gets its share, all
// machines at once.
func (w *world) floorStart() time.Duration {
	start := time.Now()
	w.each(func(m *testcluster.SystemdMachine, k int) {
		args := []string{"systemctl", "start", "--no-block"}
		for i := k + 1; i <= w.units; i += len(w.c.Machines) {
			args = append(args, fmt.Sprintf("floor@%d.service", i))
		}
		if out, err := m.Exec(w.b.Context(), args...); err != nil {
			w.b.Fatalf("%v\n%s", err, out)
		}
	})
	return w.until(start, "floor start", func() bool { return w.count("floor@*", "active") == w.units })
}

func (w *world) floorStop() time.Duration {
	start := time.Now()
	w.each(func(m *testcluster.SystemdMachine, _ int) {
		m.Output("systemctl", "stop", "--no-block", "floor@*.service")
	})
	d := w.until(start, "floor stop", func() bool { return w.count("floor@*", "active") == 0 })
	w.each(func(m *testcluster.SystemdMachine, _ int) { m.Output("systemctl", "reset-failed", "floor@*.service") })
	return d
}

// fleetStart starts fleet's units with one fleetctl start --no-block and
// waits until systemd runs them all.
func (w *world) fleetStart() time.Duration {
	start := time.Now()
	testcluster.MustFleetctl(w.b, w.ep, append([]string{"start", "--no-block"}, w.names...)...)
	return w.until(start, "fleet start", func() bool { return w.count("bench@*", "active") == w.units })
}

// reported waits until fleetctl list-units shows every unit active: what
// fleet knows, once the machines have reported their units' states. It
// returns how long after the machines ran them all.
func (w *world) reported() time.Duration {
	return w.until(time.Now(), "fleet reports", func() bool {
		n := 0
		for _, r := range testcluster.Rows(testcluster.MustFleetctl(w.b, w.ep, "list-units", "--fields", "unit,active")) {
			if len(r) == 2 && r[1] == "active" {
				n++
			}
		}
		return n == w.units
	})
}

func (w *world) fleetStop() time.Duration {
	start := time.Now()
	testcluster.MustFleetctl(w.b, w.ep, append([]string{"stop", "--no-block"}, w.names...)...)
	return w.until(start, "fleet stop", func() bool { return w.count("bench@*", "active") == 0 })
}

// fleetDestroy destroys fleet's units and waits until systemd has none of
// them loaded.
func (w *world) fleetDestroy() time.Duration {
	start := time.Now()
	testcluster.MustFleetctl(w.b, w.ep, append([]string{"destroy"}, w.names...)...)
	return w.until(start, "fleet destroy", func() bool { return w.count("bench@*", "loaded") == 0 })
}
