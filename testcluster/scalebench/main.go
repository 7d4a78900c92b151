// Command scalebench is fleet's end-to-end scale benchmark (make bench,
// make bench-quick): a real Consul server, a real leading fleetd, a real
// idle fleetd and many simulated machines in this process
// (testcluster/scale), with units started through the real fleetctl. It
// prints its figures, the last line being "placements_per_second N".
//
//	go run ./testcluster/scalebench -machines 100 -units 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
	"github.com/wasmfleet/fleet/testcluster/scale"
)

func main() {
	var (
		o          scale.BenchOptions
		policy     string
		nativeArgs string
		extra      string
		agentHCL   string
		cpuProfile string
	)
	flag.IntVar(&o.Machines, "machines", 100, "simulated machines (beside the leading and the idle fleetd)")
	flag.IntVar(&o.Units, "units", 1000, "units to start")
	flag.StringVar(&policy, "policy", "default", "placement: default (the built-in WebAssembly policy) or native (its native build, the baseline)")
	flag.StringVar(&nativeArgs, "native-args", "--default-policy-native", "fleetd flags that select the native build of the default policy (-policy native)")
	flag.StringVar(&extra, "fleetd-args", "", "more flags for the leading fleetd, space-separated")
	flag.DurationVar(&o.TTL, "ttl", 30*time.Second, "the simulated machines' heartbeat TTL")
	flag.DurationVar(&o.FleetdTTL, "fleetd-ttl", 0, "the real fleetds' --agent-ttl (default: fleetd's, 10s)")
	flag.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "give up when the units are not all acknowledged within this")
	flag.IntVar(&o.Chunk, "chunk", 500, "units per fleetctl start command")
	flag.DurationVar(&o.SubmitPause, "submit-pause", 0, "submit the template this long before the first start, and count from that start (the leader then meets the starts after a quiet spell)")
	flag.BoolVar(&o.Wait, "wait", false, "each fleetctl start waits until its units run (no --no-block), before the next")
	flag.DurationVar(&o.Baseline, "baseline", 5*time.Second, "how long the idle cluster is measured before the submit, to subtract its traffic and CPU")
	flag.DurationVar(&o.SettleLimit, "settle", 3*time.Minute, "how long to wait, after the last acknowledgement, for Consul's raft log to stop growing")
	flag.IntVar(&o.ConsulAgents, "consul-agents", 50, "Consul client agents to spread the simulated machines over, round-robin, at most one per machine (0: all on the server's agent)")
	flag.StringVar(&o.Fleetd, "fleetd", "", "fleetd binary (default: build one)")
	flag.StringVar(&o.Fleetctl, "fleetctl", "", "fleetctl binary (default: build one)")
	flag.StringVar(&o.CompareFleetctl, "compare-fleetctl", "", "another fleetctl binary (an earlier build) whose list-units and list-unit-files are timed beside -fleetctl's")
	flag.StringVar(&o.Dir, "dir", "", "keep logs and the unit file here (default: a temporary directory, removed)")
	flag.BoolVar(&o.ConsulDev, "consul-dev", false, "run the Consul server in dev mode (as tests and fleetd dev do; it pretty-prints every answer) instead of as a real single-node server with its data in memory")
	flag.StringVar(&agentHCL, "consul-agent-hcl", "", "more HCL for every Consul client agent (one block)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process (the simulated machines and the harness), from the first submit until every unit is acknowledged, to this file")
	flag.Parse()
	if agentHCL != "" {
		o.AgentHCL = []string{agentHCL}
	}
	o.ConsulAgents = min(o.ConsulAgents, o.Machines)
	switch policy {
	case "default":
	case "native":
		o.FleetdArgs = append(o.FleetdArgs, strings.Fields(nativeArgs)...)
	default:
		fail(fmt.Errorf("-policy %q: use default or native", policy))
	}
	o.FleetdArgs = append(o.FleetdArgs, strings.Fields(extra)...)
	o.Progress = os.Stderr
	if o.Fleetd == "" || o.Fleetctl == "" {
		dir, err := os.MkdirTemp("", "fleet-scalebench-bin-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "scale: building fleetd and fleetctl")
		if err := testcluster.BuildBinaries(dir); err != nil {
			fail(err)
		}
		o.Fleetd, o.Fleetctl = filepath.Join(dir, "fleetd"), filepath.Join(dir, "fleetctl")
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		o.CPUProfile = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := scale.Run(ctx, o)
	if err != nil {
		fail(err)
	}
	res.Print(os.Stdout, "policy "+policy)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "scalebench:", err)
	os.Exit(1)
}
