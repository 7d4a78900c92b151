package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// recorder notes each request's method and path with its query.
type recorder struct {
	mu   sync.Mutex
	reqs []string
	next http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.RequestURI())
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// TestJobsNamed: the named units of a larger cluster come back with their
// bodies, the missing ones are absent, more than one transaction's worth
// are read, and nothing is listed: no read of a whole subtree.
func TestJobsNamed(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tpl := mustParse(t, "[Service]\nExecStart=/bin/sleep 1000\n")
	other := mustParse(t, "[Service]\nExecStart=/bin/true\n")
	var jobs []registry.NewJob
	for i := range 300 {
		jobs = append(jobs, registry.NewJob{Name: fmt.Sprintf("app@%d.service", i), Unit: tpl, Desired: registry.Launched})
	}
	jobs = append(jobs, registry.NewJob{Name: "app@.service", Unit: tpl, Desired: registry.Inactive},
		registry.NewJob{Name: "solo.service", Unit: other, Desired: registry.Loaded})
	if err := registry.New(client, "").CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{next: http.DefaultTransport}
	cfg := api.DefaultConfig()
	cfg.Address = strings.TrimPrefix(consul.URL(), "http://")
	cfg.HttpClient = &http.Client{Transport: rec}
	c2, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := 100; i < 250; i++ { // 150 names: three transactions
		names = append(names, fmt.Sprintf("app@%d.service", i))
	}
	names = append(names, "app@.service", "solo.service", "missing.service", "app@999.service")
	s, err := registry.New(c2, "").JobsNamed(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Jobs) != 152 {
		t.Fatalf("%d units read, want the 152 named that exist", len(s.Jobs))
	}
	for _, n := range names {
		j := s.Jobs[n]
		switch {
		case n == "missing.service" || n == "app@999.service":
			if j != nil {
				t.Errorf("%s does not exist, read %+v", n, j)
			}
		case j == nil:
			t.Errorf("%s not read", n)
		case n == "solo.service" && (j.Hash != other.Hash() || j.Desired != registry.Loaded || j.Unit == nil || j.Unit.Hash() != other.Hash()):
			t.Errorf("solo.service read as hash %s desired %s body %v", j.Hash.Short(), j.Desired, j.Unit != nil)
		case n != "solo.service" && (j.Hash != tpl.Hash() || j.Unit == nil || j.Unit.Hash() != tpl.Hash()):
			t.Errorf("%s read as hash %s body %v", n, j.Hash.Short(), j.Unit != nil)
		}
	}
	if j := s.Jobs["app@.service"]; j == nil || j.Desired != registry.Inactive {
		t.Errorf("template read as %+v", j)
	}
	// Three transactions of jobs and one of the two bodies, and nothing else.
	if n := len(rec.reqs); n != 4 || slices.ContainsFunc(rec.reqs, func(r string) bool { return !strings.HasPrefix(r, "PUT /v1/txn") }) {
		t.Errorf("requests to Consul: %q, want 4 transactions", rec.reqs)
	}
}
