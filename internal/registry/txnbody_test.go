package registry_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestTxnBodyInConsul: a machine's catalog entries written through
// fleetd's client, whose transactions go in the compact body, are what the
// same entries written through the Consul API client's own body are, in a
// real Consul; and the compact body is what went.
func TestTxnBodyInConsul(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	plain, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bodies []string
	fleet, err := registry.NewClientWith(consul.URL(), "", registry.ClientOptions{Wrap: func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/v1/txn" && r.GetBody != nil { // the body that goes, read again
				rc, err := r.GetBody()
				if err != nil {
					return nil, err
				}
				body, err := io.ReadAll(rc)
				if err != nil {
					return nil, err
				}
				mu.Lock()
				bodies = append(bodies, string(body))
				mu.Unlock()
			}
			return next.RoundTrip(r)
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer registry.CloseIdle(fleet)
	ctx := context.Background()
	publish := func(c *api.Client, id string) []*api.HealthCheck {
		t.Helper()
		m := &registry.Machine{ID: id, IP: "127.0.0.9"}
		errs, err := registry.New(c, "").Publish(ctx, []registry.Write{
			registry.MachineWrite(id, registry.NodeOp(m, map[string]string{"region": "eu"})),
			registry.CatalogWrite("web", registry.ServiceOp(id, api.AgentService{Service: "web"})),
			registry.CatalogWrite("web@1.service", registry.CheckOp(id, "web", "web@1.service", api.HealthPassing, "active (running)")),
			registry.CatalogWrite("web@2.service", registry.CheckOp(id, "web", "web@2.service", api.HealthCritical, "failed (exit-code)")),
		})
		if err != nil || errs[0] != nil || errs[1] != nil || errs[2] != nil || errs[3] != nil {
			t.Fatalf("publish %s: %v %v", id, err, errs)
		}
		checks, _, err := plain.Health().Node(registry.CatalogNode(id), nil)
		if err != nil {
			t.Fatal(err)
		}
		return checks
	}
	want := publish(plain, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	got := publish(fleet, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("%d checks through fleetd's client, %d through the API client's; want 2 each", len(got), len(want))
	}
	for i := range got {
		g, w := *got[i], *want[i]
		g.Node, g.CreateIndex, g.ModifyIndex = w.Node, 0, 0
		w.CreateIndex, w.ModifyIndex = 0, 0
		if mustJSON(t, g) != mustJSON(t, w) {
			t.Errorf("check %d:\nthrough fleetd's client %s\nthrough the API client's %s", i, mustJSON(t, g), mustJSON(t, w))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) == 0 {
		t.Fatal("no transaction seen")
	}
	for _, b := range bodies {
		if strings.Contains(b, `"Definition"`) || strings.Contains(b, `"Check":null`) {
			t.Errorf("a transaction went in the API client's body: %s", b)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTxnAnswerInConsul: what fleet's client reads of a real Consul's
// answers (decodeTxnAnswer) is what the API client reads of them, keys
// and errors, and it leaves a check's result, which it does not read,
// empty: a write of a machine's catalog entries and state, a read of its
// state, and a transaction rolled back.
func TestTxnAnswerInConsul(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	plain, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := registry.NewClient(consul.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer registry.CloseIdle(fleet)
	ctx := context.Background()
	send := func(c *api.Client, ops ...*api.TxnOp) (bool, *api.TxnResponse) {
		t.Helper()
		ok, resp, err := registry.SendTxn(ctx, registry.New(c, ""), ops)
		if err != nil {
			t.Fatal(err)
		}
		return ok, resp
	}
	key := func(verb api.KVOp, k string, v []byte, index uint64) *api.TxnOp {
		return &api.TxnOp{KV: &api.KVTxnOp{Verb: verb, Key: k, Value: v, Index: index}}
	}
	for _, c := range []struct {
		name  string
		fleet *api.Client
	}{{"plain", plain}, {"fleet", fleet}} {
		id := strings.Repeat(c.name[:1], 32)
		ok, resp := send(c.fleet, registry.NodeOp(&registry.Machine{ID: id, IP: "127.0.0.9"}, nil),
			registry.CheckOp(id, "web", "web@1.service", api.HealthPassing, "active"), // refused: no instance yet
			key(api.KVSet, "fleet/states/"+id, []byte("{}"), 0))
		if ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 {
			t.Fatalf("%s: a check of a missing instance: applied %v, %s", c.name, ok, mustJSON(t, resp))
		}
		ok, resp = send(c.fleet, registry.NodeOp(&registry.Machine{ID: id, IP: "127.0.0.9"}, nil),
			registry.ServiceOp(id, api.AgentService{Service: "web"}),
			registry.CheckOp(id, "web", "web@1.service", api.HealthPassing, "active"),
			key(api.KVSet, "fleet/states/"+id, []byte("{}"), 0))
		if !ok || len(resp.Results) != 4 || resp.Results[3].KV == nil || resp.Results[3].KV.Key != "fleet/states/"+id || resp.Results[3].KV.ModifyIndex == 0 {
			t.Fatalf("%s: a machine's report: applied %v, %s", c.name, ok, mustJSON(t, resp))
		}
		if read := resp.Results[2].Check != nil; read != (c.name == "plain") {
			t.Errorf("%s: the check's result read: %v", c.name, read)
		}
	}
	// The same reads and refusals, through either client.
	for _, ops := range []api.TxnOps{
		{key(api.KVGetOrEmpty, "fleet/states/"+strings.Repeat("p", 32), nil, 0), key(api.KVGetOrEmpty, "fleet/none", nil, 0)},
		{key(api.KVCAS, "fleet/states/"+strings.Repeat("f", 32), nil, 1), key(api.KVCheckNotExists, "fleet/states/"+strings.Repeat("f", 32), nil, 0)},
	} {
		okP, want := send(plain, ops...)
		okF, got := send(fleet, ops...)
		if okP != okF || mustJSON(t, got) != mustJSON(t, want) {
			t.Errorf("through fleet's client: %v %s\nthrough the API client: %v %s", okF, mustJSON(t, got), okP, mustJSON(t, want))
		}
	}
}
