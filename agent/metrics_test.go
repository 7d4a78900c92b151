package agent

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmfleet/fleet/internal/registry"
)

// TestUnitStatesHammer updates fleet_agent_units from two goroutines while
// a third scrapes: every scrape sees one update whole, never a mix of two
// or a half-cleared set.
func TestUnitStatesHammer(t *testing.T) {
	r := prometheus.NewRegistry()
	m := NewMetrics(r)
	running := map[string]registry.UnitState{"a": {Active: "active"}, "b": {Active: "active"}, "c": {Active: "active"}}
	stopped := map[string]registry.UnitState{"a": {Active: "failed"}, "b": {Active: "inactive"}, "c": {Active: "inactive"}}
	m.unitStates(running)
	var wg sync.WaitGroup
	for _, states := range []map[string]registry.UnitState{running, stopped} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				m.unitStates(states)
			}
		}()
	}
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			got, err := unitCounts(r)
			if err == nil && got != "activating=0 active=3 deactivating=0 failed=0 inactive=0 reloading=0" &&
				got != "activating=0 active=0 deactivating=0 failed=1 inactive=2 reloading=0" {
				err = fmt.Errorf("a scrape saw %s", got)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// unitCounts is fleet_agent_units from r, as "state=n" sorted by state.
func unitCounts(r *prometheus.Registry) (string, error) {
	fams, err := r.Gather()
	if err != nil {
		return "", err
	}
	out := ""
	for _, f := range fams {
		if f.GetName() != "fleet_agent_units" {
			continue
		}
		for _, s := range f.GetMetric() { // Gather sorts series by label values
			if out != "" {
				out += " "
			}
			out += fmt.Sprintf("%s=%v", s.GetLabel()[0].GetValue(), s.GetGauge().GetValue())
		}
	}
	return out, nil
}
