package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/agent/execdriver"
	"github.com/wasmfleet/fleet/agent/systemd"
	"github.com/wasmfleet/fleet/internal/apitls"
	"github.com/wasmfleet/fleet/internal/config"
	"github.com/wasmfleet/fleet/internal/fleetapi"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/version"
	"github.com/wasmfleet/fleet/leader"
	"github.com/wasmfleet/fleet/policies"
)

// defaultConfigFile is fleet's configuration file.
const defaultConfigFile = "/etc/fleet/fleet.conf"

type agentOptions struct {
	configFile    string
	endpoint      string
	token         string
	prefix        string
	machineID     string
	publicIP      string
	metadata      string
	agentTTL      time.Duration
	driver        string
	unitsDir      string
	logsDir       string
	disableEngine bool
	leaveOnStop   bool
	systemdUser   bool
	apiAddr       string
	apiCertFile   string
	apiKeyFile    string

	fleetAPISocket string
	fleetAPIGroup  string
	fleetAPIAddr   string
	// fleetAPIOwnToken lets a request on --fleet-api-addr without a token
	// from a loopback address act with fleetd's own token.
	fleetAPIOwnToken bool
	tokenLimit       int

	policyMemory  int
	policyTimeout time.Duration
	policyNative  bool
	verbosity     int
	metricsAddr   string
	pprof         bool

	// cmdline is the flags given on the command line, which a reload
	// (SIGHUP) sets again so they keep winning; loaded is every option's
	// value as loaded, before run fills in defaults.
	cmdline, loaded map[string]string
	unknown         []string // keys of the configuration file that are no option
}

func newAgentCmd() *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run this machine's agent (and leader candidate)",
		Long: `Run this machine's fleet agent: keep the machine alive in Consul, run the
units scheduled to it, report their states, and compete to be the leader that
places units.

Every flag can also be set as FLEET_<FLAG> (FLEET_METADATA, FLEET_PUBLIC_IP,
...) or as <flag> in the configuration file (metadata = region=east); a flag
on the command line wins over the environment, which wins over the file.

SIGHUP reads the configuration again and applies what can change while
units run (metadata, verbosity, metrics-addr); it logs every other option
that changed, which takes effect at the next restart.`,
		Args: cobra.NoArgs,
	}
	o.addFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o.cmdline = flagValues(cmd.Flags(), true)
		if err := o.loadConfig(cmd.Flags()); err != nil {
			return err
		}
		o.loaded = flagValues(cmd.Flags(), false)
		return o.run()
	}
	return cmd
}

// addFlags defines fleetd's options in f, bound to o.
func (o *agentOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.configFile, "config", defaultConfigFile, "configuration file (key = value lines); a missing default file is fine")
	f.StringVar(&o.endpoint, "endpoint", "", "Consul HTTP address (default: CONSUL_HTTP_ADDR, else http://127.0.0.1:8500)")
	f.StringVar(&o.token, "token", "", "Consul ACL token (default: CONSUL_HTTP_TOKEN)")
	f.StringVar(&o.prefix, "key-prefix", registry.DefaultPrefix, "Consul KV prefix for fleet's keys")
	f.StringVar(&o.machineID, "machine-id", "", "this machine's ID (default: /etc/machine-id)")
	f.StringVar(&o.publicIP, "public-ip", "", "IP address other machines reach this one on (default: first non-loopback IPv4)")
	f.StringVar(&o.metadata, "metadata", "", "machine metadata as key=value pairs, such as region=east,disk=ssd")
	f.DurationVar(&o.agentTTL, "agent-ttl", 10*time.Second, "how long the machine may miss heartbeats before its units move")
	f.StringVar(&o.driver, "driver", "", "how units run: systemd (over D-Bus), or exec (child processes of fleetd); default systemd when /run/systemd/system exists")
	f.BoolVar(&o.systemdUser, "systemd-user", false, "drive the user's systemd (systemd --user) instead of the system's")
	f.BoolVar(&o.leaveOnStop, "leave-on-stop", false, "on SIGTERM stop every unit and leave the cluster; by default units keep running and a fleetd restarted within --agent-ttl adopts them")
	f.StringVar(&o.unitsDir, "units-dir", "/run/fleet/units", "where unit files are written")
	f.StringVar(&o.logsDir, "logs-dir", "/var/log/fleet", "where the exec driver writes each unit's output")
	f.BoolVar(&o.disableEngine, "disable-engine", false, "never become leader (this machine only runs units)")
	f.StringVar(&o.apiAddr, "api-addr", ":54728", "where this machine serves unit status and journal to fleetctl (host:port; port 0 picks one)")
	f.StringVar(&o.apiCertFile, "api-cert-file", "", "certificate (PEM) served on --api-addr and --fleet-api-addr, which are then TLS; default when fleetd reaches Consul over TLS: CONSUL_CLIENT_CERT (docs/tls.md)")
	f.StringVar(&o.apiKeyFile, "api-key-file", "", "private key (PEM) of --api-cert-file; default when fleetd reaches Consul over TLS: CONSUL_CLIENT_KEY")
	f.StringVar(&o.fleetAPISocket, "fleet-api-socket", defaultFleetAPISocket, `unix socket serving fleet's HTTP API v1 to fleet's own fleetctl and Go client ("" for none)`)
	f.StringVar(&o.fleetAPIGroup, "fleet-api-group", "", "group (name or GID) that may use --fleet-api-socket too: the socket is then 0660 instead of 0600")
	f.StringVar(&o.fleetAPIAddr, "fleet-api-addr", "", "also serve fleet's HTTP API over TCP (host:port), to requests with a Consul ACL token (Authorization: Bearer or X-Consul-Token), each acting with that token's rights; \"\" for none")
	f.BoolVar(&o.fleetAPIOwnToken, "fleet-api-own-token-on-loopback", false, "on --fleet-api-addr, let a request without a token that comes from a loopback address act with fleetd's own token (as on --fleet-api-socket); requests with a token still act with theirs, others without one are still refused")
	f.IntVar(&o.tokenLimit, "token-limit", fleetapi.DefaultTokenLimit, "items per page of fleet's HTTP API (fleet's token_limit), 1 to 65535")
	f.IntVar(&o.policyMemory, "policy-memory-mib", 64, "memory cap of each instance of an uploaded placement policy, in MiB (the default policy grows as the cluster needs)")
	f.DurationVar(&o.policyTimeout, "policy-timeout", 100*time.Millisecond, "time limit of one call of an uploaded placement policy")
	// A benchmark baseline (docs/policies.md), not an operator's option.
	f.BoolVar(&o.policyNative, "default-policy-native", false, "run the default placement policy compiled into fleetd instead of as WebAssembly (benchmarks, diagnosis)")
	_ = f.MarkHidden("default-policy-native")
	f.IntVar(&o.verbosity, "verbosity", 0, "log verbosity: 0 info, 1 debug")
	f.StringVar(&o.metricsAddr, "metrics-addr", defaultMetricsAddr, `where to serve Prometheus metrics at /metrics (host:port; ":54729" for every interface, "" for none)`)
	f.BoolVar(&o.pprof, "pprof", false, "also serve Go's profiles at /debug/pprof/ on --metrics-addr, to find where fleetd spends its time")
}

// loadConfig fills the options of fs not given on the command line from
// the environment, then from the configuration file.
func (o *agentOptions) loadConfig(fs *pflag.FlagSet) error {
	if !fs.Changed("config") {
		if v, ok := os.LookupEnv("FLEET_CONFIG"); ok {
			o.configFile = v
		}
	}
	var file map[string]string
	if o.configFile != "" {
		var err error
		file, err = config.ReadFile(o.configFile)
		if err != nil && !(errors.Is(err, os.ErrNotExist) && o.configFile == defaultConfigFile) {
			return fmt.Errorf("read configuration: %w", err)
		}
	}
	// Unknown keys are ignored, not refused: a fleet.conf brought from
	// fleet has etcd options. run and reload log them, so a typo shows.
	o.unknown = nil
	for k := range file {
		if fs.Lookup(strings.ReplaceAll(k, "_", "-")) == nil {
			o.unknown = append(o.unknown, k)
		}
	}
	sort.Strings(o.unknown)
	return config.Apply(fs, "FLEET_", file)
}

// warnUnknown logs the configuration file's options that are not fleetd's.
func (o *agentOptions) warnUnknown(log *slog.Logger) {
	for _, k := range o.unknown {
		log.Warn("the configuration file sets an option fleetd does not have; ignored", "file", o.configFile, "option", k)
	}
}

// run is fleetd: settle the options, wire the machine's parts, join the
// cluster, then serve until SIGINT or SIGTERM.
func (o *agentOptions) run() error {
	// SIGHUP's default action ends the process: catch it first.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	level := new(slog.LevelVar)
	level.Set(logLevel(o.verbosity))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	o.warnUnknown(log)

	md, err := o.settle()
	if err != nil {
		return err
	}
	log = log.With("machine", registry.ShortID(o.machineID))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	d := &daemon{log: log, level: level}
	defer d.close()
	if err := o.wire(ctx, d, md); err != nil {
		return err
	}
	joined, err := o.join(ctx, d)
	if !joined {
		return err // nil: stopped before the cluster answered
	}
	log.Info("fleetd started", "version", version.Version, "ip", o.publicIP, "metadata", o.metadata, "engine", !o.disableEngine)
	return o.serve(ctx, d, md, hup)
}

// daemon is the parts of a running fleetd, made by wire.
type daemon struct {
	log   *slog.Logger
	level *slog.LevelVar // the log's level, which a reload changes

	driver    agent.Driver
	inspector agent.Inspector // the driver, answering fleetctl status and journal
	// leave unloads every unit and leaves the cluster on the way out.
	leave bool
	reg   *registry.Registry
	api   net.Listener // where the inspect server answers fleetctl
	// tls is what api and fleetAPITCP serve TLS with; nil for plain HTTP.
	tls *tls.Config
	// fleetAPI is where fleet's HTTP API v1 is served (fleetapi.go).
	fleetAPI    []net.Listener
	fleetAPITCP net.Listener // --fleet-api-addr

	metrics       *metricsServer
	agentMetrics  *agent.Metrics
	leaderMetrics *leader.Metrics
	hb            *agent.Heartbeat
}

// listenTCP listens on addr, over TLS when d serves TLS.
func (d *daemon) listenTCP(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil || d.tls == nil {
		return l, err
	}
	return tls.NewListener(l, d.tls), nil
}

// scheme is the scheme of d's TCP endpoints.
func (d *daemon) scheme() string {
	if d.tls != nil {
		return "https"
	}
	return "http"
}

// close stops what outlives a failed start: the metrics server.
func (d *daemon) close() {
	if d.metrics != nil {
		d.metrics.close()
	}
}

// settle fills in the machine ID and public IP when not given and checks
// the options that need no connection; it returns the parsed metadata.
func (o *agentOptions) settle() (map[string]string, error) {
	md, err := config.ParseMetadata(o.metadata)
	if err != nil {
		return nil, err
	}
	if o.machineID == "" {
		if o.machineID, err = readMachineID(); err != nil {
			return nil, err
		}
	}
	if o.publicIP == "" {
		o.publicIP = detectIP()
	}
	if o.tokenLimit < 1 || o.tokenLimit > 0xffff {
		return nil, fmt.Errorf("--token-limit %d: use 1 to 65535", o.tokenLimit)
	}
	if o.agentTTL < time.Second {
		return nil, fmt.Errorf("--agent-ttl %s is too short: use at least 1s", o.agentTTL)
	}
	return md, nil
}

// wire makes the machine's parts: the unit driver, the Consul client, the
// listener for fleetctl, the metrics and the heartbeat (not yet started).
func (o *agentOptions) wire(ctx context.Context, d *daemon, md map[string]string) error {
	if err := o.newDriver(ctx, d); err != nil {
		return err
	}
	mreg := newMetricsRegistry()
	client, err := registry.NewClientWith(o.endpoint, o.token, registry.ClientOptions{ReadBytes: consulReadBytes(mreg)})
	if err != nil {
		return err
	}
	d.reg = registry.New(client, o.prefix)

	inspector, ok := d.driver.(agent.Inspector)
	if !ok {
		return fmt.Errorf("driver %s cannot show unit status", o.driver)
	}
	d.inspector = inspector
	if err := o.listenInspect(d); err != nil {
		return err
	}
	if err := o.listenFleetAPI(d); err != nil {
		return err
	}
	if err := o.listenFleetAPITCP(d); err != nil {
		return err
	}
	metricsAddr, err := o.serveMetrics(d, mreg)
	if err != nil {
		return err
	}
	d.hb = agent.NewHeartbeat(client, o.machineID, o.publicIP, md, o.agentTTL, d.log)
	d.hb.Scheme = apitls.NotServedScheme
	if d.api != nil {
		d.hb.Port, d.hb.Scheme = d.api.Addr().(*net.TCPAddr).Port, d.scheme()
	}
	d.hb.MetricsAddr, d.hb.Metrics = metricsAddr, d.agentMetrics
	return nil
}

// newDriver makes the unit driver --driver names (systemd when
// /run/systemd/system exists, else exec, when not given).
func (o *agentOptions) newDriver(ctx context.Context, d *daemon) error {
	if o.driver == "" {
		o.driver = "exec"
		if systemd.Available() {
			o.driver = "systemd"
		}
	}
	var err error
	d.leave = o.leaveOnStop
	switch o.driver {
	case "exec":
		d.driver, err = execdriver.New(o.unitsDir, o.logsDir, o.machineID, d.log.With("driver", "exec"))
		d.leave = true // its units are fleetd's children: they cannot outlive it
	case "systemd":
		d.driver, err = systemd.New(ctx, systemd.Options{UnitsDir: o.unitsDir, User: o.systemdUser, Log: d.log.With("driver", "systemd")})
	default:
		return fmt.Errorf("unknown --driver %q: use systemd or exec", o.driver)
	}
	return err
}

// serveMetrics adds the agent's and the leader's metrics to mreg and
// serves them on --metrics-addr. It returns the address bound: "" when
// metrics are off, or when the default address is taken (logged; only an
// address asked for is an error).
func (o *agentOptions) serveMetrics(d *daemon, mreg *prometheus.Registry) (string, error) {
	d.agentMetrics, d.leaderMetrics = agent.NewMetrics(mreg), leader.NewMetrics(mreg)
	d.metrics = &metricsServer{handler: promhttp.HandlerFor(mreg, promhttp.HandlerOpts{}), pprof: o.pprof}
	metricsAddr, err := d.metrics.listen(o.metricsAddr)
	if err != nil {
		if o.loaded["metrics-addr"] != defaultMetricsAddr || o.cmdline["metrics-addr"] != "" {
			return "", err // asked for: a typo must not go unnoticed
		}
		d.log.Warn("no metrics: the default address is taken; set --metrics-addr (metrics_addr in the configuration file)", "err", err)
	} else if metricsAddr != "" {
		d.log.Info("serving Prometheus metrics", "url", "http://"+metricsAddr+"/metrics")
	}
	return metricsAddr, nil
}

// join starts the heartbeat (session, check and service in Consul),
// retrying until Consul answers; false when ctx ended first, or with the
// error when the cluster's keys are in a schema this fleetd does not know,
// before it writes anything.
func (o *agentOptions) join(ctx context.Context, d *daemon) (bool, error) {
	for {
		err := d.reg.Writable(ctx)
		if serr := (*registry.SchemaError)(nil); errors.As(err, &serr) {
			return false, err
		}
		if pe, denied := registry.AsPermissionError(err); denied {
			// An agent token from before schema versions: the check cannot
			// be made, and refusing would cost the machine its units.
			d.log.Warn("cannot read the key schema version: the machine's Consul token may not; add the schema rule of contrib/acl/agent.hcl to its policy", "err", pe.What)
			err = nil
		}
		if err == nil {
			err = d.hb.Start(ctx)
		}
		if err == nil {
			return true, nil
		}
		d.log.Error("cannot join the cluster yet, retrying", "endpoint", registry.Endpoint(o.endpoint), "err", err)
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(2 * time.Second):
		}
	}
}

// serve runs the machine until ctx is done: the inspect server, the
// heartbeat, the leader candidate (unless --disable-engine), reloads on
// SIGHUP, and the agent. Then it leaves the cluster or, when units keep
// running, lets the heartbeat lapse.
func (o *agentOptions) serve(ctx context.Context, d *daemon, md map[string]string, hup <-chan os.Signal) error {
	hbCtx, stopHB := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.serveInspect(ctx) })
	wg.Go(func() { o.serveFleetAPI(ctx, d) })
	wg.Go(func() { d.hb.Run(hbCtx) })
	if !o.disableEngine {
		wg.Go(func() { o.lead(ctx, d) })
	}
	a := agent.New(agent.Config{
		Registry:    d.reg,
		Machine:     registry.Machine{ID: o.machineID, IP: o.publicIP, Metadata: md, Version: version.Version},
		Driver:      d.driver,
		Heartbeat:   d.hb,
		Log:         d.log.With("role", "agent"),
		LeaveOnStop: d.leave,
		Metrics:     d.agentMetrics,
	})
	rl := &reloader{cmdline: o.cmdline, running: o.loaded, log: d.log, level: d.level, agent: a, hb: d.hb, metrics: d.metrics}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				rl.reload(ctx)
			}
		}
	})
	err := a.Run(ctx) // returns after ctx is done (and units are unloaded when leaving)
	if d.leave {
		// Leave the cluster only after the units stopped, so their new
		// copies never run beside the old ones.
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d.hb.Stop(stopCtx)
		cancel()
	} else {
		d.log.Info("units keep running; a fleetd started within the TTL adopts them", "ttl", o.agentTTL)
	}
	stopHB()
	wg.Wait()
	d.log.Info("fleetd stopped")
	return err
}

// listenInspect settles what fleetd's TCP endpoints serve (apitls) and
// opens --api-addr. A certificate it may not serve by default turns both
// TCP endpoints off, logged, rather than stopping a machine whose units
// must run on (apitls.ErrNotServed).
func (o *agentOptions) listenInspect(d *daemon) error {
	var err error
	d.tls, err = apitls.ServerConfig(apitls.ServerOptions{Endpoint: o.endpoint, CertFile: o.apiCertFile, KeyFile: o.apiKeyFile, PublicIP: o.publicIP})
	if errors.Is(err, apitls.ErrNotServed) {
		d.log.Error("no TLS certificate to serve", "err", err)
		o.fleetAPIAddr = ""
		return nil
	}
	if err != nil {
		return err
	}
	if d.api, err = d.listenTCP(o.apiAddr); err != nil {
		return fmt.Errorf("listen for fleetctl status and journal on --api-addr %s: %w", o.apiAddr, err)
	}
	return nil
}

// serveInspect answers fleetctl status and journal until ctx is done.
func (d *daemon) serveInspect(ctx context.Context) {
	if d.api == nil {
		return // not served (listenInspect)
	}
	srv := &agent.InspectServer{Registry: d.reg, Inspector: d.inspector, Log: d.log.With("role", "inspect"),
		Has: func(name string) bool { return d.driver.State(name).Load != "not-found" }}
	if err := srv.Serve(ctx, d.api); err != nil {
		d.log.Error("status server stopped", "err", err)
	}
}

// lead loads the placement policies and competes to be the leader until
// ctx is done. Without a policy host the machine never leads.
func (o *agentOptions) lead(ctx context.Context, d *daemon) {
	host, err := policies.NewHost(ctx, policies.Config{MemoryLimitMiB: o.policyMemory, CallTimeout: o.policyTimeout})
	if err != nil {
		d.log.Error("placement policies unavailable; this machine will not lead", "err", err)
		return
	}
	defer host.Close(context.Background())
	builtin := policies.Builtin(host)
	if o.policyNative {
		builtin = policies.BuiltinNative(host)
	}
	placer := &policies.Placer{
		Builtin: builtin,
		Uploaded: func(ctx context.Context, m *registry.PolicyManifest) (*policies.Policy, error) {
			wasm, err := d.reg.PolicyModule(ctx, m)
			if err != nil {
				return nil, err
			}
			return host.Load(ctx, m.Name, wasm, false)
		},
	}
	go func() { // compile now, not when this machine becomes leader
		if err := placer.Prepare(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("the built-in placement policy does not load", "err", err)
		}
	}()
	if err := leader.Run(ctx, leader.Config{Registry: d.reg, MachineID: o.machineID, Session: d.hb.ID, Placer: placer,
		Log: d.log.With("role", "leader"), Metrics: d.leaderMetrics}); err != nil {
		d.log.Error("this machine will not lead", "err", err)
	}
}

func readMachineID() (string, error) {
	b, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return "", fmt.Errorf("no machine ID: %w; give one with --machine-id", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("/etc/machine-id is empty; give a machine ID with --machine-id")
	}
	return id, nil
}

// detectIP returns the first IPv4 address of an interface that is up and
// not loopback, or "" when there is none.
func detectIP() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return ""
}
