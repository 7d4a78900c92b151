package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/devcluster"
	"github.com/wasmfleet/fleet/internal/registry"
)

type devOptions struct {
	systemd   bool
	machines  int
	stateFile string
	dataDir   string
	agentTTL  time.Duration
}

// devState is what --state-file holds: enough for a script or test to find
// the cluster and to kill one machine by PID.
type devState struct {
	ConsulHTTPAddr string            `json:"consul_http_addr"`
	ConsulPID      int               `json:"consul_pid"`
	ConsulUI       string            `json:"consul_ui"`
	DataDir        string            `json:"data_dir"`
	ConsulBin      string            `json:"consul_bin"`
	Machines       []devStateMachine `json:"machines"`
}

type devStateMachine struct {
	ID       string `json:"id"`
	IP       string `json:"ip"`
	PID      int    `json:"pid"`
	Metadata string `json:"metadata"`
	Metrics  string `json:"metrics,omitempty"` // URL of its Prometheus metrics
	// FleetAPI is the endpoint of its fleet HTTP API v1, for fleet's own
	// fleetctl (--driver API --endpoint) and Go client.
	FleetAPI string `json:"fleet_api,omitempty"`
}

func newDevCmd() *cobra.Command {
	o := &devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local fleet cluster: a real Consul server and N machines",
		Long: `Run a whole fleet cluster on this host, for trying fleet and for tests.

It starts a real Consul server on 127.0.0.1 and N machines, each its own
"fleetd agent" process with its own machine ID, loopback IP and metadata
hostname=machine-N, running units as child processes, with Prometheus metrics
on its own port of 127.0.0.1 (the banner and --state-file give the URLs).
Kill a machine's PID to simulate a machine failure. Ctrl-C or SIGTERM stops
everything.

The consul binary is CONSUL_BIN, else consul on PATH, else the pinned release
in ~/.cache/fleet/ that "make consul" (and so "make dev") builds.

With --systemd (root only) each machine is instead a real systemd booted in a
throw-away container (an overlay of this host's root), running its own Consul
client agent and fleetd with the systemd driver; its PID is the container's
PID 1, so killing it kills the whole machine. Its hostname, fleet-dev-N, is
also its metadata: hostname=fleet-dev-N.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout(), cmd.ErrOrStderr()) },
	}
	cmd.Flags().IntVar(&o.machines, "machines", 3, "number of machines")
	cmd.Flags().StringVar(&o.stateFile, "state-file", "", "write the cluster's addresses and PIDs as JSON to this file")
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "", "directory for logs and unit files (default: a temporary directory, removed on exit)")
	cmd.Flags().BoolVar(&o.systemd, "systemd", false, "run each machine as a real systemd in a throw-away container, with its own Consul client agent (root only)")
	cmd.Flags().DurationVar(&o.agentTTL, "agent-ttl", 3*time.Second, "machines' heartbeat TTL: how soon a killed machine's units move")
	return cmd
}

func (o *devOptions) run(out, errOut io.Writer) error {
	if o.machines < 1 || o.machines > 250 {
		return fmt.Errorf("--machines %d: use 1 to 250", o.machines)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the fleetd binary: %w", err)
	}
	if o.systemd {
		if err := devcluster.BoxSupport(); err != nil {
			return fmt.Errorf("fleetd dev --systemd: %w (without --systemd, machines run units as child processes and need no root)", err)
		}
		if strings.HasPrefix(self, os.TempDir()) {
			return fmt.Errorf("fleetd dev --systemd: the machines cannot see %s, under %s; run a built fleetd (make build puts one in bin/)", self, os.TempDir())
		}
	}
	consulBin, err := devcluster.FindConsul()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir := o.dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fleet-dev-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	consulLog, err := os.Create(filepath.Join(dir, "consul.log"))
	if err != nil {
		return err
	}
	defer consulLog.Close()

	fmt.Fprintln(errOut, "starting Consul...")
	consul, err := devcluster.StartConsul(ctx, devcluster.ConsulOptions{Binary: consulBin, Log: consulLog, NodeName: "fleet-dev"})
	if err != nil {
		return fmt.Errorf("start Consul: %w (its log: %s)", err, consulLog.Name())
	}
	defer consul.Stop()

	state := devState{ConsulHTTPAddr: consul.URL(), ConsulPID: consul.PID(), ConsulUI: consul.UIURL(), DataDir: dir, ConsulBin: consul.Bin()}
	var stopMachines func()
	if o.systemd {
		stopMachines, err = o.startBoxes(ctx, self, consul, dir, &state)
	} else {
		stopMachines, err = o.startProcesses(ctx, self, consul, dir, &state, errOut)
	}
	defer stopMachines()
	if err != nil {
		return err
	}
	n := len(state.Machines)
	if err := waitMachines(ctx, consul, n); err != nil {
		return fmt.Errorf("%w (machine logs: %s/machine-*/fleetd.log)", err, dir)
	}
	metricsURLs(ctx, consul, &state)
	// The banner first: whoever waits for the state file finds it whole.
	printDevBanner(out, self, state)
	if o.stateFile != "" {
		b, _ := json.MarshalIndent(state, "", "  ")
		if err := os.WriteFile(o.stateFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write --state-file: %w", err)
		}
		defer os.Remove(o.stateFile)
	}

	<-ctx.Done()
	fmt.Fprintln(errOut, "stopping the cluster...")
	return nil
}

// startProcesses starts each machine as a fleetd process with the exec
// driver. The returned function stops them (machines first, so they unload
// their units while Consul still answers).
func (o *devOptions) startProcesses(ctx context.Context, self string, consul *devcluster.Consul, dir string, state *devState, errOut io.Writer) (func(), error) {
	var machines []*devcluster.Machine
	stop := func() {
		for _, m := range machines {
			go m.Stop()
		}
		for _, m := range machines {
			<-m.Exited()
		}
	}
	for i := 1; i <= o.machines; i++ {
		md := fmt.Sprintf("hostname=machine-%d", i)
		m, err := devcluster.StartMachine(devcluster.MachineOptions{
			Fleetd:    self,
			ConsulURL: consul.URL(),
			IP:        fmt.Sprintf("127.0.1.%d", i),
			Metadata:  md,
			Dir:       filepath.Join(dir, fmt.Sprintf("machine-%d", i)),
			TTL:       o.agentTTL,
			// As on a real machine with its local Consul agent, units
			// find Consul and the consul command (a sidekick writing to KV).
			Env: []string{"CONSUL_HTTP_ADDR=" + consul.URL(), "PATH=" + filepath.Dir(consul.Bin()) + string(os.PathListSeparator) + os.Getenv("PATH")},
		})
		if err != nil {
			return stop, err
		}
		machines = append(machines, m)
		state.Machines = append(state.Machines, devStateMachine{ID: m.ID, IP: m.IP, PID: m.PID(), Metadata: md, FleetAPI: m.FleetAPI})
		go func() {
			select {
			case <-m.Exited():
				if ctx.Err() == nil {
					fmt.Fprintf(errOut, "machine %s (pid %d) exited; its units move to the other machines\n", registry.ShortID(m.ID), m.PID())
				}
			case <-ctx.Done():
			}
		}()
	}
	return stop, nil
}

// boxFleetAPISocket is where a box's fleetd serves fleet's HTTP API.
const boxFleetAPISocket = "/run/fleet.sock"

// startBoxes starts each machine as a systemd box running a Consul client
// agent and fleetd with the systemd driver.
func (o *devOptions) startBoxes(ctx context.Context, self string, consul *devcluster.Consul, dir string, state *devState) (func(), error) {
	var boxes []*devcluster.Box
	var fleetds []*devcluster.BoxProcess
	stop := func() {
		for _, f := range fleetds {
			f.Stop()
		}
		for _, b := range boxes {
			_ = b.Kill()
		}
	}
	for i := 1; i <= o.machines; i++ {
		// The container's hostname is its hostname metadata too, so a
		// unit's %H names a machine that list-machines shows.
		name := fmt.Sprintf("fleet-dev-%d", i)
		md := "hostname=" + name
		ip := fmt.Sprintf("127.0.4.%d", i)
		mdir := filepath.Join(dir, fmt.Sprintf("machine-%d", i))
		if err := os.MkdirAll(mdir, 0o755); err != nil {
			return stop, err
		}
		console, err := os.Create(filepath.Join(mdir, "console.log"))
		if err != nil {
			return stop, err
		}
		defer console.Close()
		b, err := devcluster.StartBox(ctx, devcluster.BoxOptions{Name: name, IP: ip, Log: console})
		if err != nil {
			return stop, err
		}
		boxes = append(boxes, b)
		if _, err := b.StartConsulClient(consul.Bin(), consul.SerfLANAddr, filepath.Join(mdir, "consul.log")); err != nil {
			return stop, err
		}
		// fleet's API on the box's own /run, which the host reaches
		// through the box's root (/var/run, a link to /run, would resolve
		// to the host's from outside).
		args := append(b.FleetdArgs(self, md, o.agentTTL), "--fleet-api-socket", boxFleetAPISocket)
		f, err := b.Start(filepath.Join(mdir, "fleetd.log"), args...)
		if err != nil {
			return stop, err
		}
		fleetds = append(fleetds, f)
		state.Machines = append(state.Machines, devStateMachine{ID: b.MachineID, IP: ip, PID: b.PID(), Metadata: md,
			FleetAPI: fmt.Sprintf("unix:///proc/%d/root%s", b.PID(), boxFleetAPISocket)})
	}
	return stop, nil
}

func waitMachines(ctx context.Context, consul *devcluster.Consul, n int) error {
	client, err := consul.Client()
	if err != nil {
		return err
	}
	reg := registry.New(client, "")
	deadline := time.Now().Add(30 * time.Second)
	for {
		ms, err := reg.Machines(ctx)
		if err == nil && len(ms) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d machines joined within 30s", len(ms), n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// metricsURLs fills in each machine's metrics URL from the metrics-addr
// its fleetd shows in Consul's catalog.
func metricsURLs(ctx context.Context, consul *devcluster.Consul, state *devState) {
	client, err := consul.Client()
	if err != nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		addrs := map[string]string{}
		ss, _, err := client.Catalog().Service("fleet-agent", "", (&api.QueryOptions{}).WithContext(ctx))
		if err == nil {
			for _, s := range ss {
				if a := s.ServiceMeta["metrics-addr"]; a != "" {
					addrs[s.ServiceMeta["machine-id"]] = "http://" + a + "/metrics"
				}
			}
		}
		missing := 0
		for i, m := range state.Machines {
			state.Machines[i].Metrics = addrs[m.ID]
			if addrs[m.ID] == "" {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printDevBanner(w io.Writer, self string, s devState) {
	fmt.Fprintf(w, "fleet dev cluster is up: %d machines, Consul at %s\n\n", len(s.Machines), s.ConsulHTTPAddr)
	path := filepath.Dir(self)
	if d := filepath.Dir(s.ConsulBin); s.ConsulBin != "" && d != path {
		path += ":" + d // the consul command too, for consul kv get
	}
	fmt.Fprintf(w, "To use it from another shell:\n  export PATH=%s:$PATH FLEETCTL_ENDPOINT=%s CONSUL_HTTP_ADDR=%s\n\n",
		path, s.ConsulHTTPAddr, s.ConsulHTTPAddr)
	fmt.Fprintf(w, "Consul UI: %s\nLogs and unit files: %s\n\n", s.ConsulUI, s.DataDir)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tIP\tPID\tMETADATA\tMETRICS")
	for _, m := range s.Machines {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", m.ID, m.IP, m.PID, m.Metadata, dashIfEmpty(m.Metrics))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nKill a machine's PID to simulate its failure. Ctrl-C stops everything.")
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
