package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/apitls"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestServeTLS: a fleetd that reaches a Consul serving HTTPS only serves
// --api-addr and --fleet-api-addr over TLS with its Consul client
// certificate, publishes https for fleetctl, and answers a plain HTTP
// request with an error only. With --fleet-api-own-token-on-loopback a
// request without a token from loopback is answered. A fleetd without a
// certificate, or with one fleetctl could not verify for its address,
// does not start and says what to set.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	pki, err := testcluster.GenerateTLS(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{TLS: pki})
	testcluster.ClearConsulEnv(t)
	t.Setenv("CONSUL_CACERT", pki.CACert) // what fleetctl verifies machines with
	const ip = "127.0.3.1"
	cert, key, err := pki.IssueMachine("machine-1", net.ParseIP(ip))
	if err != nil {
		t.Fatal(err)
	}
	ports, err := testcluster.FreePorts(ip, 1)
	if err != nil {
		t.Fatal(err)
	}
	fleetAPI := net.JoinHostPort(ip, strconv.Itoa(ports[0]))
	addr, ca := "CONSUL_HTTP_ADDR="+consul.URL(), "CONSUL_CACERT="+pki.CACert
	start := func(name string, env []string, extra ...string) *testcluster.Machine {
		t.Helper()
		m, err := testcluster.StartMachine(testcluster.MachineOptions{Fleetd: testcluster.Binary(t, "fleetd"), IP: ip,
			Dir: filepath.Join(dir, name), TTL: 2 * time.Second, Env: env, Extra: extra})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		return m
	}
	m := start("m1", []string{addr, ca, "CONSUL_CLIENT_CERT=" + cert, "CONSUL_CLIENT_KEY=" + key},
		"--fleet-api-addr", fleetAPI, "--fleet-api-own-token-on-loopback")
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	var svc *api.CatalogService
	testcluster.Eventually(t, 30*time.Second, func() error {
		svcs, _, err := client.Catalog().Service("fleet-agent", "", nil)
		for _, s := range svcs {
			if s.ServiceMeta["machine-id"] == m.ID {
				svc = s
				return nil
			}
		}
		log, _ := os.ReadFile(filepath.Join(m.Dir, "fleetd.log"))
		return fmt.Errorf("machine not in Consul (%v); fleetd.log:\n%s", err, log)
	})
	u := apitls.URL(svc)
	if svc.ServiceMeta[apitls.SchemeMeta] != "https" || !strings.HasPrefix(u, "https://"+ip+":") {
		t.Fatalf("the machine publishes %v, URL %s; want https on %s", svc.ServiceMeta, u, ip)
	}
	get := func(c *http.Client, url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("X-Consul-Token", token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// fleetctl's client, verifying the machine's certificate for its IP
	// with CONSUL_CACERT: the inspect server answers.
	hc, err := apitls.Client(u, consul.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(hc, u+"/v1/units/nope.service/status", "any"); code != 404 || !strings.Contains(body, "Unit nope.service does not exist.") {
		t.Errorf("status over TLS: %d %q", code, body)
	}
	// fleet's HTTP API over TLS: without a token from loopback it acts as
	// fleetd (this Consul has no ACLs), with one as that token.
	// (The machine publishes itself in fleet's keys after joining.)
	for _, token := range []string{"", "any"} {
		testcluster.Eventually(t, 30*time.Second, func() error {
			if code, body := get(hc, "https://"+fleetAPI+"/fleet/v1/machines", token); code != 200 || !strings.Contains(body, m.ID) {
				return fmt.Errorf("fleet API over TLS with token %q: %d %q", token, code, body)
			}
			return nil
		})
	}
	// Plain HTTP gets no answer but the TLS server's refusal.
	for _, url := range []string{"http" + strings.TrimPrefix(u, "https") + "/v1/units/nope.service/status", "http://" + fleetAPI + "/fleet/v1/machines"} {
		if code, body := get(&http.Client{}, url, "any"); code != 400 || !strings.Contains(body, "HTTP request to an HTTPS server") {
			t.Errorf("plain HTTP to %s: %d %q", url, code, body)
		}
	}
	m.Stop()

	// Consul's client certificate, fleetd's default, when it cannot serve:
	// the machine runs on, serving neither TCP endpoint, and says what to
	// set; fleetctl is told the machine serves no status.
	for _, c := range []struct {
		name      string
		env       []string
		want      []string
		published bool // this Consul wants a client certificate: without one fleetd cannot join
	}{
		{"none", []string{addr, ca}, []string{"has no certificate", "set --api-cert-file and --api-key-file (or CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY)", ip}, false},
		{"not for the machine", []string{addr, ca, "CONSUL_CLIENT_CERT=" + pki.ClientCert, "CONSUL_CLIENT_KEY=" + pki.ClientKey},
			[]string{"(CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY: " + pki.ClientCert + ") would not pass fleetctl's check", "must name this machine's --public-ip"}, true},
	} {
		m := start("unserved-"+strings.ReplaceAll(c.name, " ", "-"), c.env, "--fleet-api-addr", fleetAPI)
		testcluster.Eventually(t, 30*time.Second, func() error {
			log, _ := os.ReadFile(filepath.Join(m.Dir, "fleetd.log"))
			for _, w := range append(c.want, "runs its units all the same") {
				if !strings.Contains(string(log), w) {
					return fmt.Errorf("%s: fleetd.log does not say %q:\n%s", c.name, w, log)
				}
			}
			if !c.published {
				return nil
			}
			svcs, _, err := client.Catalog().Service("fleet-agent", "", nil)
			for _, s := range svcs {
				if s.ServiceMeta["machine-id"] == m.ID && !apitls.Served(s) {
					return nil
				}
			}
			return fmt.Errorf("%s: the machine is not published as serving no status (%v)", c.name, err)
		})
		select {
		case <-m.Exited():
			t.Errorf("%s: fleetd stopped", c.name)
		default:
		}
		if conn, err := net.DialTimeout("tcp", fleetAPI, 5*time.Second); err == nil {
			conn.Close()
			t.Errorf("%s: --fleet-api-addr %s is served without a certificate", c.name, fleetAPI)
		}
		m.Stop()
	}

	// A certificate given on the command line that cannot serve stops
	// fleetd, saying what to set.
	for _, c := range []struct {
		name  string
		extra []string
		want  []string
	}{
		{"missing file", []string{"--api-cert-file", filepath.Join(dir, "nope.pem"), "--api-key-file", key},
			[]string{"load the certificate fleetd serves", "nope.pem"}},
		{"not for the machine", []string{"--api-cert-file", pki.ClientCert, "--api-key-file", pki.ClientKey},
			[]string{"would not pass fleetctl's check", "must name this machine's --public-ip"}},
		{"cert without key", []string{"--api-cert-file", cert}, []string{"--api-cert-file and --api-key-file go together"}},
	} {
		bad := start("bad-"+strings.ReplaceAll(c.name, " ", "-"), []string{addr, ca}, c.extra...)
		select {
		case <-bad.Exited():
		case <-time.After(time.Minute):
			t.Fatalf("%s: fleetd still runs", c.name)
		}
		log, _ := os.ReadFile(filepath.Join(bad.Dir, "fleetd.log"))
		for _, w := range c.want {
			if !strings.Contains(string(log), w) {
				t.Errorf("%s: fleetd.log does not say %q:\n%s", c.name, w, log)
			}
		}
	}
}
