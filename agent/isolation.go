package agent

import (
	"context"
	"errors"
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

const (
	// isolationCheck is how often the agent probes.
	isolationCheck = 500 * time.Millisecond
	// probeTimeout bounds one probe; every probe of a check runs at once.
	probeTimeout = 300 * time.Millisecond
	// cutOffAfter is how many checks in a row must fail before the machine
	// counts as cut off: a dropped packet or two never stops units.
	cutOffAfter = 2
	// probesPerCheck is how many members one check tries.
	probesPerCheck = 3
	// membersTTL is how long a member list is reused.
	membersTTL = 10 * time.Second
)

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
func watchIsolation(ctx context.Context, client *api.Client, ip string, out chan<- bool) {
	var (
		state   isolation
		members []string
		fetched time.Time
	)
	tick := time.NewTicker(isolationCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(fetched) > membersTTL || len(members) == 0 {
			if m, err := peers(client); err == nil {
				members, fetched = m, time.Now()
			}
		}
		if len(members) == 0 {
			continue // alone in its pool (or the local agent is down): nothing to judge by
		}
		if state.observe(anyAnswers(ctx, ip, pick(members, probesPerCheck))) {
			select {
			case out <- state.isolated:
			case <-ctx.Done():
				return
			}
		}
	}
}

// Serf's member states, as the agent API reports them (AgentMember.Status).
const (
	memberAlive = 1
	memberLeft  = 3
)

// peers is the gossip addresses of the other members the local Consul agent
// knows, alive ones first. Members that left on purpose are not counted.
func peers(client *api.Client) ([]string, error) {
	self, err := client.Agent().NodeName()
	if err != nil {
		return nil, err
	}
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
	rand.Shuffle(len(alive), func(i, j int) { alive[i], alive[j] = alive[j], alive[i] })
	return append(alive, other...), nil
}

// pick takes n of members, rotating through the list from one check to the
// next so every member gets probed in time.
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

// anyAnswers reports whether any of addrs answers within probeTimeout,
// probing them all at once.
func anyAnswers(ctx context.Context, ip string, addrs []string) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
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
