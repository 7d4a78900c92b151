package apitls_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wasmfleet/fleet/internal/apitls"
	"github.com/wasmfleet/fleet/internal/devcluster"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestServerConfig: when fleetd serves TLS, with which certificate, and
// which certificates it refuses, each with what to set.
func TestServerConfig(t *testing.T) {
	testcluster.ClearConsulEnv(t)
	dir := t.TempDir()
	pki, err := devcluster.GenerateTLS(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := devcluster.GenerateTLS(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	const ip = "127.0.4.1"
	cert, key, err := pki.IssueMachine("m", net.ParseIP(ip))
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := other.IssueMachine("m", net.ParseIP(ip))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		env       map[string]string
		endpoint  string
		cert, key string
		tls       bool
		err       []string
	}{
		{"plain Consul", nil, "http://127.0.0.1:8500", "", "", false, nil},
		{"plain Consul, own certificate", nil, "127.0.0.1:8500", cert, key, true, nil},
		{"TLS Consul, its client certificate", map[string]string{"CONSUL_CACERT": pki.CACert, "CONSUL_CLIENT_CERT": cert, "CONSUL_CLIENT_KEY": key},
			"https://127.0.0.1:8501", "", "", true, nil},
		{"CONSUL_HTTP_SSL, no certificate", map[string]string{"CONSUL_HTTP_SSL": "true"}, "127.0.0.1:8501", "", "", false,
			[]string{"has no certificate", "set --api-cert-file and --api-key-file (or CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY)", ip}},
		{"CONSUL_HTTP_ADDR=https://, not for this IP", map[string]string{"CONSUL_HTTP_ADDR": "https://127.0.0.1:8501",
			"CONSUL_CLIENT_CERT": pki.ClientCert, "CONSUL_CLIENT_KEY": pki.ClientKey}, "", "", "", false,
			[]string{"CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY: " + pki.ClientCert, "would not pass fleetctl's check", "must name this machine's --public-ip"}},
		{"another CA than Consul's", map[string]string{"CONSUL_CACERT": pki.CACert}, "https://127.0.0.1:8501", otherCert, otherKey, false,
			[]string{"--api-cert-file and --api-key-file: " + otherCert, "unknown authority"}},
		{"key alone", nil, "", "", key, false, []string{"--api-cert-file and --api-key-file go together"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := apitls.ServerConfig(apitls.ServerOptions{Endpoint: c.endpoint, CertFile: c.cert, KeyFile: c.key, PublicIP: ip})
			if (cfg != nil) != c.tls || (err != nil) != (c.err != nil) {
				t.Fatalf("TLS %v, error %v; want TLS %v, error %v", cfg != nil, err, c.tls, c.err != nil)
			}
			for _, w := range c.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// recorder is an endpoint that counts the requests reaching it and the
// tokens among them.
type recorder struct{ requests, tokens atomic.Int32 }

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	if req.Header.Get("X-Consul-Token") != "" {
		r.tokens.Add(1)
	}
	if req.URL.Path == "/redirect" {
		http.Redirect(w, req, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// TestClient: fleetctl's side of the rule, against real endpoints. Over
// https it verifies the machine with CONSUL_CACERT and sends nothing to
// one it cannot verify; over http it refuses to send a token when it
// reaches Consul over TLS; it follows no redirect.
func TestClient(t *testing.T) {
	testcluster.ClearConsulEnv(t)
	dir := t.TempDir()
	pki, err := devcluster.GenerateTLS(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSUL_CACERT", pki.CACert)
	cert, key, err := pki.IssueMachine("m", net.ParseIP("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	served, err := apitls.ServerConfig(apitls.ServerOptions{CertFile: cert, KeyFile: key, PublicIP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	good, foreign, plain := &recorder{}, &recorder{}, &recorder{}
	goodSrv := httptest.NewUnstartedServer(good)
	goodSrv.TLS = served
	goodSrv.StartTLS()
	t.Cleanup(goodSrv.Close)
	foreignSrv := httptest.NewTLSServer(foreign) // httptest's own certificate
	t.Cleanup(foreignSrv.Close)
	plainSrv := httptest.NewServer(plain)
	t.Cleanup(plainSrv.Close)

	do := func(u, consul string, token bool) (*http.Response, error) {
		t.Helper()
		c, err := apitls.Client(u, consul, token)
		if err != nil {
			return nil, err
		}
		req, _ := http.NewRequest("GET", u, nil)
		if token {
			req.Header.Set("X-Consul-Token", "secret")
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	// Verified: the token arrives, over TLS.
	if resp, err := do(goodSrv.URL, "https://127.0.0.1:8501", true); err != nil || resp.StatusCode != 200 || good.tokens.Load() != 1 {
		t.Errorf("a machine fleetctl verifies: %v %v, tokens received %d", resp, err, good.tokens.Load())
	}
	// Not verifiable: nothing reaches it, and the error says what to set.
	_, err = do(foreignSrv.URL, "https://127.0.0.1:8501", true)
	if verr := apitls.VerifyErr(foreignSrv.URL, err); verr == nil || !strings.Contains(verr.Error(), "set CONSUL_CACERT") {
		t.Errorf("a machine fleetctl cannot verify: %v, explained as %v", err, verr)
	}
	if n := foreign.requests.Load(); n != 0 {
		t.Errorf("a machine fleetctl cannot verify got %d requests", n)
	}
	// Plain HTTP: no token while Consul is reached over TLS, either way
	// fleetctl is told so.
	for _, consul := range []string{"https://127.0.0.1:8501", ""} {
		t.Setenv("CONSUL_HTTP_SSL", map[string]string{"": "true"}[consul])
		if _, err := do(plainSrv.URL, consul, true); !errors.Is(err, apitls.ErrClearText) || !strings.Contains(err.Error(), "--api-cert-file") {
			t.Errorf("a token over plain HTTP with Consul %q over TLS: %v", consul, err)
		}
	}
	t.Setenv("CONSUL_HTTP_SSL", "")
	if plain.requests.Load() != 0 {
		t.Fatalf("a refused request reached the plain endpoint")
	}
	for _, c := range []struct {
		consul string
		token  bool
	}{{"https://127.0.0.1:8501", false}, {"http://127.0.0.1:8500", true}} {
		if resp, err := do(plainSrv.URL, c.consul, c.token); err != nil || resp.StatusCode != 200 {
			t.Errorf("plain HTTP with Consul %s, token %v: %v %v", c.consul, c.token, resp, err)
		}
	}
	if plain.tokens.Load() != 1 {
		t.Errorf("the plain endpoint got %d tokens, want 1 (Consul over plain HTTP too)", plain.tokens.Load())
	}
	// A redirect is answered, not followed.
	if resp, err := do(goodSrv.URL+"/redirect", "https://127.0.0.1:8501", true); err != nil || resp.StatusCode != http.StatusFound {
		t.Errorf("a redirect: %v %v; want the 302 itself", resp, err)
	}
}
