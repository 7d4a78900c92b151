package scale

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/wasmfleet/fleet/testcluster"
)

// Metrics is one scrape of a Prometheus text endpoint: each sample (name
// and labels, as the text format writes them, labels sorted by name) and
// its value. Of histograms and summaries only _sum and _count are kept,
// not buckets or quantiles.
type Metrics map[string]float64

// Scrape reads the Prometheus metrics at url: Consul's
// /v1/agent/metrics?format=prometheus (its prometheus_retention_time must
// be set) or a fleetd's /metrics.
func Scrape(ctx context.Context, url string) (Metrics, error) {
	fams, err := testcluster.ScrapeMetrics(ctx, url)
	if err != nil {
		return nil, err
	}
	m := Metrics{}
	for _, f := range fams {
		name := f.GetName()
		for _, s := range f.GetMetric() {
			labels := s.GetLabel()
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				m[seriesKey(name, labels)] = s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				m[seriesKey(name, labels)] = s.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				m[seriesKey(name, labels)] = s.GetUntyped().GetValue()
			case dto.MetricType_SUMMARY:
				m[seriesKey(name+"_sum", labels)] = s.GetSummary().GetSampleSum()
				m[seriesKey(name+"_count", labels)] = float64(s.GetSummary().GetSampleCount())
			case dto.MetricType_HISTOGRAM:
				m[seriesKey(name+"_sum", labels)] = s.GetHistogram().GetSampleSum()
				m[seriesKey(name+"_count", labels)] = float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return m, nil
}

// seriesKey is a sample's name and labels as the text format writes them,
// labels sorted by name.
func seriesKey(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	labels = slices.SortedFunc(slices.Values(labels), func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=\"%s\"", l.GetName(), labelEscaper.Replace(l.GetValue()))
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// Delta is after minus m, series by series, leaving out those that did not
// change.
func (m Metrics) Delta(after Metrics) Metrics {
	d := Metrics{}
	for k, v := range after {
		if x := v - m[k]; x != 0 {
			d[k] = x
		}
	}
	return d
}

// Sum adds the series whose name is name, whatever their labels.
func (m Metrics) Sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// Label returns the value of label in series key ("" when absent).
func Label(key, label string) string {
	i := strings.Index(key, label+`="`)
	if i < 0 {
		return ""
	}
	rest := key[i+len(label)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}

// procStatus returns the kilobytes of field (VmRSS, VmHWM) of
// /proc/PID/status.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuSeconds is a process's user+system CPU time so far, 0 when it cannot
// be read (the process is gone).
func cpuSeconds(pid int) float64 {
	d, err := testcluster.CPUTime(pid)
	if err != nil {
		return 0
	}
	return d.Seconds()
}
