// Package metrics is fleetd's Prometheus instrumentation, in the standard
// library alone: counters, gauges and histograms, each with optional
// labels, kept in a Registry that writes them in Prometheus' text
// exposition format (version 0.0.4) for GET /metrics.
//
// It does just what fleetd needs. A metric is registered once, by name,
// with its label names; its series appear when first used (an unlabelled
// metric is there from the start, at zero). Every method is safe for
// concurrent use and does nothing on a nil receiver, so a component built
// without metrics (in a unit test, say) needs no checks.
//
// ParseText reads the same format back, for tests that scrape a fleetd.
//
// docs/operations.md lists every metric fleetd exports.
package metrics
