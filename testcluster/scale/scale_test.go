package scale_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
	"github.com/wasmfleet/fleet/testcluster/scale"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// TestRun is the benchmark at small scale: every unit started with fleetctl
// ends up acknowledged by a live machine, the simulated machines' drivers
// run exactly the units the cluster says they run, and the figures are
// there.
func TestRun(t *testing.T) { testRun(t, 0) }

// TestRunClientAgents is TestRun with the simulated machines spread over
// two Consul client agents.
func TestRunClientAgents(t *testing.T) { testRun(t, 2) }

func testRun(t *testing.T, agents int) {
	const machines, units = 5, 20
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := scale.Run(ctx, scale.BenchOptions{
		Fleetd: testcluster.Binary(t, "fleetd"), Fleetctl: testcluster.Binary(t, "fleetctl"),
		Machines: machines, Units: units, Chunk: 7, Dir: t.TempDir(), Baseline: time.Second, ConsulAgents: agents,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res.Print(&out, "test")
	t.Log("\n" + out.String())

	total := 0
	for _, n := range res.PerMachine {
		total += n
	}
	if total != units {
		t.Errorf("%d units acknowledged across machines, want %d", total, units)
	}
	if len(res.PerMachine) > machines+2 {
		t.Errorf("units on %d machines; there are %d", len(res.PerMachine), machines+2)
	}
	if len(res.Simulated) != machines {
		t.Errorf("%d simulated machines run units; want all %d (least loaded placement)", len(res.Simulated), machines)
	}
	for id, n := range res.Simulated {
		if res.PerMachine[id] != n {
			t.Errorf("simulated machine %s runs %d units; the cluster has %d acknowledged there", id, n, res.PerMachine[id])
		}
	}
	if res.Elapsed <= 0 || res.Seen["states"] < int64(units-2*units/(machines+2)-units/4) {
		// The two real fleetds' units are seen by reads; about 2 of 7
		// machines' shares, with room for an uneven spread.
		t.Errorf("completion after %s, seen as %v: want most of the %d units' state writes seen in process", res.Elapsed, res.Seen, units)
	}
	if b, ok := res.LeaderReadBytes(); !ok || b <= 0 {
		t.Errorf("the leader read %v bytes per unit (counted: %v), want more than 0", b, ok)
	}
	if res.SettledCPU["consul"] <= 0 || res.SettledWindow < res.Elapsed {
		t.Errorf("Consul server's CPU %v s over %s until settled (placement took %s)", res.SettledCPU["consul"], res.SettledWindow, res.Elapsed)
	}
	if res.Fleetctl["PUT txn"] == 0 {
		t.Errorf("no fleetctl transaction counted for %d units: its --debug lines were not read (%v)", units, res.Fleetctl)
	}
	// The simulated machines write through the client agents, which
	// count those requests; the server alone sees only the leader's and
	// fleetctl's transactions, a fraction of the machines'.
	if agents > 0 && (res.ConsulAgents != agents || res.HTTP["PUT v1_txn"] < float64(res.Agents["PUT txn"])/2) {
		t.Errorf("%d client agents, %v transactions counted by Consul, %d sent by the simulated machines; want %d and at least half as many (the agents' telemetry not added?)",
			res.ConsulAgents, res.HTTP["PUT v1_txn"], res.Agents["PUT txn"], agents)
	}
	if res.Raft["total"] == 0 || len(res.HTTP) == 0 {
		t.Errorf("no Consul telemetry: raft %v, http %v", res.Raft, res.HTTP)
	}
	if n := res.Leader.Sum("fleet_leader_placements_total"); n < units {
		t.Errorf("the leader's metrics count %v placements over the run, want at least %d", n, units)
	}
	if res.LeaderRSS == 0 || res.IdleRSS == 0 || len(res.ListUnits) != 5 || len(res.ListUnitFiles) != 5 {
		t.Errorf("figures missing: leader %d kB, idle %d kB, list-units %v, list-unit-files %v", res.LeaderRSS, res.IdleRSS, res.ListUnits, res.ListUnitFiles)
	}
	for i := range res.ListUnitsCPU {
		// The host's busy time is counted in ticks of 0.01 s per CPU.
		most := float64(runtime.NumCPU()) * (1 + 0.02/res.ListUnits[i].Seconds())
		if res.ListUnitsCPU[i] <= 0 || res.ListUnitsBusy[i] < 0 || res.ListUnitsBusy[i] > most {
			t.Errorf("list-units run %d: fleetctl's CPU %v, the rest of the host %.2f cores; want some CPU, and cores the host has", i, res.ListUnitsCPU[i], res.ListUnitsBusy[i])
		}
	}
	if len(res.ListUnitsCPU) != 5 || len(res.ListUnitsBusy) != 5 {
		t.Errorf("list-units' CPU %v and host load %v, want 5 of each", res.ListUnitsCPU, res.ListUnitsBusy)
	}
	if !strings.HasPrefix(lastLine(out.String()), "placements_per_second ") {
		t.Errorf("last line %q, want placements_per_second N", lastLine(out.String()))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
