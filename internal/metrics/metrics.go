package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry holds a process's metrics and writes them for a scrape.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{families: map[string]*family{}} }

// kind is a metric's TYPE.
type kind string

const (
	counterKind   kind = "counter"
	gaugeKind     kind = "gauge"
	histogramKind kind = "histogram"
)

// family is one metric: its series, keyed by their label values.
type family struct {
	name, help string
	kind       kind
	labels     []string
	buckets    []float64 // histograms: upper bounds, ascending, without +Inf

	mu     sync.Mutex
	series map[string]*series
}

// series is one combination of label values.
type series struct {
	values []string
	value  float64  // counter or gauge
	counts []uint64 // histogram: per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

func (r *Registry) register(name, help string, k kind, labels []string, buckets []float64) *family {
	if !validName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	for _, l := range labels {
		if !validName(l) || strings.ContainsRune(l, ':') || strings.HasPrefix(l, "__") || (k == histogramKind && l == "le") {
			panic(fmt.Sprintf("metrics: invalid label name %q for %s", l, name))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.families[name]; dup {
		panic(fmt.Sprintf("metrics: %s registered twice", name))
	}
	f := &family{name: name, help: help, kind: k, labels: labels, buckets: buckets, series: map[string]*series{}}
	if len(labels) == 0 {
		f.get(nil) // an unlabelled metric is exported from the start
	}
	r.families[name] = f
	return f
}

// get returns the series for values, creating it; f.mu must be held or f
// not yet shared.
func (f *family) get(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values (%s), got %d", f.name, len(f.labels), strings.Join(f.labels, ", "), len(values)))
	}
	key := strings.Join(values, "\xff")
	s := f.series[key]
	if s == nil {
		s = &series{values: append([]string(nil), values...)}
		if f.kind == histogramKind {
			s.counts = make([]uint64, len(f.buckets)+1)
		}
		f.series[key] = s
	}
	return s
}

// Counter is a value that only goes up: events counted since the process
// started.
type Counter struct{ f *family }

// Counter registers a counter. Its name should end in _total.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	return &Counter{r.register(name, help, counterKind, labels, nil)}
}

// Inc adds one to the series with the given label values.
func (c *Counter) Inc(labelValues ...string) { c.Add(1, labelValues...) }

// Add adds v (which must not be negative) to the series with the given
// label values.
func (c *Counter) Add(v float64, labelValues ...string) {
	if c == nil {
		return
	}
	if v < 0 {
		panic("metrics: counter " + c.f.name + " decreased")
	}
	c.f.mu.Lock()
	c.f.get(labelValues).value += v
	c.f.mu.Unlock()
}

// Gauge is a value that goes up and down: how many, right now.
type Gauge struct{ f *family }

// Gauge registers a gauge.
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	return &Gauge{r.register(name, help, gaugeKind, labels, nil)}
}

// Set sets the series with the given label values to v.
func (g *Gauge) Set(v float64, labelValues ...string) {
	if g == nil {
		return
	}
	g.f.mu.Lock()
	g.f.get(labelValues).value = v
	g.f.mu.Unlock()
}

// Replace sets a gauge with exactly one label to values, keyed by that
// label's value, dropping every series not in values, in one step: a
// scrape sees the old set or the new one, never a mix.
func (g *Gauge) Replace(values map[string]float64) {
	if g == nil {
		return
	}
	if len(g.f.labels) != 1 {
		panic("metrics: Replace needs a gauge with one label; " + g.f.name + " has " + strconv.Itoa(len(g.f.labels)))
	}
	g.f.mu.Lock()
	defer g.f.mu.Unlock()
	clear(g.f.series)
	for v, x := range values {
		g.f.get([]string{v}).value = x
	}
}

// Histogram counts observations (durations, mostly) in buckets.
type Histogram struct{ f *family }

// Histogram registers a histogram with the given bucket upper bounds
// (ascending; +Inf is added). Its name should end in the unit, such as
// _seconds.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *Histogram {
	if len(buckets) == 0 || !sort.Float64sAreSorted(buckets) {
		panic("metrics: histogram " + name + " needs ascending buckets")
	}
	if math.IsInf(buckets[len(buckets)-1], +1) {
		buckets = buckets[:len(buckets)-1]
	}
	return &Histogram{r.register(name, help, histogramKind, labels, append([]float64(nil), buckets...))}
}

// Observe records v in the series with the given label values.
func (h *Histogram) Observe(v float64, labelValues ...string) {
	if h == nil {
		return
	}
	i := sort.SearchFloat64s(h.f.buckets, v) // first bucket with bound >= v
	h.f.mu.Lock()
	s := h.f.get(labelValues)
	s.counts[i]++
	s.sum += v
	s.count++
	h.f.mu.Unlock()
}

// DurationBuckets suit operations that take milliseconds to seconds (a
// reconcile pass, a call to Consul), as Prometheus' client libraries'
// defaults do.
var DurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// FastBuckets suit calls that take microseconds to a fraction of a second
// (a placement policy, whose default time limit is 100ms).
var FastBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}

// Write writes every metric in the text exposition format, metrics sorted
// by name and series by label values, so two scrapes of an idle process
// are identical.
func (r *Registry) Write(w io.Writer) error {
	r.mu.Lock()
	fams := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	sort.Slice(fams, func(a, b int) bool { return fams[a].name < fams[b].name })
	bw := bufio.NewWriter(w)
	for _, f := range fams {
		f.write(bw)
	}
	return bw.Flush()
}

func (f *family) write(w *bufio.Writer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
	keys := make([]string, 0, len(f.series))
	for k := range f.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := f.series[k]
		if f.kind != histogramKind {
			writeSample(w, f.name, f.labels, s.values, "", s.value)
			continue
		}
		var cum uint64
		for i, n := range s.counts {
			cum += n
			le := "+Inf"
			if i < len(f.buckets) {
				le = formatFloat(f.buckets[i])
			}
			writeSample(w, f.name+"_bucket", f.labels, s.values, le, float64(cum))
		}
		writeSample(w, f.name+"_sum", f.labels, s.values, "", s.sum)
		writeSample(w, f.name+"_count", f.labels, s.values, "", float64(s.count))
	}
}

func writeSample(w *bufio.Writer, name string, labels, values []string, le string, v float64) {
	w.WriteString(name)
	if len(labels) > 0 || le != "" {
		w.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.WriteByte(',')
			}
			fmt.Fprintf(w, "%s=\"%s\"", l, escapeLabel(values[i]))
		}
		if le != "" {
			if len(labels) > 0 {
				w.WriteByte(',')
			}
			fmt.Fprintf(w, "le=\"%s\"", le)
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, +1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// validName reports whether s is a valid metric or label name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// Handler serves the registry's metrics to GET and HEAD requests.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		if req.Method == http.MethodHead {
			return
		}
		_ = r.Write(w) // a scraper that hung up is no error of ours
	})
}
