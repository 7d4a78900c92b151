package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// BenchmarkIdleAgent measures the CPU an agent uses while a systemd machine
// runs N units and nothing changes: one iteration is one second of idling,
// reported as percent of one core. fleet's agents polled every unit every
// second and burned CPU at ~500 units; the target is below 2%.
//
//	go test -run '^$' -bench IdleAgent -benchtime 20x -count 3 ./cmd/fleetctl/
func BenchmarkIdleAgent(b *testing.B) {
	for _, n := range []int{100, 500} {
		b.Run(fmt.Sprintf("units=%d", n), func(b *testing.B) {
			c := testcluster.StartSystemd(b, 1)
			ep := c.Consul.URL()
			dir := b.TempDir()
			var args []string
			for i := 0; i < n; i++ {
				p := filepath.Join(dir, fmt.Sprintf("idle%03d.service", i))
				if err := os.WriteFile(p, []byte("[Service]\nExecStart=/bin/sleep infinity\n"), 0o644); err != nil {
					b.Fatal(err)
				}
				args = append(args, p)
			}
			var out, errOut strings.Builder
			if code := run(append([]string{"--endpoint", ep, "start"}, args...), &out, &errOut); code != 0 {
				b.Fatalf("start %d units: exit %d\n%s", n, code, errOut.String())
			}
			if got := strings.Count(out.String(), "launched on"); got != n {
				b.Fatalf("%d of %d units launched", got, n)
			}
			time.Sleep(2 * time.Second) // let the burst of state reports settle
			pid := c.Machines[0].Fleetd.PID()
			before := testcluster.CPUTimeT(b, pid)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				time.Sleep(time.Second)
			}
			b.StopTimer()
			used := (testcluster.CPUTimeT(b, pid) - before).Seconds()
			b.ReportMetric(100*used/float64(b.N), "%cpu")
		})
	}
}
