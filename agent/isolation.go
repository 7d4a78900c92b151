package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

// A machine cut off from the network keeps running its units, and the rest
// of the cluster, which sees it die, starts them elsewhere: two copies. To
// keep that window closed, the agent watches for isolation and stops its
// units itself when it is cut off, before the cluster can have moved them
// (the cluster needs a gossip failure detection, a session invalidation and
// a placement: seconds; RELIABILITY.md).
//
// Cut off means: no other member of the Consul gossip pool answers a TCP
// connection to its gossip port (a refused connection is an answer: the
// host is reachable). The member list comes from the local Consul agent,
// which needs no server. A Consul server outage is therefore not isolation:
// the other machines still answer, so units keep running through it.

// How often the agent probes, and how long one probe may take: Consul's
// own gossip probe interval and timeout (read from the local agent), within
// these bounds. Following gossip keeps the agent ahead of the cluster,
// which notices a node's failure only after several probe intervals
// (RATIONALE.md): with Consul's defaults (1 s, 500 ms) the agent checks
// every 500 ms, with the recommended fast gossip (200 ms, 100 ms) every
// 200 ms.
const (
	minCheck, maxCheck = 100 * time.Millisecond, 500 * time.Millisecond
	minProbe, maxProbe = 50 * time.Millisecond, 300 * time.Millisecond
)

const (
	// cutOffAfter is how many checks in a row must fail before the machine
	// counts as cut off: a dropped packet or two never stops units.
	cutOffAfter = 2
	// probesPerCheck is how many members one check tries.
	probesPerCheck = 3
	// membersTTL is how long a member list is reused.
	membersTTL = 10 * time.Second
)

// IsolationWatch tells an agent when its machine is cut off from the rest
// of the cluster and when it is back (Config.Isolation).
//
// # Notes
//
// The watch is a component the agent is built with, not a setting, because
// how a machine learns that it is cut off depends on where it runs, which
// only whoever builds the agent knows. A real machine has its own network
// and CPU, and probes its gossip peers itself (GossipWatch, the default).
// Many agents in one process on one host, as the scale harness runs a
// thousand, share that host's network: one machine's probes multiplied by a
// thousand would saturate the host, time out, and fence machines that are
// not cut off, so the harness gives them a watch that fits that host.
type IsolationWatch interface {
	// Watch sends on out each time the machine's isolation changes (true:
	// cut off; false: it reaches the cluster again), and returns when ctx
	// is done. A watch that will report nothing may return at once.
	Watch(ctx context.Context, out chan<- bool)
}

// GossipWatch is the isolation watch of a real machine: it probes the
// other members of the local Consul agent's gossip pool as described
// above, from the machine's own address.
type GossipWatch struct {
	Client *api.Client // the machine's local Consul agent
	IP     string      // the machine's own address: probes leave from it
	Log    *slog.Logger
}

// Watch implements IsolationWatch.
func (w GossipWatch) Watch(ctx context.Context, out chan<- bool) {
	watchIsolation(ctx, w.Client, w.IP, w.Log, out)
}

// isolationWatch is the watch the agent was built with, GossipWatch on its
// own Consul client and address when none.
func (a *Agent) isolationWatch() IsolationWatch {
	if a.cfg.Isolation != nil {
		return a.cfg.Isolation
	}
	return GossipWatch{Client: a.cfg.Registry.Client(), IP: a.cfg.Machine.IP, Log: a.cfg.Log}
}

// isolation decides, from successive probe results, when the machine is
// cut off and when it is back. It is the pure part of watchIsolation.
type isolation struct {
	failed   int  // checks in a row in which nobody answered
	isolated bool // reported state
}

// observe records one check (reached: some member answered) and reports
// whether the reported state changed.
func (i *isolation) observe(reached bool) (changed bool) {
	if reached {
		i.failed = 0
		if i.isolated {
			i.isolated = false
			return true
		}
		return false
	}
	i.failed++
	if !i.isolated && i.failed >= cutOffAfter {
		i.isolated = true
		return true
	}
	return false
}

// watchIsolation reports on out whenever the machine's isolation changes
// (true: cut off). ip is the machine's own address: probes leave from it,
// as the machine's traffic to the cluster does. It returns when ctx is done.
func watchIsolation(ctx context.Context, client *api.Client, ip string, log *slog.Logger, out chan<- bool) {
	var (
		state   isolation
		view    = gossipView{check: maxCheck, probe: maxProbe}
		fetched time.Time
		// The member list is read in the background: a request to the local
		// agent must never hold up the probes.
		fetching = false
		views    = make(chan *gossipView, 1)
	)
	tick := time.NewTicker(view.check)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-views:
			fetching = false
			if v != nil {
				if v.check != view.check {
					tick.Reset(v.check)
				}
				view, fetched = *v, time.Now()
			}
			continue
		case <-tick.C:
		}
		// A list read is kept for membersTTL even when empty (a lone
		// Consul node, as under fleetd dev): reading it again on every
		// check cost the local agent two requests per machine every
		// 100-500 ms. A failed read leaves fetched alone: retried at once.
		if !fetching && time.Since(fetched) > membersTTL {
			fetching = true
			go func() {
				v, err := readGossipView(client)
				if err != nil {
					v = nil
				}
				views <- v
			}()
		}
		if len(view.members) == 0 {
			continue // alone in its pool (or the local agent is down): nothing to judge by
		}
		probed := pick(view.members, probesPerCheck)
		reached := anyAnswers(ctx, ip, probed, view.probe)
		if !reached && state.failed == 0 {
			log.Warn("no other machine answered", "probed", probed)
		}
		if state.observe(reached) {
			select {
			case out <- state.isolated:
			case <-ctx.Done():
				return
			}
		}
	}
}

// gossipView is what the local Consul agent tells about the gossip pool:
// the members to probe and how often and how long to probe them.
type gossipView struct {
	members      []string
	check, probe time.Duration
}

func readGossipView(client *api.Client) (*gossipView, error) {
	self, err := client.Agent().Self()
	if err != nil {
		return nil, err
	}
	members, err := peers(client, fmt.Sprint(self["Config"]["NodeName"]))
	if err != nil {
		return nil, err
	}
	dc := self["DebugConfig"]
	return &gossipView{
		members: members,
		check:   clamp(duration(dc["GossipLANProbeInterval"]), minCheck, maxCheck),
		probe:   clamp(duration(dc["GossipLANProbeTimeout"]), minProbe, maxProbe),
	}, nil
}

// duration reads a duration from the agent's JSON: "200ms", or nanoseconds.
func duration(v any) time.Duration {
	switch v := v.(type) {
	case string:
		d, _ := time.ParseDuration(v)
		return d
	case float64:
		return time.Duration(v)
	}
	return 0
}

// clamp bounds d; an unknown (zero) d is hi, the cautious choice.
func clamp(d, lo, hi time.Duration) time.Duration {
	if d <= 0 {
		return hi
	}
	return min(max(d, lo), hi)
}

// Serf's member states, as the agent API reports them (AgentMember.Status).
const (
	memberAlive = 1
	memberLeft  = 3
)

// peers is the gossip addresses of the other members the local Consul agent
// sees alive; when it sees none alive (it is probably cut off itself), all
// it knows but those that left on purpose, to find out when the way back
// is open. Dead machines are never probed while live ones are known: a
// cluster that lost a few machines must not take itself for cut off.
func peers(client *api.Client, self string) ([]string, error) {
	list, err := client.Agent().Members(false)
	if err != nil {
		return nil, err
	}
	var alive, other []string
	for _, m := range list {
		if m.Name == self || m.Status == memberLeft {
			continue
		}
		addr := net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))
		if m.Status == memberAlive {
			alive = append(alive, addr)
		} else {
			other = append(other, addr)
		}
	}
	if len(alive) == 0 {
		return other, nil
	}
	return alive, nil
}

// pick takes n consecutive members from a random place in the list, so
// that over successive checks every member gets probed.
func pick(members []string, n int) []string {
	if len(members) <= n {
		return members
	}
	start := rand.IntN(len(members))
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, members[(start+i)%len(members)])
	}
	return out
}

// anyAnswers reports whether any of addrs answers within timeout, probing
// them all at once.
func anyAnswers(ctx context.Context, ip string, addrs []string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	answers := make(chan bool, len(addrs))
	for _, a := range addrs {
		go func() { answers <- answering(ctx, ip, a) }()
	}
	for range addrs {
		if <-answers {
			return true
		}
	}
	return false
}

// answering reports whether a TCP connection to addr opens or is refused
// (both prove the way there works), leaving from ip when it is one of this
// host's addresses.
func answering(ctx context.Context, ip, addr string) bool {
	var d net.Dialer
	if a := net.ParseIP(ip); a != nil {
		d.LocalAddr = &net.TCPAddr{IP: a}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if errors.Is(err, syscall.EADDRNOTAVAIL) && d.LocalAddr != nil {
		d.LocalAddr = nil // not an address of this host: let the kernel choose
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err == nil {
		c.Close()
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// fencedWant is want with every unit stopped (kept loaded): what a machine
// that is cut off runs.
func fencedWant(want map[string]Want) map[string]Want {
	out := make(map[string]Want, len(want))
	for n, w := range want {
		w.Launched = false
		out[n] = w
	}
	return out
}
