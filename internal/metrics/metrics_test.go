package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestWrite(t *testing.T) {
	r := NewRegistry()
	ops := r.Counter("test_ops_total", "Operations by kind.", "op", "result")
	idle := r.Counter("test_idle_total", "Never incremented.")
	units := r.Gauge("test_units", "Units by state.", "state")
	lat := r.Histogram("test_latency_seconds", "Latency\nof calls.", []float64{0.1, 1})
	ops.Inc("start", "ok")
	ops.Add(2, "start", "ok")
	ops.Inc("stop", `bad "quote"\`)
	units.Replace(map[string]float64{"active": 3, "failed": 1})
	units.Replace(map[string]float64{"active": 2})
	for _, v := range []float64{0.05, 0.1, 0.5, 7} {
		lat.Observe(v)
	}
	_ = idle
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP test_idle_total Never incremented.
# TYPE test_idle_total counter
test_idle_total 0
# HELP test_latency_seconds Latency\nof calls.
# TYPE test_latency_seconds histogram
test_latency_seconds_bucket{le="0.1"} 2
test_latency_seconds_bucket{le="1"} 3
test_latency_seconds_bucket{le="+Inf"} 4
test_latency_seconds_sum 7.65
test_latency_seconds_count 4
# HELP test_ops_total Operations by kind.
# TYPE test_ops_total counter
test_ops_total{op="start",result="ok"} 3
test_ops_total{op="stop",result="bad \"quote\"\\"} 1
# HELP test_units Units by state.
# TYPE test_units gauge
test_units{state="active"} 2
`
	if b.String() != want {
		t.Errorf("Write:\n%s\nwant:\n%s", b.String(), want)
	}

	ss, err := ParseText(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"test_ops_total", []string{"op", "start"}, 3},
		{"test_ops_total", []string{"result", `bad "quote"\`}, 1},
		{"test_ops_total", nil, 4},
		{"test_latency_seconds_bucket", []string{"le", "+Inf"}, 4},
		{"test_units", []string{"state", "active"}, 2},
	} {
		if got, ok := ss.Sum(c.name, c.match...); !ok || got != c.want {
			t.Errorf("Sum(%s, %v) = %v, %v; want %v", c.name, c.match, got, ok, c.want)
		}
	}
	if _, ok := ss.Sum("test_units", "state", "failed"); ok {
		t.Error("Replace kept a series it was not given")
	}
}

func TestNilInstruments(t *testing.T) {
	var c *Counter
	var g *Gauge
	var h *Histogram
	c.Inc("x")
	g.Set(1)
	g.Replace(nil)
	h.Observe(1)
}

func TestMisuse(t *testing.T) {
	for name, f := range map[string]func(r *Registry){
		"bad name":        func(r *Registry) { r.Counter("9lives", "") },
		"bad label":       func(r *Registry) { r.Counter("x_total", "", "a:b") },
		"twice":           func(r *Registry) { r.Gauge("x", ""); r.Gauge("x", "") },
		"label count":     func(r *Registry) { r.Counter("x_total", "", "op").Inc() },
		"le label":        func(r *Registry) { r.Histogram("x_seconds", "", DurationBuckets, "le") },
		"unsorted bucket": func(r *Registry) { r.Histogram("x_seconds", "", []float64{1, 0.5}) },
		"negative add":    func(r *Registry) { r.Counter("x_total", "").Add(-1) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f(NewRegistry())
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{"x", `x{a="b} 1`, "x{a} 1", "x one"} {
		if _, err := ParseText(strings.NewReader(bad + "\n")); err == nil {
			t.Errorf("ParseText(%q) succeeded", bad)
		}
	}
}

// TestHammer updates and scrapes at once, for the race detector.
func TestHammer(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("h_total", "", "op")
	g := r.Gauge("h_units", "", "state")
	h := r.Histogram("h_seconds", "", DurationBuckets, "op")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op := []string{"a", "b"}[w%2]
			for i := range 1000 {
				c.Inc(op)
				h.Observe(float64(i)/1000, op)
				g.Replace(map[string]float64{op: float64(i)})
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			var b strings.Builder
			if err := r.Write(&b); err != nil {
				t.Error(err)
				return
			}
			if _, err := ParseText(strings.NewReader(b.String())); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	var b strings.Builder
	_ = r.Write(&b)
	ss, _ := ParseText(strings.NewReader(b.String()))
	if n, _ := ss.Sum("h_total"); n != 4000 {
		t.Errorf("h_total = %v, want 4000", n)
	}
	if n, _ := ss.Sum("h_seconds_count"); n != 4000 {
		t.Errorf("h_seconds_count = %v, want 4000", n)
	}
}

func TestHandler(t *testing.T) {
	r := NewRegistry()
	r.Counter("x_total", "X.").Inc()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := ParseText(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Header.Get("Content-Type") != ContentType {
		t.Fatalf("GET: %v, content type %q", err, resp.Header.Get("Content-Type"))
	}
	if v, _ := ss.Sum("x_total"); v != 1 {
		t.Errorf("x_total = %v", v)
	}
	resp, err = http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}
}
