package fleetapi_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/fleetapi"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestTokens serves the API as fleetd's TCP listener does, each request
// acting with its own ACL token, on a Consul whose ACLs deny by default: no
// token is 401, a viewer's token reads and is refused writes (403), an
// operator's writes; a refused request changes no key.
func TestTokens(t *testing.T) {
	const root = "root-token"
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{ACLToken: root})
	admin, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	token := func(role string) string {
		t.Helper()
		rules, err := os.ReadFile("../../contrib/acl/" + role + ".hcl")
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: "fleet-" + role, Rules: string(rules)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok.SecretID
	}
	viewer, operator := token("viewer"), token("operator")
	tc := &fleetapi.TokenClients{New: func(tok string) (*api.Client, error) { return registry.NewClient(consul.URL(), tok) }, Close: registry.CloseIdle}
	srv := httptest.NewServer((&fleetapi.Server{ClientFor: tc.ClientFor, Version: "test"}).Handler())
	t.Cleanup(srv.Close)
	w := &world{t: t, client: admin, reg: registry.New(admin, ""), srv: srv}

	for _, c := range []struct {
		name, method, path, body string
		header                   [2]string
		code                     int
		message                  string
	}{
		{"no token", "GET", "/fleet/v1/units", "", [2]string{}, 401, "a Consul ACL token is required"},
		{"no token, bad body", "PUT", "/fleet/v1/units/x.service", "{", [2]string{}, 401, "a Consul ACL token is required"},
		{"unknown token", "GET", "/fleet/v1/units", "", [2]string{"X-Consul-Token", "nope"}, 403, "ACL not found"},
		{"viewer reads", "GET", "/fleet/v1/units", "", [2]string{"Authorization", "Bearer " + viewer}, 200, "{}"},
		{"viewer writes", "PUT", "/fleet/v1/units/hello.service", helloBody, [2]string{"Authorization", "Bearer " + viewer}, 403, "Permission denied"},
		{"operator writes", "PUT", "/fleet/v1/units/hello.service", helloBody, [2]string{"X-Consul-Token", operator}, 201, ""},
		{"viewer destroys", "DELETE", "/fleet/v1/units/hello.service", "", [2]string{"X-Consul-Token", viewer}, 403, "Permission denied"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w.t = t
			before := w.keys()
			code, body := w.doWith(c.method, c.path, c.body, c.header)
			if code != c.code || !strings.Contains(body, c.message) {
				t.Errorf("got %d %s, want %d with %q", code, body, c.code, c.message)
			}
			if after := w.keys(); code >= 400 && !maps.Equal(before, after) {
				t.Errorf("a refused request wrote: %v -> %v", before, after)
			}
		})
	}
	w.t = t
	if _, err := w.reg.Job(context.Background(), "hello.service"); err != nil {
		t.Errorf("the operator's unit: %v", err)
	}
	if _, err := w.reg.Job(context.Background(), "nope.service"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("read as admin: %v", err)
	}
}

// doWith sends a JSON request with one more header.
func (w *world) doWith(method, path, body string, header [2]string) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if header[0] != "" {
		req.Header.Set(header[0], header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String()
}
