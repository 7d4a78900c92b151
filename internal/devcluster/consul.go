package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

// ConsulOptions configures a Consul server.
type ConsulOptions struct {
	Binary   string    // consul binary; FindConsul's when empty
	Bind     string    // loopback address to bind; 127.0.0.1 when empty
	NodeName string    // Consul node name; "fleet-consul" when empty
	Log      io.Writer // Consul's own log; discarded when nil
	// ACLToken, when set, turns ACLs on (default deny) with this as the
	// initial management token, which Client then uses.
	ACLToken string
	// Gossip, when set, is HCL for the server's LAN gossip (a gossip_lan
	// block) in place of dev mode's, which probes ten times as often as
	// Consul's defaults and notices a dead node far sooner than a real
	// cluster does.
	Gossip string
	// DataDir, when set, runs a real single-node server keeping its state
	// in DataDir (raft, sessions, KV) instead of dev mode's memory, so that
	// Restart brings it back with everything it held.
	DataDir string
	// HCL is more configuration for the server, one block per element
	// (the scale harness raises limits and turns on telemetry with it).
	HCL []string
	// TLS, when set, serves the HTTP API on HTTPS only (the plain HTTP
	// port is off) with these files, requires a client certificate signed
	// by TLS.CACert from every caller, and has URL and Client use HTTPS
	// with the CA and the client certificate. GenerateTLS makes them.
	TLS *TLSFiles
}

// Consul is a running Consul server: alone in dev mode (in-memory state),
// alone with ConsulOptions.DataDir keeping its state on disk, or one of the
// servers of a cluster StartConsulServers starts.
type Consul struct {
	HTTPAddr    string // host:port of the HTTP API (HTTPS with ConsulOptions.TLS)
	SerfLANAddr string // host:port of the serf LAN port, where client agents join
	RaftAddr    string // host:port of the server RPC port, as /v1/status/leader names the leader
	NodeName    string
	opts        ConsulOptions
	args        []string
	cmd         *exec.Cmd
	exited      chan struct{}
}

// StartConsul starts a Consul server on loopback and free ports and waits
// until it has a leader and its node is healthy.
func StartConsul(ctx context.Context, opts ConsulOptions) (*Consul, error) {
	opts, err := withDefaults(opts)
	if err != nil {
		return nil, err
	}
	return onFreePorts(ctx, func() (*Consul, error) { return startConsul(ctx, opts) })
}

func withDefaults(opts ConsulOptions) (ConsulOptions, error) {
	if opts.Bind == "" {
		opts.Bind = "127.0.0.1"
	}
	if opts.NodeName == "" {
		opts.NodeName = "fleet-consul"
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Binary == "" {
		bin, err := FindConsul()
		if err != nil {
			return opts, err
		}
		opts.Binary = bin
	}
	return opts, nil
}

// onFreePorts runs start, which picks free ports and starts a Consul
// process on them, up to three times: a port found free can be taken
// before Consul binds it.
func onFreePorts[T any](ctx context.Context, start func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for attempt := 0; attempt < 3; attempt++ {
		if v, err = start(); err == nil || ctx.Err() != nil {
			break
		}
	}
	return v, err
}

func startConsul(ctx context.Context, opts ConsulOptions) (*Consul, error) {
	ports, err := FreePorts(opts.Bind, 3)
	if err != nil {
		return nil, err
	}
	var args []string
	if opts.DataDir != "" {
		args = []string{"-bootstrap-expect", "1", "-data-dir", opts.DataDir}
	}
	c := newServer(opts, ports, args)
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// newServer is a Consul server on ports (HTTP, serf LAN, server RPC) as
// opts says: dev mode, or with extra (its data directory and how it
// bootstraps) a real server.
func newServer(opts ConsulOptions, ports []int, extra []string) *Consul {
	hcl := fmt.Sprintf("ports { http = %d, serf_lan = %d, server = %d, dns = -1, grpc = -1, grpc_tls = -1, serf_wan = -1 }",
		ports[0], ports[1], ports[2])
	if opts.TLS != nil {
		hcl = fmt.Sprintf("ports { http = -1, https = %d, serf_lan = %d, server = %d, dns = -1, grpc = -1, grpc_tls = -1, serf_wan = -1 }\n%s",
			ports[0], ports[1], ports[2], opts.TLS.tlsHCL())
	}
	args := []string{"agent", "-dev"}
	if len(extra) > 0 {
		args = append([]string{"agent", "-server", "-ui",
			"-hcl", "performance { raft_multiplier = 1 }", "-hcl", "disable_update_check = true"}, extra...)
	}
	args = append(args, "-node", opts.NodeName, "-bind", opts.Bind, "-client", opts.Bind, "-hcl", hcl, "-log-level", "warn")
	if opts.Gossip != "" {
		args = append(args, "-hcl", opts.Gossip)
	}
	for _, h := range opts.HCL {
		args = append(args, "-hcl", h)
	}
	if opts.ACLToken != "" {
		args = append(args, "-hcl", fmt.Sprintf(`acl { enabled = true, default_policy = "deny", tokens { initial_management = %q, agent = %q } }`,
			opts.ACLToken, opts.ACLToken))
	}
	return &Consul{HTTPAddr: fmt.Sprintf("%s:%d", opts.Bind, ports[0]), SerfLANAddr: fmt.Sprintf("%s:%d", opts.Bind, ports[1]),
		RaftAddr: fmt.Sprintf("%s:%d", opts.Bind, ports[2]), NodeName: opts.NodeName, opts: opts, args: args}
}

// StartConsulServers starts n Consul servers that form one cluster, as
// production runs three or five: n raft voters (bootstrap-expect n) that
// join each other, each keeping its state in its own directory under
// opts.DataDir (required) so that it can be restarted with it. The other
// options apply to each server; node names are opts.NodeName with -1, -2,
// and so on. It waits until the cluster has a leader and every server is
// healthy.
func StartConsulServers(ctx context.Context, opts ConsulOptions, n int) ([]*Consul, error) {
	if opts.DataDir == "" {
		return nil, errors.New("devcluster: StartConsulServers needs a DataDir for the servers' state")
	}
	base, err := withDefaults(opts)
	if err != nil {
		return nil, err
	}
	return onFreePorts(ctx, func() ([]*Consul, error) { return startServers(ctx, base, n) })
}

func startServers(ctx context.Context, opts ConsulOptions, n int) ([]*Consul, error) {
	ports, err := FreePorts(opts.Bind, 3*n)
	if err != nil {
		return nil, err
	}
	var joins []string
	for i := range n {
		joins = append(joins, "-retry-join", fmt.Sprintf("%s:%d", opts.Bind, ports[3*i+1]))
	}
	servers := make([]*Consul, n)
	for i := range n {
		o := opts
		o.NodeName = fmt.Sprintf("%s-%d", opts.NodeName, i+1)
		extra := append([]string{"-bootstrap-expect", fmt.Sprint(n), "-data-dir", filepath.Join(opts.DataDir, o.NodeName)}, joins...)
		servers[i] = newServer(o, ports[3*i:3*i+3], extra)
	}
	stopAll := func() {
		for _, c := range servers {
			if c.cmd != nil {
				c.Stop()
			}
		}
	}
	// All start before any is waited for: none has a leader alone.
	for _, c := range servers {
		if err := c.launch(); err != nil {
			stopAll()
			return nil, err
		}
	}
	for _, c := range servers {
		if err := c.waitReady(ctx, 60*time.Second); err != nil {
			stopAll()
			return nil, err
		}
	}
	return servers, nil
}

// start runs the Consul process and waits until it is ready.
func (c *Consul) start(ctx context.Context) error {
	if err := c.launch(); err != nil {
		return err
	}
	if err := c.waitReady(ctx, 30*time.Second); err != nil {
		c.Stop()
		return err
	}
	return nil
}

// launch runs the Consul process.
func (c *Consul) launch() error {
	cmd := exec.Command(c.opts.Binary, c.args...)
	cmd.Stdout, cmd.Stderr = c.opts.Log, c.opts.Log
	// Its own process group, so a Ctrl-C meant for fleetd dev reaches Consul
	// only through fleetd, after the machines have stopped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start consul: %w", err)
	}
	exited := make(chan struct{})
	c.cmd, c.exited = cmd, exited
	go func() { _ = cmd.Wait(); close(exited) }()
	return nil
}

// Restart stops the server (SIGKILL with crash, else SIGTERM) and starts
// it again on the same addresses. Only a server with a DataDir keeps its
// state across a restart; a dev server comes back empty.
func (c *Consul) Restart(ctx context.Context, crash bool) error {
	if crash {
		c.Kill()
	} else {
		c.Stop()
	}
	return c.StartAgain(ctx)
}

// Kill stops the server at once (SIGKILL, a crash) and waits for it.
func (c *Consul) Kill() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// StartAgain starts a stopped or killed server again on its addresses and
// waits until it is ready: its cluster has a leader and it is healthy. A
// server of a cluster that lost its quorum is ready only once enough of
// the others are back too, so start those concurrently.
func (c *Consul) StartAgain(ctx context.Context) error { return c.start(ctx) }

func (c *Consul) waitReady(ctx context.Context, limit time.Duration) error {
	client, err := c.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		leader, lerr := client.Status().Leader()
		if lerr == nil && leader != "" {
			checks, _, herr := client.Health().Node(c.NodeName, nil)
			if herr == nil && len(checks) > 0 && checks.AggregatedStatus() == api.HealthPassing {
				return nil
			}
		}
		select {
		case <-c.exited:
			return errors.New("consul exited before it was ready (port taken?)")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consul at %s had no leader after %s", c.HTTPAddr, limit)
		}
	}
}

// URL is the HTTP address as a URL, the form CONSUL_HTTP_ADDR takes:
// https:// with TLS on.
func (c *Consul) URL() string { return c.scheme() + "://" + c.HTTPAddr }

func (c *Consul) scheme() string {
	if c.opts.TLS != nil {
		return "https"
	}
	return "http"
}

// Client returns an API client for this server (with TLS on, one that
// trusts the CA and presents the client certificate).
func (c *Consul) Client() (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = c.HTTPAddr
	cfg.Scheme = c.scheme()
	cfg.Token = c.opts.ACLToken
	if f := c.opts.TLS; f != nil {
		cfg.TLSConfig = api.TLSConfig{CAFile: f.CACert, CertFile: f.ClientCert, KeyFile: f.ClientKey}
	}
	return api.NewClient(cfg)
}

// TLS is the server's TLS files, nil when TLS is off.
func (c *Consul) TLS() *TLSFiles { return c.opts.TLS }

// PID is the Consul process ID.
func (c *Consul) PID() int { return c.cmd.Process.Pid }

// Bin is the path of the consul binary the server runs.
func (c *Consul) Bin() string { return c.opts.Binary }

// Stop stops Consul by PID (SIGTERM, then SIGKILL after 10s) and waits for it.
func (c *Consul) Stop() {
	stopProcess(c.cmd.Process, c.exited, 10*time.Second)
}

// stopProcess sends SIGTERM to p, waits for exited, and sends SIGKILL if
// grace runs out.
func stopProcess(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	select {
	case <-exited:
		return
	default:
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}

// FreePorts returns n TCP ports free on host at the time of the call.
func FreePorts(host string, n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", host, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// UIURL is where the Consul web UI answers.
func (c *Consul) UIURL() string { return c.URL() + "/ui/" }

// Healthy reports whether the HTTP API answers and knows a leader.
func (c *Consul) Healthy() bool {
	client, err := c.Client()
	if err != nil {
		return false
	}
	leader, err := client.Status().Leader()
	return err == nil && leader != ""
}
