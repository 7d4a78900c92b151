package testcluster

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ScrapeMetrics reads the Prometheus text exposition at url (a fleetd's
// /metrics, or Consul's /v1/agent/metrics?format=prometheus) and returns
// its metric families sorted by name, as a prometheus.Gatherer does.
//
// # Errors
//
// A status other than 200, a content type other than the text format, or a
// body the text parser rejects is an error naming url.
func ScrapeMetrics(ctx context.Context, url string) ([]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	if f := expfmt.ResponseFormat(resp.Header); f.FormatType() != expfmt.TypeTextPlain {
		return nil, fmt.Errorf("scrape %s: content type %q is not Prometheus' text format", url, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	byName, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	fams := make([]*dto.MetricFamily, 0, len(byName))
	for _, f := range byName {
		fams = append(fams, f)
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i].GetName() < fams[j].GetName() })
	return fams, nil
}

// MetricSum adds up the series named name whose labels include every pair
// in match (given as label, value, label, value...), and reports false when
// no series matched. name is a sample's name as the text format writes it:
// a counter's or gauge's, or a histogram's or summary's name with _count or
// _sum for its observations' count or sum.
func MetricSum(fams []*dto.MetricFamily, name string, match ...string) (float64, bool) {
	var sum float64
	found := false
	for _, f := range fams {
		base, suffix := f.GetName(), ""
		if base != name {
			var ok bool
			if suffix, ok = strings.CutPrefix(name, base); !ok || suffix != "_count" && suffix != "_sum" {
				continue
			}
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, match) {
				continue
			}
			v, ok := sampleValue(f.GetType(), m, suffix)
			if ok {
				sum += v
				found = true
			}
		}
	}
	return sum, found
}

// sampleValue is m's value, or with suffix _count or _sum, its
// observations' count or sum when m is a histogram or a summary.
func sampleValue(t dto.MetricType, m *dto.Metric, suffix string) (float64, bool) {
	switch {
	case suffix == "" && t == dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), true
	case suffix == "" && t == dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), true
	case suffix == "" && t == dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue(), true
	case suffix == "_count" && t == dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount()), true
	case suffix == "_sum" && t == dto.MetricType_HISTOGRAM:
		return m.GetHistogram().GetSampleSum(), true
	case suffix == "_count" && t == dto.MetricType_SUMMARY:
		return float64(m.GetSummary().GetSampleCount()), true
	case suffix == "_sum" && t == dto.MetricType_SUMMARY:
		return m.GetSummary().GetSampleSum(), true
	}
	return 0, false
}

func hasLabels(m *dto.Metric, match []string) bool {
next:
	for i := 0; i+1 < len(match); i += 2 {
		for _, l := range m.GetLabel() {
			if l.GetName() == match[i] {
				if l.GetValue() != match[i+1] {
					return false
				}
				continue next
			}
		}
		return false
	}
	return true
}
