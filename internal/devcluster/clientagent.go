package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

// ConsulAgentOptions configures a Consul client agent run as a process on
// the host (the systemd machines run theirs inside their box:
// Box.StartConsulClient).
type ConsulAgentOptions struct {
	Binary   string    // consul binary; FindConsul's when empty
	Join     string    // a server's serf LAN address (Consul.SerfLANAddr)
	Bind     string    // loopback address the agent binds, its own
	NodeName string    // Consul node name, unique in the cluster
	Log      io.Writer // the agent's log (warnings and errors); discarded when nil
	// DataDir is where the agent keeps its state; a temporary directory
	// in TempDir (os.TempDir() when empty), removed by Stop, when empty.
	DataDir, TempDir string
	// HCL is more configuration, one block per element (limits,
	// telemetry, gossip).
	HCL []string
}

// ConsulAgent is a running Consul client agent.
type ConsulAgent struct {
	HTTPAddr    string // host:port of its HTTP API
	SerfLANAddr string // host:port of its serf LAN port
	NodeName    string
	cmd         *exec.Cmd
	exited      chan struct{}
	tmp         string // data directory to remove on Stop
}

// StartConsulAgent starts a Consul client agent on opts.Bind and free
// ports, joined to the server at opts.Join, and waits until it knows the
// cluster's leader and the servers' catalog holds its node, healthy.
func StartConsulAgent(ctx context.Context, opts ConsulAgentOptions) (*ConsulAgent, error) {
	if opts.Join == "" || opts.Bind == "" || opts.NodeName == "" {
		return nil, errors.New("consul agent: Join, Bind and NodeName are required")
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Binary == "" {
		bin, err := FindConsul()
		if err != nil {
			return nil, err
		}
		opts.Binary = bin
	}
	return onFreePorts(ctx, func() (*ConsulAgent, error) { return startConsulAgent(ctx, opts) })
}

func startConsulAgent(ctx context.Context, opts ConsulAgentOptions) (*ConsulAgent, error) {
	ports, err := FreePorts(opts.Bind, 3)
	if err != nil {
		return nil, err
	}
	a := &ConsulAgent{HTTPAddr: fmt.Sprintf("%s:%d", opts.Bind, ports[0]), SerfLANAddr: fmt.Sprintf("%s:%d", opts.Bind, ports[1]),
		NodeName: opts.NodeName, exited: make(chan struct{})}
	dataDir := opts.DataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp(opts.TempDir, "fleet-consul-agent-"); err != nil {
			return nil, err
		}
		a.tmp = dataDir
	}
	args := []string{"agent",
		"-node", opts.NodeName, "-bind", opts.Bind, "-client", opts.Bind, "-data-dir", dataDir,
		"-retry-join", opts.Join, "-retry-interval", "1s", "-log-level", "warn", "-disable-host-node-id",
		"-hcl", fmt.Sprintf("ports { http = %d, serf_lan = %d, server = %d, dns = -1, grpc = -1, grpc_tls = -1, serf_wan = -1 }",
			ports[0], ports[1], ports[2]),
		"-hcl", "disable_update_check = true"}
	for _, h := range opts.HCL {
		if h != "" {
			args = append(args, "-hcl", h)
		}
	}
	cmd := exec.Command(opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = opts.Log, opts.Log
	// Its own process group (a Ctrl-C reaches it through its parent, in
	// order), and SIGKILL if the parent dies: no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		a.removeData()
		return nil, fmt.Errorf("start consul agent %s: %w", opts.NodeName, err)
	}
	a.cmd = cmd
	go func() { _ = cmd.Wait(); close(a.exited) }()
	if err := a.waitJoined(ctx, 30*time.Second); err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

// waitJoined waits until the agent knows the leader and the catalog has
// its node with a passing serfHealth check (the servers saw it join).
func (a *ConsulAgent) waitJoined(ctx context.Context, limit time.Duration) error {
	client, err := a.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		leader, lerr := client.Status().Leader()
		if lerr == nil && leader != "" {
			checks, _, herr := client.Health().Node(a.NodeName, nil)
			if herr == nil {
				for _, c := range checks {
					if c.CheckID == "serfHealth" && c.Status == api.HealthPassing {
						return nil
					}
				}
			}
		}
		select {
		case <-a.exited:
			return fmt.Errorf("consul agent %s exited before it joined (port taken?)", a.NodeName)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consul agent %s at %s did not join within %s", a.NodeName, a.HTTPAddr, limit)
		}
	}
}

// URL is the agent's HTTP address as a URL.
func (a *ConsulAgent) URL() string { return "http://" + a.HTTPAddr }

// Client returns an API client for the agent.
func (a *ConsulAgent) Client() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = a.HTTPAddr
	cfg.Scheme = "http"
	return api.NewClient(cfg)
}

// PID is the agent's process ID.
func (a *ConsulAgent) PID() int { return a.cmd.Process.Pid }

// Stop stops the agent by PID (SIGTERM: a client agent leaves the cluster;
// SIGKILL after 10s), waits for it and removes a temporary data directory.
func (a *ConsulAgent) Stop() {
	if a.cmd != nil {
		stopProcess(a.cmd.Process, a.exited, 10*time.Second)
	}
	a.removeData()
}

func (a *ConsulAgent) removeData() {
	if a.tmp != "" {
		_ = os.RemoveAll(a.tmp)
		a.tmp = ""
	}
}
