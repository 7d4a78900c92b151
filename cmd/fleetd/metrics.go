package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wasmfleet/fleet/internal/version"
)

// defaultMetricsAddr is loopback, so a fleetd exposes nothing to the
// network unless told to, while a Prometheus agent or curl on the machine
// finds the metrics without configuration; the port is the one after
// --api-addr's.
const defaultMetricsAddr = "127.0.0.1:54729"

// newMetricsRegistry returns the registry of this fleetd's metrics, holding
// fleet_build_info and the Go runtime's and the process's collectors
// (go_goroutines, process_resident_memory_bytes, ...); the agent and the
// leader add theirs.
func newMetricsRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "fleet_build_info",
		Help:        "Always 1; the version label is fleetd's version.",
		ConstLabels: prometheus.Labels{"version": version.Version}})
	build.Set(1)
	r.MustRegister(build, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// consulReadBytes registers fleet_consul_read_bytes_total in r and returns
// what the Consul client calls with each piece of an answer it reads
// (registry.ClientOptions.ReadBytes): what this fleetd's reads cost it and
// Consul, which grows with the cluster for the leader.
func consulReadBytes(r *prometheus.Registry) func(int) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "fleet_consul_read_bytes_total",
		Help: "Bytes of Consul's HTTP answers this fleetd read."})
	r.MustRegister(c)
	return func(n int) { c.Add(float64(n)) }
}

// metricsServer serves /metrics on an address that a configuration
// reload can change.
type metricsServer struct {
	handler http.Handler
	pprof   bool // serve Go's profiles at /debug/pprof/ too (--pprof)

	mu   sync.Mutex
	srv  *http.Server
	addr string // the address asked for; "" when off
}

// listen serves on addr ("" turns metrics off) in place of the address it
// served on, and returns the address bound ("" when off). When addr cannot
// be opened, the old address is opened again and an error returned.
func (m *metricsServer) listen(addr string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.addr
	m.stop() // first: the new address may use the same port
	bound, err := m.start(addr)
	if err == nil {
		return bound, nil
	}
	err = fmt.Errorf("listen for metrics on --metrics-addr %s: %w", addr, err)
	if old != "" {
		if _, rerr := m.start(old); rerr != nil {
			err = errors.Join(err, fmt.Errorf("metrics on %s again: %w", old, rerr))
		}
	}
	return "", err
}

func (m *metricsServer) start(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.handler) // and HEAD; anything else is 405
	if m.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	m.addr = addr
	go func(srv *http.Server) { _ = srv.Serve(ln) }(m.srv) // returns when closed
	return ln.Addr().String(), nil
}

func (m *metricsServer) stop() {
	if m.srv != nil {
		_ = m.srv.Close()
	}
	m.srv, m.addr = nil, ""
}

// close stops serving metrics.
func (m *metricsServer) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stop()
}
