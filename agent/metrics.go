package agent

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmfleet/fleet/internal/registry"
)

// Metrics are the agent's Prometheus instruments (docs/operations.md). A
// nil *Metrics records nothing.
type Metrics struct {
	units           *unitsCollector
	driverOps       *prometheus.CounterVec
	renewals        prometheus.Counter
	renewalFailures prometheus.Counter
	readFailures    prometheus.Counter
	sessions        prometheus.Counter
	rejected        prometheus.Gauge
	rejections      prometheus.Counter
}

// NewMetrics registers the agent's metrics in r.
func NewMetrics(r prometheus.Registerer) *Metrics {
	m := &Metrics{
		units: &unitsCollector{desc: prometheus.NewDesc("fleet_agent_units",
			"Units this machine holds, by systemd active state (active, inactive, failed, activating, deactivating, reloading).",
			[]string{"state"}, nil)},
		driverOps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleet_agent_driver_operations_total",
			Help: "Calls of the unit driver (systemd over D-Bus, or exec) by operation (load, start, stop, unload, sync) and result (ok, error)."},
			[]string{"op", "result"}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleet_agent_session_renewals_total",
			Help: "Heartbeats: the TTL check the machine's Consul session is bound to passed again."}),
		renewalFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleet_agent_session_renewal_failures_total",
			Help: "Heartbeats that failed (the local Consul agent unreachable, say); the TTL runs on meanwhile."}),
		readFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleet_agent_session_read_failures_total",
			Help: "Reads of the machine's Consul session that failed (the Consul servers unreachable, say), retried every third of the TTL; the session is otherwise read once in five minutes, and at once when Consul invalidates it."}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleet_agent_sessions_created_total",
			Help: "Consul sessions this fleetd created: one at start unless it re-attached, then one per session Consul invalidated."}),
		rejected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fleet_agent_schedule_rejected",
			Help: "Entries of this machine's schedule the agent rejects and does not run (a key that is no unit name, a value the leader cannot have written, a body missing or not its hash's), at the last read."}),
		rejections: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleet_agent_schedule_rejections_total",
			Help: "Rejected schedule entries logged: one per entry the agent rejected, and again each time such an entry changes."}),
	}
	r.MustRegister(m.units, m.driverOps, m.renewals, m.renewalFailures, m.readFailures, m.sessions, m.rejected, m.rejections)
	return m
}

// unitsCollector exports fleet_agent_units from the counts of the agent's
// last look at its units, replaced whole: a scrape sees the old counts or
// the new ones, never a mix (as a GaugeVec's Reset followed by Sets would
// show).
type unitsCollector struct {
	desc *prometheus.Desc

	mu     sync.Mutex
	counts map[string]float64 // by active state; never changed once set
}

func (c *unitsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *unitsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	counts := c.counts
	c.mu.Unlock()
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, state)
	}
}

// replace makes counts, which the caller must not change afterwards, the
// exported ones.
func (c *unitsCollector) replace(counts map[string]float64) {
	c.mu.Lock()
	c.counts = counts
	c.mu.Unlock()
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
	m.units.replace(n)
}

func (m *Metrics) driverOp(op string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.driverOps.WithLabelValues(op, result).Inc()
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

func (m *Metrics) sessionReadFailed() {
	if m == nil {
		return
	}
	m.readFailures.Inc()
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
