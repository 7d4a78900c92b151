package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/apitls"
	"github.com/wasmfleet/fleet/internal/watch"
)

// Heartbeat keeps this machine alive in Consul.
//
// It registers the machine as an instance of the "fleet" service with a TTL
// check, keeps the check passing, and holds a session bound to that check and
// to the node's gossip health (serfHealth). When fleetd dies the check goes
// critical within the TTL; when the machine dies gossip notices sooner. Either
// way Consul invalidates the session and deletes every key it holds, which is
// how the leader learns the machine is gone.
type Heartbeat struct {
	client    *api.Client
	machineID string
	ip        string
	meta      map[string]string
	ttl       time.Duration
	log       *slog.Logger

	// Port is where the machine's InspectServer listens, registered with
	// the fleet-agent service so fleetctl finds it. Set before Start.
	Port int
	// Scheme is the scheme Port answers ("https" or "http"), registered
	// as the service's apitls.SchemeMeta. Set before Start.
	Scheme string
	// MetricsAddr is where fleetd serves Prometheus metrics ("" when it
	// does not), shown as the service's metrics-addr meta. Set before
	// Start; SetMetricsAddr changes it later.
	MetricsAddr string
	// Metrics counts heartbeats and sessions; nil records nothing. Set
	// before Start.
	Metrics *Metrics

	mu      sync.Mutex
	id      string        // current session ID
	renewed chan struct{} // closed when the session is replaced
	halt    func()        // stops Run (set by Run)
	halted  chan struct{} // closed once Run stopped (set by Run)
}

// NewHeartbeat returns a Heartbeat for the machine; call Start, then Run.
func NewHeartbeat(client *api.Client, machineID, ip string, meta map[string]string, ttl time.Duration, log *slog.Logger) *Heartbeat {
	return &Heartbeat{client: client, machineID: machineID, ip: ip, meta: meta, ttl: ttl, log: log, renewed: make(chan struct{})}
}

// ServiceID is the ID of the machine's fleet-agent service instance.
func (h *Heartbeat) ServiceID() string { return "fleet-agent:" + h.machineID }

// CheckID is the Consul check whose health the session follows.
func (h *Heartbeat) CheckID() string { return "fleet-machine:" + h.machineID }

// ID is the current session ID.
func (h *Heartbeat) ID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.id
}

// Replaced returns a channel closed when the session is replaced by a new one
// (the old one was invalidated); holders of keys must write them again.
func (h *Heartbeat) Replaced() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.renewed
}

// Start registers the machine's service and check, then takes over the
// machine's session if a previous fleetd left it alive (a restart within the
// TTL: nothing moves), or creates one.
func (h *Heartbeat) Start(ctx context.Context) error {
	if err := h.register(ctx); err != nil {
		return err
	}
	if id := h.existingSession(ctx); id != "" {
		h.mu.Lock()
		h.id = id
		h.mu.Unlock()
		h.log.Info("re-attached to the machine's session", "session", id)
		return nil
	}
	return h.newSession(ctx)
}

func (h *Heartbeat) sessionName() string { return "fleet machine " + h.machineID }

// existingSession finds a live session of this machine on the local Consul
// node, or returns "".
func (h *Heartbeat) existingSession(ctx context.Context) string {
	node, err := h.client.Agent().NodeName()
	if err != nil {
		return ""
	}
	ss, _, err := h.client.Session().Node(node, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return ""
	}
	for _, s := range ss {
		if s.Name == h.sessionName() {
			return s.ID
		}
	}
	return ""
}

// SetMeta replaces the machine metadata shown in its fleet-agent service
// instance (after a configuration reload, or a change of its dynamic
// metadata) and registers the instance again.
func (h *Heartbeat) SetMeta(ctx context.Context, meta map[string]string) error {
	h.mu.Lock()
	h.meta = meta
	h.mu.Unlock()
	return h.register(ctx)
}

// SetMetricsAddr changes the metrics address shown in the machine's
// fleet-agent service instance and registers the instance again.
func (h *Heartbeat) SetMetricsAddr(ctx context.Context, addr string) error {
	h.mu.Lock()
	h.MetricsAddr = addr
	h.mu.Unlock()
	return h.register(ctx)
}

func (h *Heartbeat) register(ctx context.Context) error {
	meta := map[string]string{"machine-id": h.machineID}
	h.mu.Lock()
	for k, v := range h.meta {
		if validMetaKey(k) {
			meta[k] = v
		}
	}
	if h.MetricsAddr != "" {
		meta["metrics-addr"] = h.MetricsAddr
	}
	if h.Scheme != "" {
		meta[apitls.SchemeMeta] = h.Scheme // after the machine's metadata: it is not theirs to set
	}
	h.mu.Unlock()
	reg := &api.AgentServiceRegistration{
		ID:      h.ServiceID(),
		Name:    "fleet-agent",
		Tags:    []string{"fleet", "machine"},
		Address: h.ip,
		Port:    h.Port,
		Meta:    meta,
		Check: &api.AgentServiceCheck{
			CheckID: h.CheckID(),
			Name:    "fleetd heartbeat",
			TTL:     h.ttl.String(),
			Status:  api.HealthPassing, // a session cannot be bound to a critical check
			Notes:   "fleetd renews this check; when it stops, the machine's units move elsewhere",
			// A machine gone for good leaves the catalog (Consul's minimum).
			DeregisterCriticalServiceAfter: "1m",
		},
	}
	if err := h.client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)); err != nil {
		return fmt.Errorf("register machine %s with Consul: %w", h.machineID, err)
	}
	// Registering again keeps the status of a check the local agent
	// already has: a machine back after its TTL ran out would find its
	// check critical and could never bind a new session to it.
	if err := h.client.Agent().UpdateTTLOpts(h.CheckID(), heartbeatOutput, api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("mark machine %s alive in Consul: %w", h.machineID, err)
	}
	return nil
}

func validMetaKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (h *Heartbeat) newSession(ctx context.Context) error {
	id, _, err := h.client.Session().Create(&api.SessionEntry{
		Name:     h.sessionName(),
		Behavior: api.SessionBehaviorDelete,
		// Every schedule write is fenced on the lock holder's session, so
		// the lock-delay safety net is not needed; 1ms is the smallest value
		// the client sends (0 would mean Consul's default of 15s).
		LockDelay:     time.Millisecond,
		NodeChecks:    []string{"serfHealth"},
		ServiceChecks: []api.ServiceCheck{{ID: h.CheckID()}},
	}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("create Consul session for machine %s: %w", h.machineID, err)
	}
	h.mu.Lock()
	old := h.id
	h.id = id
	if old != "" {
		close(h.renewed)
		h.renewed = make(chan struct{})
	}
	h.mu.Unlock()
	h.Metrics.sessionCreated()
	h.log.Info("session created", "session", id)
	return nil
}

// sessionWait is how long a read of the session waits for it to change
// (a blocking query): Consul answers at once when the session is
// invalidated, and otherwise after about this long.
const sessionWait = 5 * time.Minute

// Run keeps the check passing every third of the TTL and, apart
// (followSession), replaces the session when Consul invalidates it (after
// an outage longer than the TTL, say). It returns when ctx is done.
func (h *Heartbeat) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	halted := make(chan struct{})
	h.mu.Lock()
	h.halt, h.halted = cancel, halted
	h.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { h.followSession(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		close(halted)
	}()
	tick := time.NewTicker(h.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := h.beat(ctx)
		if ctx.Err() != nil {
			return
		}
		h.Metrics.renewal(err)
		if err != nil {
			h.log.Warn("heartbeat failed; units keep running, retrying", "err", err)
		}
	}
}

// heartbeatOutput is the output every renewal gives the check: always the
// same, and what a check registered without one has. A Consul agent writes
// a change of output alone back to the catalog check_update_interval later
// (five minutes by default), registering the check with its service
// again, which has the servers count every fleet-agent instance in the
// cluster; at thousands of machines a storm of such writes followed each
// start. A status change (a check back from critical) is written at once.
const heartbeatOutput = ""

// beat renews the check. It goes to the local agent alone, which keeps
// the check, so it is on time whatever the Consul servers do.
func (h *Heartbeat) beat(ctx context.Context) error {
	err := h.client.Agent().UpdateTTLOpts(h.CheckID(), heartbeatOutput, api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		// The local agent may have lost our registration (restarted without
		// state): register again.
		if rerr := h.register(ctx); rerr != nil {
			return fmt.Errorf("update check: %v; register again: %w", err, rerr)
		}
	}
	return nil
}

// followSession waits on the session with blocking queries and creates a
// new one when Consul invalidated it. The session lives on the Consul
// servers: a machine thus asks them about it once in sessionWait, not at
// every beat, and learns of an invalidation as soon as they do. A failed
// read (the servers unreachable) is retried at the beat's pace.
func (h *Heartbeat) followSession(ctx context.Context) {
	var (
		id    string
		index uint64
	)
	for ctx.Err() == nil {
		if cur := h.ID(); cur != id {
			id, index = cur, 0
		}
		alive, next, err := h.waitSession(ctx, id, index)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			h.Metrics.sessionReadFailed()
			h.log.Warn("reading the machine's session failed; units keep running, retrying", "err", err)
			watch.Sleep(ctx, h.ttl/3)
		case !alive:
			h.log.Warn("session was invalidated; creating a new one", "session", id)
			if err := h.replaceSession(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("creating a new session failed, retrying", "err", err)
				watch.Sleep(ctx, h.ttl/3)
			}
		case next < index:
			index = 0 // Consul restored a snapshot: its indexes start over
		default:
			index = next
		}
	}
}

// waitSession reads session id once it changed since index (at once for
// index 0), or after sessionWait, and reports whether it is alive.
func (h *Heartbeat) waitSession(ctx context.Context, id string, index uint64) (alive bool, next uint64, err error) {
	// Consul adds up to a sixteenth of the wait; past that, a read that
	// hangs is given up.
	ctx, cancel := context.WithTimeout(ctx, sessionWait+sessionWait/8)
	defer cancel()
	se, meta, err := h.client.Session().Info(id, (&api.QueryOptions{WaitIndex: index, WaitTime: sessionWait}).WithContext(ctx))
	if err != nil {
		return false, 0, fmt.Errorf("read session: %w", err)
	}
	return se != nil, meta.LastIndex, nil
}

// replaceSession creates a new session after the old one was
// invalidated. It renews the check first: a session cannot be bound to a
// check that went critical, as the check of a fleetd that was frozen
// longer than the TTL has.
func (h *Heartbeat) replaceSession(ctx context.Context) error {
	if err := h.beat(ctx); err != nil {
		return err
	}
	return h.newSession(ctx)
}

// ForgetStale destroys session if it is an earlier session of this machine
// on this Consul node (not the current one), and reports whether it did.
// Such a session outlives its use when fleetd took Consul's word that it
// was gone (a server restarting can briefly answer so) and made a new one:
// the old one, bound to the same check, stays alive and keeps holding the
// machine's keys, so the new one could never publish them.
func (h *Heartbeat) ForgetStale(ctx context.Context, session string) bool {
	if session == "" || session == h.ID() {
		return false
	}
	node, err := h.client.Agent().NodeName()
	if err != nil {
		return false
	}
	se, _, err := h.client.Session().Info(session, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || se == nil || se.Name != h.sessionName() || se.Node != node {
		return false
	}
	if _, err := h.client.Session().Destroy(session, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		h.log.Warn("destroying a stale session of this machine failed", "session", session, "err", err)
		return false
	}
	h.log.Warn("destroyed a stale session of this machine that held its keys", "session", session)
	return true
}

// Stop stops Run, then destroys the session and deregisters the machine,
// so the cluster sees it leave at once instead of after the TTL. (A Run
// still going would take the destroyed session for an invalidated one and
// open another, or register the machine again.)
func (h *Heartbeat) Stop(ctx context.Context) {
	h.mu.Lock()
	halt, halted := h.halt, h.halted
	h.mu.Unlock()
	if halt != nil {
		halt()
		select {
		case <-halted:
		case <-ctx.Done():
		}
	}
	if _, err := h.client.Session().Destroy(h.ID(), (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		h.log.Warn("destroy session", "err", err)
	}
	if err := h.client.Agent().ServiceDeregisterOpts(h.ServiceID(), (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		h.log.Warn("deregister machine", "err", err)
	}
}
