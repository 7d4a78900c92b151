package scale

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/version"
	"github.com/wasmfleet/fleet/testcluster"
)

// Options configure a Harness.
type Options struct {
	Endpoint string // Consul HTTP address, such as http://127.0.0.1:8500
	Prefix   string // fleet's key prefix; the registry's default when empty
	Machines int    // how many machines to simulate
	// TTL is each machine's heartbeat TTL; 30s when zero. A machine passes
	// its check every third of it, so a long TTL keeps a thousand
	// machines' renewals cheap.
	TTL time.Duration
	// Metadata is machine i's metadata (i counts from 1);
	// hostname=sim-i when nil.
	Metadata func(i int) map[string]string
	// Log gets the agents' warnings and errors; discarded when nil.
	Log io.Writer
	// Parallel is how many machines join at once; when zero, 16, or one
	// in a hundred machines up to 64.
	Parallel int
	// Progress gets a line for each step of the start; discarded when nil.
	Progress io.Writer

	// ConsulAgents, when above zero, starts that many real Consul client
	// agents (agent k on 127.0.10.k, joined to the server at Join) and
	// spreads the machines over them round-robin, as a real cluster has
	// an agent per machine: machine i talks to agent (i-1)%ConsulAgents+1
	// and its services, checks and session live on that agent's node.
	// When zero every machine talks to the agent at Endpoint.
	ConsulAgents int
	Join         string   // the server's serf LAN address (testcluster.Consul.SerfLANAddr)
	ConsulBinary string   // the agents' binary; testcluster.ConsulBinary's when empty
	ConsulHCL    []string // more configuration for each agent (limits, telemetry)
	// AgentLogs is where each agent writes its log
	// (consul-agent-K.log); discarded when empty.
	AgentLogs string
}

// Harness is many simulated machines in this process. Stop it when done.
type Harness struct {
	Machines []*Machine
	// Requests counts the HTTP requests the simulated machines made to
	// Consul.
	Requests *RequestCounter
	// States follows the unit states the simulated machines write, as
	// their writes return.
	States *StateLog
	// Agents are the Consul client agents the machines talk to (none
	// without Options.ConsulAgents).
	Agents []*testcluster.ConsulAgent

	client     *api.Client       // the server's agent
	clients    []*api.Client     // the machines' agents, round-robin
	transports []*http.Transport // every client's, to close
	prefix     string
}

// Machine is one simulated machine.
type Machine struct {
	ID, IP   string
	Metadata map[string]string
	Driver   *MemDriver
	Agent    int // the Consul client agent it talks to (from 1); 0: the server's

	hb       *agent.Heartbeat
	stopRun  context.CancelFunc // the agent
	stopBeat context.CancelFunc // the heartbeat, after the agent
	done     chan struct{}      // closed when the agent's Run returned
}

// IP returns the loopback address of simulated machine i (from 1):
// 127.1.0.1, 127.1.0.2, ... 250 to a /24.
func IP(i int) string { return fmt.Sprintf("127.1.%d.%d", (i-1)/250, (i-1)%250+1) }

// Start starts the simulated machines, opts.Parallel at a time, and
// returns once each has its session and runs its agent; Wait waits until
// every one is published.
//
// # Notes
//
// The machines on one Consul agent share one Consul client (and so its
// connection pool); every client counts their requests, and each machine
// has its own registry, as each fleetd has. Without opts.ConsulAgents they
// all talk to the one Consul agent at opts.Endpoint, where a real cluster
// has a Consul agent per machine: that agent then holds every machine's
// service, check and session, and walks them all on each registration and
// anti-entropy sync. With it, each of the agents holds its share.
func Start(ctx context.Context, opts Options) (_ *Harness, err error) {
	if err := opts.settle(); err != nil {
		return nil, err
	}
	if err := ensureFiles(opts.Machines, opts.ConsulAgents); err != nil {
		return nil, err
	}
	counter, states := &RequestCounter{}, NewStateLog(cmp.Or(opts.Prefix, registry.DefaultPrefix))
	client, transport, err := newClient(opts.Endpoint, opts.Machines, counter, states)
	if err != nil {
		return nil, err
	}
	h := &Harness{Requests: counter, States: states, client: client, transports: []*http.Transport{transport}, prefix: registry.New(client, opts.Prefix).Prefix()}
	defer func() {
		if err != nil {
			h.Stop(false) // the machines started, then the agents
		}
	}()
	h.clients = []*api.Client{client}
	if opts.ConsulAgents > 0 {
		if err := h.startAgents(ctx, opts); err != nil {
			return nil, err
		}
	}
	if err := h.startMachines(ctx, opts); err != nil {
		return nil, err
	}
	return h, nil
}

// settle checks o and fills in the defaults.
func (o *Options) settle() error {
	if o.Machines < 1 {
		return fmt.Errorf("scale: %d machines: simulate at least one", o.Machines)
	}
	if o.ConsulAgents < 0 {
		return fmt.Errorf("scale: %d Consul agents", o.ConsulAgents)
	}
	if o.ConsulAgents > 0 && o.Join == "" {
		return errors.New("scale: Consul agents need the server's serf LAN address (Options.Join)")
	}
	if o.TTL == 0 {
		o.TTL = 30 * time.Second
	}
	if o.Parallel == 0 {
		o.Parallel = max(16, min(64, o.Machines/100))
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Metadata == nil {
		o.Metadata = func(i int) map[string]string { return map[string]string{"hostname": fmt.Sprintf("sim-%d", i)} }
	}
	return nil
}

// startAgents starts opts.ConsulAgents client agents and a client for
// each, counting requests and recording states as the server's does.
func (h *Harness) startAgents(ctx context.Context, opts Options) (err error) {
	t := time.Now()
	if h.Agents, err = startAgents(ctx, opts.ConsulAgents, opts.ConsulBinary, opts.Join, opts.AgentLogs, opts.ConsulHCL); err != nil {
		return err
	}
	fmt.Fprintf(opts.Progress, "scale: %d Consul client agents joined in %s\n", opts.ConsulAgents, time.Since(t).Round(time.Millisecond))
	h.clients = nil
	per := (opts.Machines + opts.ConsulAgents - 1) / opts.ConsulAgents
	for _, a := range h.Agents {
		c, t, err := newClient(a.URL(), per, h.Requests, h.States)
		if err != nil {
			return err
		}
		h.clients = append(h.clients, c)
		h.transports = append(h.transports, t)
	}
	return nil
}

// startMachines starts the simulated machines, opts.Parallel at a time.
func (h *Harness) startMachines(ctx context.Context, opts Options) error {
	log := slog.New(slog.NewTextHandler(opts.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h.Machines = make([]*Machine, opts.Machines)
	errs := make([]error, opts.Machines)
	next := make(chan int)
	var wg sync.WaitGroup
	for range opts.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				h.Machines[i], errs[i] = h.start(ctx, i+1, opts, log)
			}
		}()
	}
	for i := range opts.Machines {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// start joins machine i as cmd/fleetd does: heartbeat first (service,
// check, session), then the agent, which publishes the machine and follows
// its schedule. There is no leader candidate.
func (h *Harness) start(ctx context.Context, i int, opts Options, log *slog.Logger) (*Machine, error) {
	m := &Machine{ID: testcluster.NewMachineID(), IP: IP(i), Metadata: opts.Metadata(i), Driver: NewMemDriver(), done: make(chan struct{})}
	client := h.clients[(i-1)%len(h.clients)]
	if len(h.Agents) > 0 {
		m.Agent = (i-1)%len(h.Agents) + 1
	}
	log = log.With("machine", registry.ShortID(m.ID))
	m.hb = agent.NewHeartbeat(client, m.ID, m.IP, m.Metadata, opts.TTL, log)
	// A client agent syncs a registration to the servers in the
	// background, so the session may not find the new check at once:
	// retry, as fleetd does. An agent taking in hundreds of machines at
	// once can take a while.
	for deadline := time.Now().Add(joinLimit); ; {
		err := m.hb.Start(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("simulated machine %d: %w", i, err)
		}
		sleep(ctx, 100*time.Millisecond)
	}
	beatCtx, stopBeat := context.WithCancel(context.Background())
	runCtx, stopRun := context.WithCancel(context.Background())
	m.stopBeat, m.stopRun = stopBeat, stopRun
	go m.hb.Run(beatCtx)
	a := agent.New(agent.Config{
		Registry:  registry.New(client, opts.Prefix),
		Machine:   registry.Machine{ID: m.ID, IP: m.IP, Metadata: m.Metadata, Version: version.Version},
		Driver:    m.Driver,
		Heartbeat: m.hb,
		Log:       log,
		Isolation: loopbackWatch{},
	})
	go func() {
		defer close(m.done)
		if err := a.Run(runCtx); err != nil {
			log.Error("agent stopped", "err", err)
		}
	}()
	return m, nil
}

// joinLimit bounds one simulated machine's attempts to join.
const joinLimit = 2 * time.Minute

// loopbackWatch is a simulated machine's agent.IsolationWatch: it reports
// nothing, for nothing can cut the machine off. The simulated machines reach
// Consul and each other over this host's loopback, which no partition cuts.
// agent.GossipWatch in each would be wrong here as well as useless: with
// client agents, a thousand machines in this process each dialling three
// agents' gossip ports every 100-500 ms (~6,000 connections a second)
// saturate the host, time out, and fence themselves; alone on the server's
// agent they have no one to probe.
type loopbackWatch struct{}

func (loopbackWatch) Watch(context.Context, chan<- bool) {}

// Wait waits until every simulated machine is published in Consul, reading
// machines/ with blocking queries.
func (h *Harness) Wait(ctx context.Context) error {
	want := map[string]bool{}
	for _, m := range h.Machines {
		want[m.ID] = true
	}
	var index uint64
	for {
		keys, meta, err := h.client.KV().Keys(h.prefix+"machines/", "", (&api.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("read machines: %w", err)
		}
		n := 0
		for _, k := range keys {
			if want[k[strings.LastIndexByte(k, '/')+1:]] {
				n++
			}
		}
		if n == len(want) {
			return nil
		}
		index = meta.LastIndex
	}
}

// Stop stops every agent (its units stay, as a fleetd's do on SIGTERM),
// then every heartbeat. With leave, each machine also destroys its session
// and deregisters, so the cluster sees it go at once; without, the machines
// vanish when their TTL runs out (or with the Consul server).
func (h *Harness) Stop(leave bool) {
	for _, m := range h.Machines {
		if m != nil {
			m.stopRun()
		}
	}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, m := range h.Machines {
		if m == nil {
			continue
		}
		<-m.done
		if leave {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				m.hb.Stop(ctx)
				cancel()
				<-sem
			}()
		}
	}
	wg.Wait()
	for _, m := range h.Machines {
		if m != nil {
			m.stopBeat()
		}
	}
	for _, t := range h.transports {
		t.CloseIdleConnections()
	}
	stopAgents(h.Agents)
	h.Agents = nil
}

// newClient is one Consul client for machines simulated machines, with a
// pool of connsFor(machines) connections, counting requests
// and, with states, recording the unit states written.
func newClient(endpoint string, machines int, counter *RequestCounter, states *StateLog) (*api.Client, *http.Transport, error) {
	// The client is fleetd's (registry.NewClientWith): it reads and
	// decodes Consul's answers as the fleetds it stands for do.
	var transport *http.Transport
	conns := connsFor(machines)
	c, err := registry.NewClientWith(endpoint, "", registry.ClientOptions{
		Transport: func(t *http.Transport) {
			// Without a bound, a burst of wakes at 5,000 machines
			// opens more connections than this process may have files.
			// Every connection of the pool stays open between requests,
			// as a fleetd's few connections to its own agent do: with
			// one idle connection kept per machine, each wave of wakes
			// closed some and dialed them again, a setup per request
			// for this process and the client agents that real
			// machines do not pay.
			t.MaxConnsPerHost, t.MaxIdleConns, t.MaxIdleConnsPerHost = conns, conns, conns
			transport = t
		},
		Wrap: func(next http.RoundTripper) http.RoundTripper {
			return &countingTransport{next: next, counter: counter, states: states}
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("consul client for %s: %w", endpoint, err)
	}
	return c, transport, nil
}
