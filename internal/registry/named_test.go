package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// recorder notes each request's method and path with its query.
type recorder struct {
	mu   sync.Mutex
	reqs []string
	ops  []int // per request, the operations of a transaction (0 for others)
	next http.RoundTripper
	// after, when set, is called with each request noted once its answer
	// came, before the caller reads it: a write made there lands between
	// this request and the caller's next.
	after func(req string)
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var ops []json.RawMessage
	if req.URL.Path == "/v1/txn" && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		_ = json.Unmarshal(b, &ops)
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.RequestURI())
	r.ops = append(r.ops, len(ops))
	after := r.after
	r.mu.Unlock()
	resp, err := r.next.RoundTrip(req)
	if after != nil && err == nil {
		after(req.Method + " " + req.URL.RequestURI())
	}
	return resp, err
}

// reset forgets the requests noted so far.
func (r *recorder) reset() {
	r.mu.Lock()
	r.reqs, r.ops = nil, nil
	r.mu.Unlock()
}

// sent reports whether a request noted begins with prefix (method, path
// and query).
func (r *recorder) sent(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.reqs, func(req string) bool { return strings.HasPrefix(req, prefix) })
}

// txns is the operations of each transaction noted, in order.
func (r *recorder) txns() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for i, req := range r.reqs {
		if strings.HasPrefix(req, "PUT /v1/txn") {
			out = append(out, r.ops[i])
		}
	}
	return out
}

// count is how many requests noted begin with prefix.
func (r *recorder) count(prefix string) (n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.reqs {
		if strings.HasPrefix(req, prefix) {
			n++
		}
	}
	return n
}

// String is the requests noted, one a line.
func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.reqs, "\n")
}

// recordedClient is a client of consul whose requests rec notes.
func recordedClient(t *testing.T, consul *testcluster.Consul) (c *api.Client, rec *recorder) {
	t.Helper()
	rec = &recorder{next: http.DefaultTransport}
	cfg := api.DefaultConfig()
	cfg.Address = strings.TrimPrefix(consul.URL(), "http://")
	cfg.HttpClient = &http.Client{Transport: rec}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
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

	c2, rec := recordedClient(t, consul)
	var names []string
	for i := 100; i < 250; i++ { // 150 names: two transactions of Consul 1.14's 128 operations
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
	// Two transactions of jobs and one of the two bodies, and nothing else.
	if n := len(rec.reqs); n != 3 || slices.ContainsFunc(rec.reqs, func(r string) bool { return !strings.HasPrefix(r, "PUT /v1/txn") }) {
		t.Errorf("requests to Consul: %q, want 3 transactions", rec.reqs)
	}
}

// TestListedAsConsulsClientLists: a client made by NewClientWith, which
// decodes list answers in one pass of its own, reads the same Snapshot as
// Consul's API client does, odd keys and all, and its blocking reads wake
// at the change they wait for.
func TestListedAsConsulsClientLists(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	plain, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	fast, err := registry.NewClientWith(consul.URL(), "", registry.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var jobs []registry.NewJob
	for _, n := range []string{"a.service", `b\x2dc.service`, "d@1.service", "d@é.service", "e@.service"} {
		jobs = append(jobs, registry.NewJob{Name: n, Unit: mustParse(t, "[Service]\nExecStart=/bin/echo "+n+"\n"), Desired: registry.Loaded})
	}
	if err := registry.New(plain, "fleet/").CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"machines/m1": `{"id":"m1","ip":"127.0.0.1","metadata":{"a":"<&>"}}`, "states/m1/a.service": `{"name":"a.service","machine":"m1","hash":"x","state":"loaded"}`, "odd/\"key\"é&<>": "\x00\xff"} {
		if _, err := plain.KV().Put(&api.KVPair{Key: "fleet/" + k, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want, err := registry.New(plain, "fleet/").Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := registry.New(fast, "fleet/").Snapshot(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot read in one pass:\n%+v\nwith Consul's client:\n%+v", got, want)
	}
	woke := make(chan *registry.Snapshot, 1)
	go func() {
		s, err := registry.New(fast, "fleet/").Snapshot(ctx, got.Index, time.Minute)
		if err != nil {
			t.Error(err)
		}
		woke <- s
	}()
	if _, err := plain.KV().Put(&api.KVPair{Key: "fleet/machines/m2", Value: []byte(`{"id":"m2","ip":"127.0.0.2"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if s := <-woke; s == nil || s.Index <= got.Index || s.Machines["m2"] == nil {
		t.Errorf("blocking read woke with %+v, want machine m2 past index %d", s, got.Index)
	}
}

// TestTracking: a wait's read holds the named units with their
// placements, the machines they are placed on and those machines'
// reports, a unit's key of its own winning over its machine's key; not
// the other units' jobs, nor other machines. Everywhere, it holds every
// machine's reports: a unit still reported by a machine it left.
func TestTracking(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, rec := recordedClient(t, consul)
	ctx := context.Background()
	hash := strings.Repeat("ab", 20)
	put := func(key, value string) uint64 {
		t.Helper()
		if _, err := client.KV().Put(&api.KVPair{Key: "fleet/" + key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
		p, _, err := client.KV().Get("fleet/"+key, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p.CreateIndex
	}
	state := func(active string) string {
		return fmt.Sprintf(`{"hash":%q,"state":"launched","load":"loaded","active":%q,"sub":"x"}`, hash, active)
	}
	for unit, machine := range map[string]string{"a.service": "m1", "b.service": "m2", "c.service": "m1"} {
		job := put("jobs/"+unit, fmt.Sprintf(`{"name":%q,"hash":%q,"desired":"launched"}`, unit, hash))
		put("placement/"+unit, fmt.Sprintf(`{"machine":%q,"job":%d}`, machine, job))
	}
	for _, m := range []string{"m1", "m2", "m3"} {
		put("machines/"+m, fmt.Sprintf(`{"id":%q,"ip":"127.0.0.9"}`, m))
	}
	put("states/m1/", fmt.Sprintf(`{"a.service":%s,"c.service":%s}`, state("activating"), state("active")))
	put("states/m1/a.service", fmt.Sprintf(`{"name":"a.service","machine":"m1","hash":%q,"state":"launched","load":"loaded","active":"active","sub":"running"}`, hash))
	put("states/m2/b.service", fmt.Sprintf(`{"name":"b.service","machine":"m2","hash":%q,"state":"launched","load":"loaded","active":"failed","sub":"failed"}`, hash))
	put("states/m3/", fmt.Sprintf(`{"a.service":%s}`, state("deactivating")))

	r := registry.New(client, "fleet/")
	rec.reqs = nil
	s, err := r.Tracking(ctx, []string{"a.service", "b.service", "gone.service"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(s.Jobs)); !slices.Equal(got, []string{"a.service", "b.service"}) {
		t.Errorf("jobs %v, want the named units that exist", got)
	}
	if a, b := s.Jobs["a.service"], s.Jobs["b.service"]; a == nil || b == nil || a.Target != "m1" || b.Target != "m2" {
		t.Fatalf("targets: %+v %+v, want a.service on m1, b.service on m2", a, b)
	}
	if got := slices.Sorted(maps.Keys(s.Machines)); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Errorf("machines %v, want the targets m1 and m2", got)
	}
	if st := s.States["a.service"]; len(st) != 1 || st["m1"] == nil || st["m1"].Active != "active" {
		t.Errorf("a.service's states %v, want m1's only, from its key of its own (active)", st)
	}
	if st := s.States["b.service"]["m2"]; st == nil || st.Active != "failed" {
		t.Errorf("b.service on m2: %+v, want its key of its own (failed)", st)
	}
	for _, req := range rec.reqs {
		if !strings.HasPrefix(req, "PUT /v1/txn") {
			t.Errorf("request beside the read transactions: %s", req)
		}
	}

	s, err = r.Tracking(ctx, []string{"a.service"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.States["a.service"]; len(st) != 2 || st["m3"] == nil || st["m3"].Active != "deactivating" {
		t.Errorf("a.service's states everywhere %v, want m1's and m3's", st)
	}
}

// TestChangedWakesOnEveryWrite: Changed, waiting on the index it returned,
// wakes at a write or a removal anywhere under the prefix (a unit's job, a
// machine's states, a top-level key) with an index at least the write's.
func TestChangedWakesOnEveryWrite(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := registry.New(client, "")
	for i := range 200 { // keys for a listing to walk
		if _, err := client.KV().Put(&api.KVPair{Key: fmt.Sprintf("fleet/jobs/web@%d.service", i), Value: []byte("{}")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	index, err := r.Changed(ctx, 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		what string
		do   func() (*api.WriteMeta, error)
	}{
		{"a job", func() (*api.WriteMeta, error) {
			return client.KV().Put(&api.KVPair{Key: "fleet/jobs/new.service", Value: []byte("{}")}, nil)
		}},
		{"a machine's states", func() (*api.WriteMeta, error) {
			return client.KV().Put(&api.KVPair{Key: "fleet/states/m1/", Value: []byte("{}")}, nil)
		}},
		{"the leader key", func() (*api.WriteMeta, error) {
			return client.KV().Put(&api.KVPair{Key: "fleet/leader", Value: []byte("m1")}, nil)
		}},
		{"a removal", func() (*api.WriteMeta, error) { return client.KV().Delete("fleet/jobs/web@7.service", nil) }},
		{"a removal of a subtree", func() (*api.WriteMeta, error) { return client.KV().DeleteTree("fleet/states/", nil) }},
	}
	for _, w := range writes {
		woke := make(chan uint64, 1)
		go func() {
			now, err := r.Changed(ctx, index, time.Minute)
			if err != nil {
				t.Error(err)
			}
			woke <- now
		}()
		time.Sleep(100 * time.Millisecond) // let the query block first (else it answers at once, as well)
		if _, err := w.do(); err != nil {
			t.Fatal(err)
		}
		_, meta, err := client.KV().List("fleet/", nil) // its index: the write's
		if err != nil {
			t.Fatal(err)
		}
		now := <-woke
		if now < meta.LastIndex || now <= index {
			t.Fatalf("after %s at index %d, Changed(%d) returned %d", w.what, meta.LastIndex, index, now)
		}
		index = now
	}
}
