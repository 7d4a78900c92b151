package agent

import (
	"github.com/wasmfleet/fleet/internal/metrics"
	"github.com/wasmfleet/fleet/internal/registry"
)

// Metrics are the agent's Prometheus instruments (docs/operations.md). A
// nil *Metrics records nothing.
type Metrics struct {
	units           *metrics.Gauge
	driverOps       *metrics.Counter
	renewals        *metrics.Counter
	renewalFailures *metrics.Counter
	sessions        *metrics.Counter
	rejected        *metrics.Gauge
	rejections      *metrics.Counter
}

// NewMetrics registers the agent's metrics in r.
func NewMetrics(r *metrics.Registry) *Metrics {
	return &Metrics{
		units: r.Gauge("fleet_agent_units",
			"Units this machine holds, by systemd active state (active, inactive, failed, activating, deactivating, reloading).", "state"),
		driverOps: r.Counter("fleet_agent_driver_operations_total",
			"Calls of the unit driver (systemd over D-Bus, or exec) by operation (load, start, stop, unload, sync) and result (ok, error).", "op", "result"),
		renewals: r.Counter("fleet_agent_session_renewals_total",
			"Heartbeats: the TTL check the machine's Consul session is bound to passed again and the session was confirmed alive."),
		renewalFailures: r.Counter("fleet_agent_session_renewal_failures_total",
			"Heartbeats that failed (Consul unreachable, say); the TTL runs on meanwhile."),
		sessions: r.Counter("fleet_agent_sessions_created_total",
			"Consul sessions this fleetd created: one at start unless it re-attached, then one per session Consul invalidated."),
		rejected: r.Gauge("fleet_agent_schedule_rejected",
			"Entries of this machine's schedule the agent rejects and does not run (a key that is no unit name, a value the leader cannot have written, a body missing or not its hash's), at the last read."),
		rejections: r.Counter("fleet_agent_schedule_rejections_total",
			"Rejected schedule entries logged: one per entry the agent rejected, and again each time such an entry changes."),
	}
}

// activeStates are exported even at zero, so a dashboard shows 0, not no data.
var activeStates = []string{"active", "inactive", "failed", "activating", "deactivating", "reloading"}

func (m *Metrics) unitStates(states map[string]registry.UnitState) {
	if m == nil {
		return
	}
	n := make(map[string]float64, len(activeStates))
	for _, s := range activeStates {
		n[s] = 0
	}
	for _, st := range states {
		active := st.Active
		if active == "" {
			active = "unknown"
		}
		n[active]++
	}
	m.units.Replace(n)
}

func (m *Metrics) driverOp(op string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.driverOps.Inc(op, result)
}

func (m *Metrics) renewal(err error) {
	if m == nil {
		return
	}
	m.renewals.Inc()
	if err != nil {
		m.renewalFailures.Inc()
	}
}

func (m *Metrics) sessionCreated() {
	if m == nil {
		return
	}
	m.sessions.Inc()
}

func (m *Metrics) rejection() {
	if m == nil {
		return
	}
	m.rejections.Inc()
}

func (m *Metrics) rejectedEntries(n int) {
	if m == nil {
		return
	}
	m.rejected.Set(float64(n))
}
