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
		return testcluster.Token(t, admin, string(rules))
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
	t.Run("own token on loopback", func(t *testing.T) { ownOnLoopback(t, w, consul.URL(), viewer, operator) })
}

// ownOnLoopback serves the API as fleetd's TCP listener does with
// --fleet-api-own-token-on-loopback, fleetd's own token being a viewer's: a
// request without a token from loopback acts as the viewer (reads, is
// refused writes); one with a token acts with exactly that token; one
// without a token from elsewhere is refused.
func ownOnLoopback(t *testing.T, w *world, consulURL, viewer, operator string) {
	own, err := registry.NewClient(consulURL, viewer)
	if err != nil {
		t.Fatal(err)
	}
	tc := &fleetapi.TokenClients{New: func(tok string) (*api.Client, error) { return registry.NewClient(consulURL, tok) },
		Close: registry.CloseIdle, OwnOnLoopback: own}
	srv := httptest.NewServer((&fleetapi.Server{ClientFor: tc.ClientFor, Version: "test"}).Handler())
	t.Cleanup(srv.Close)
	lw := &world{t: t, client: w.client, reg: w.reg, srv: srv}
	ownBody := strings.Replace(helloBody, "hello.service", "own.service", 1)
	for _, c := range []struct {
		name, method, path, body string
		header                   [2]string
		code                     int
		message                  string
	}{
		{"no token reads as fleetd", "GET", "/fleet/v1/units", "", [2]string{}, 200, "hello.service"},
		{"no token writes as fleetd", "PUT", "/fleet/v1/units/own.service", ownBody, [2]string{}, 403, "Permission denied"},
		{"unknown token", "GET", "/fleet/v1/units", "", [2]string{"X-Consul-Token", "nope"}, 403, "ACL not found"},
		{"operator writes with its own", "PUT", "/fleet/v1/units/own.service", ownBody, [2]string{"X-Consul-Token", operator}, 201, ""},
	} {
		before := lw.keys()
		code, body := lw.doWith(c.method, c.path, c.body, c.header)
		if code != c.code || !strings.Contains(body, c.message) {
			t.Errorf("%s: got %d %s, want %d with %q", c.name, code, body, c.code, c.message)
		}
		if after := lw.keys(); code >= 400 && !maps.Equal(before, after) {
			t.Errorf("%s: a refused request wrote: %v -> %v", c.name, before, after)
		}
	}
	// Every address of 127.0.0.0/8 is loopback, so the refusal of a
	// request from elsewhere is checked on the request alone.
	for addr, loopback := range map[string]bool{"127.0.0.1:4000": true, "127.0.2.9:4000": true, "[::1]:4000": true,
		"10.0.0.7:4000": false, "[2001:db8::1]:4000": false} {
		r := httptest.NewRequest("GET", "/fleet/v1/units", nil)
		r.RemoteAddr = addr
		c, err := tc.ClientFor(r)
		if loopback && (err != nil || c != own) {
			t.Errorf("no token from %s: %v, %v; want fleetd's own client", addr, c, err)
		}
		var ferr *fleetapi.Error
		if !loopback && (!errors.As(err, &ferr) || ferr.Code != http.StatusUnauthorized) {
			t.Errorf("no token from %s: %v, %v; want 401", addr, c, err)
		}
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
