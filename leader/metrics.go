package leader

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmfleet/fleet/internal/registry"
)

// Metrics are the leader's Prometheus instruments (docs/operations.md). A
// nil *Metrics records nothing. Only the machine holding the lock moves
// them, except fleet_leader_is_leader, which every candidate exports.
type Metrics struct {
	isLeader     prometheus.Gauge
	reconciles   prometheus.Counter
	duration     prometheus.Histogram
	placements   *prometheus.CounterVec   // by policy
	unschedules  *prometheus.CounterVec   // by cause
	unplaceable  *prometheus.GaugeVec     // by cause
	policyCalls  *prometheus.HistogramVec // by policy
	writeFailure prometheus.Counter
}

// policyCallBuckets suit calls that take microseconds to a fraction of a
// second: a placement policy, whose default time limit is 100ms.
// A reconcile pass, which takes milliseconds to seconds, has
// prometheus.DefBuckets.
var policyCallBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}

// NewMetrics registers the leader's metrics in r.
func NewMetrics(r prometheus.Registerer) *Metrics {
	m := &Metrics{
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fleet_leader_is_leader",
			Help: "1 while this machine holds the leader lock, else 0."}),
		reconciles: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleet_leader_reconciles_total",
			Help: "Reconcile passes this machine ran as leader: one per change seen in the cluster."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fleet_leader_reconcile_duration_seconds",
			Help:    "Time of one reconcile pass: deciding the plan (policy calls included) and writing it to Consul.",
			Buckets: prometheus.DefBuckets}),
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleet_leader_placements_total",
			Help: "Units this leader placed on a machine (schedule writes that went through), by the policy that chose."}, []string{"policy"}),
		unschedules: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleet_leader_unschedules_total",
			Help: "Units this leader took off a machine, by cause (inactive, machine_gone, global, or the rule the machine no longer met)."},
			[]string{"cause"}),
		unplaceable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fleet_leader_unplaceable_units",
			Help: "Units that should run but no machine could take, after the last reconcile pass, by cause (fleetctl list-unit-files --fields unit,reason says why)."},
			[]string{"cause"}),
		policyCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fleet_leader_policy_call_duration_seconds",
			Help:    "Time of one placement decision: a call of the unit's placement policy (built-in or uploaded WebAssembly), by policy.",
			Buckets: policyCallBuckets}, []string{"policy"}),
		writeFailure: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleet_leader_schedule_write_failures_total",
			Help: "Schedule writes that failed or lost a race; the next pass decides again."}),
	}
	r.MustRegister(m.isLeader, m.reconciles, m.duration, m.placements, m.unschedules, m.unplaceable, m.policyCalls, m.writeFailure)
	// Every cause has its series from the start, 0 until it counts, and so
	// does the built-in policy's: a rate over them needs no first event.
	for _, c := range UnplacedCauses {
		m.unplaceable.WithLabelValues(string(c))
	}
	for _, c := range UnscheduleCauses {
		m.unschedules.WithLabelValues(string(c))
	}
	m.placements.WithLabelValues(registry.BuiltinPolicy)
	m.policyCalls.WithLabelValues(registry.BuiltinPolicy)
	return m
}

func (m *Metrics) leading(yes bool) {
	if m == nil {
		return
	}
	v := 0.0
	if yes {
		v = 1
	}
	m.isLeader.Set(v)
}

// reconciled records one pass that started at start.
func (m *Metrics) reconciled(start time.Time, plan Plan) {
	if m == nil {
		return
	}
	m.reconciles.Inc()
	m.duration.Observe(time.Since(start).Seconds())
	count := map[Cause]int{}
	for _, u := range plan.Unplaced {
		count[u.Cause]++
	}
	for _, c := range UnplacedCauses { // each series set, none removed: a scrape never sees one missing
		m.unplaceable.WithLabelValues(string(c)).Set(float64(count[c]))
	}
}

func (m *Metrics) applied(a Action, err error) {
	if m == nil {
		return
	}
	switch {
	case err != nil:
		m.writeFailure.Inc()
	case a.Kind == Schedule:
		m.placements.WithLabelValues(a.Policy).Inc()
	case a.Kind == Unschedule:
		m.unschedules.WithLabelValues(string(a.Cause)).Inc()
	}
}

// timedPlacer times each placement decision of the Placer it wraps.
type timedPlacer struct {
	p Placer
	m *Metrics
}

func (t timedPlacer) Begin(ctx context.Context, s *registry.Snapshot, candidates []Candidate) Pass {
	return timedPass{p: t.p.Begin(ctx, s, candidates), m: t.m}
}

// timedPass times each decision of the Pass it wraps.
type timedPass struct {
	p Pass
	m *Metrics
}

func (t timedPass) Place(j *registry.Job) Decision {
	start := time.Now()
	d := t.p.Place(j)
	t.m.policyCalls.WithLabelValues(d.Policy).Observe(time.Since(start).Seconds())
	return d
}

func (t timedPass) Placed(j *registry.Job, machine string) { t.p.Placed(j, machine) }

// placer is p, timed when there are metrics.
func (m *Metrics) placer(p Placer) Placer {
	if m == nil {
		return p
	}
	return timedPlacer{p: p, m: m}
}
