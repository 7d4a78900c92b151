package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestTLSConsul: against a Consul serving its API on HTTPS only (the plain
// HTTP port off) and requiring a client certificate its CA signed
// (verify_incoming), fleetctl and fleetd find and trust it through the
// consul CLI's variables alone: CONSUL_HTTP_ADDR=https://...,
// CONSUL_CACERT, CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY (or CONSUL_HTTP_SSL
// for the scheme). A fleetd machine so configured joins and runs a unit
// fleetctl starts, and serves fleetctl status and journal over TLS with its
// client certificate. Without the CA, without a client certificate, or with
// an http:// address, fleetctl fails with one line saying what to set, and
// fleetd keeps retrying and logs why; fleetctl sends nothing to a machine
// whose certificate it cannot verify.
func TestTLSConsul(t *testing.T) {
	dir := t.TempDir()
	pki, err := testcluster.GenerateTLS(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{TLS: pki})
	if !strings.HasPrefix(consul.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL of a TLS Consul: %s", consul.URL())
	}
	if !consul.Healthy() {
		t.Fatal("Healthy: false for a TLS Consul that is up")
	}
	// The server really is HTTPS only: Consul's own view of its ports.
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	self, err := client.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if dc := self["DebugConfig"]; dc["HTTPPort"] != float64(-1) || fmt.Sprint(dc["HTTPSPort"]) != strings.Split(consul.HTTPAddr, ":")[1] {
		t.Fatalf("Consul's ports: http %v https %v; want -1 and %s", dc["HTTPPort"], dc["HTTPSPort"], consul.HTTPAddr)
	}

	// Nothing from the tester's shell: only what each call gives.
	testcluster.ClearConsulEnv(t)
	t.Setenv("FLEETCTL_ENDPOINT", "")
	t.Setenv("FLEETCTL_TOKEN", "")
	addr, ca, cert, key := "CONSUL_HTTP_ADDR="+consul.URL(), "CONSUL_CACERT="+pki.CACert,
		"CONSUL_CLIENT_CERT="+pki.ClientCert, "CONSUL_CLIENT_KEY="+pki.ClientKey
	tlsEnv := []string{addr, ca, cert, key}

	// fleetctl runs the fleetctl binary with env added to the environment,
	// as an operator's shell would.
	fleetctl := func(env []string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, testcluster.Binary(t, "fleetctl"), args...) // killed by PID on timeout
		cmd.Env = append(os.Environ(), env...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("run fleetctl %v: %v", args, err)
		}
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}
	mustFleetctl := func(env []string, args ...string) string {
		t.Helper()
		out, errOut, code := fleetctl(env, args...)
		if code != 0 {
			t.Fatalf("fleetctl %v with %v: exit %d\nstdout: %s\nstderr: %s", args, env, code, out, errOut)
		}
		return out
	}
	// fails checks that fleetctl fails with one line of stderr holding
	// every one of want.
	fails := func(what string, env []string, want ...string) {
		t.Helper()
		out, errOut, code := fleetctl(env, "list-unit-files")
		if code == 0 {
			t.Errorf("%s: exit 0, stdout %q", what, out)
			return
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%s: stderr is not one line: %q", what, errOut)
		}
		for _, w := range want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr %q does not say %q", what, errOut, w)
			}
		}
	}

	// What an operator gets wrong, before anything is in Consul.
	fails("no CONSUL_CACERT", []string{addr, cert, key},
		"cannot verify the TLS certificate of Consul at "+consul.URL(), "certificate signed by unknown authority", "set CONSUL_CACERT")
	fails("no client certificate", []string{addr, ca},
		"Consul at "+consul.URL(), "client certificate", "set CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY")
	plain := "http://" + consul.HTTPAddr
	fails("an http:// address", []string{"CONSUL_HTTP_ADDR=" + plain, ca, cert, key},
		"Consul at "+plain+" serves HTTPS only", "https://host:port", "CONSUL_HTTP_SSL=true")
	fails("a CA file that is not there", []string{addr, "CONSUL_CACERT=" + filepath.Join(dir, "nope.pem"), cert, key},
		"nope.pem", "check the files CONSUL_CACERT")

	// The right variables: submit and list.
	unit := testcluster.WriteUnit(t, dir, "tlsapp.service", testcluster.HelloService)
	mustFleetctl(tlsEnv, "submit", unit)
	if out := mustFleetctl(tlsEnv, "list-unit-files", "--no-legend", "--fields", "unit"); strings.TrimSpace(out) != "tlsapp.service" {
		t.Fatalf("list-unit-files over TLS: %q", out)
	}
	// The consul CLI's other ways to ask for https: CONSUL_HTTP_SSL=true with
	// an address without a scheme, or even with http:// (which the consul
	// CLI then never downgrades to), and --endpoint over CONSUL_HTTP_ADDR.
	for _, env := range [][]string{
		{"CONSUL_HTTP_SSL=true", "CONSUL_HTTP_ADDR=" + consul.HTTPAddr, ca, cert, key},
		{"CONSUL_HTTP_SSL=true", "CONSUL_HTTP_ADDR=" + plain, ca, cert, key},
	} {
		if out := mustFleetctl(env, "list-unit-files", "--no-legend", "--fields", "unit"); strings.TrimSpace(out) != "tlsapp.service" {
			t.Errorf("list-unit-files with %v: %q", env[:2], out)
		}
	}
	if out := mustFleetctl([]string{"CONSUL_HTTP_ADDR=http://127.0.0.1:1", ca, cert, key}, "--endpoint", consul.URL(),
		"list-unit-files", "--no-legend", "--fields", "unit"); strings.TrimSpace(out) != "tlsapp.service" {
		t.Errorf("list-unit-files with --endpoint https://...: %q", out)
	}

	// A machine configured by the same variables (and no --endpoint) joins
	// and runs the unit.
	// Each machine's client certificate names its IP, as "consul tls cert
	// create -client -additional-ipaddress" makes it: fleetd serves it to
	// fleetctl status and journal too.
	machineCert := func(p *testcluster.TLSFiles, i int) (string, string) {
		t.Helper()
		cert, key, err := p.IssueMachine(fmt.Sprintf("machine-%d", i), net.ParseIP(fmt.Sprintf("127.0.2.%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		return "CONSUL_CLIENT_CERT=" + cert, "CONSUL_CLIENT_KEY=" + key
	}
	startMachine := func(i int, env []string, extra ...string) *testcluster.Machine {
		t.Helper()
		m, err := testcluster.StartMachine(testcluster.MachineOptions{
			Fleetd: testcluster.Binary(t, "fleetd"),
			IP:     fmt.Sprintf("127.0.2.%d", i),
			Dir:    filepath.Join(dir, fmt.Sprintf("machine-%d", i)),
			TTL:    2 * time.Second,
			Env:    env,
			Extra:  extra,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		return m
	}
	m1Cert, m1Key := machineCert(pki, 1)
	m := startMachine(1, []string{addr, ca, m1Cert, m1Key})
	testcluster.Eventually(t, 30*time.Second, func() error {
		out, errOut, code := fleetctl(tlsEnv, "list-machines", "--no-legend", "--full")
		if f := strings.Fields(out); code != 0 || len(f) < 2 || f[0] != m.ID || f[1] != m.IP {
			log, _ := os.ReadFile(filepath.Join(m.Dir, "fleetd.log"))
			return fmt.Errorf("list-machines: exit %d %q %s\nfleetd.log:\n%s", code, out, errOut, log)
		}
		return nil
	})
	if out := mustFleetctl(tlsEnv, "start", "tlsapp"); !strings.HasPrefix(out, "Unit tlsapp.service launched on "+registry.ShortID(m.ID)) {
		t.Fatalf("start printed %q", out)
	}
	if got := testcluster.Rows(mustFleetctl(tlsEnv, "list-units", "--full")); len(got) != 1 || strings.Join(got[0], " ") != "tlsapp.service "+m.ID+"/"+m.IP+" active running" {
		t.Fatalf("list-units over TLS: %v", got)
	}
	if err := m.CheckRunning("tlsapp.service"); err != nil {
		t.Fatal(err)
	}
	machineInspectOverTLS(t, mustFleetctl, append(tlsEnv, "CONSUL_HTTP_TOKEN=caller-token"))

	// A machine without the CA does not join, and its log says why and
	// where it tried.
	lostCert, lostKey := machineCert(pki, 2)
	lost := startMachine(2, []string{addr, lostCert, lostKey})
	testcluster.Eventually(t, 30*time.Second, func() error {
		log, _ := os.ReadFile(filepath.Join(lost.Dir, "fleetd.log"))
		if s := string(log); !strings.Contains(s, "cannot join the cluster yet") || !strings.Contains(s, "certificate signed by unknown authority") ||
			!strings.Contains(s, "endpoint="+consul.URL()) {
			return fmt.Errorf("fleetd.log of a machine without CONSUL_CACERT:\n%s", s)
		}
		return nil
	})
	if got := testcluster.Rows(mustFleetctl(tlsEnv, "list-machines", "--full")); len(got) != 1 || got[0][0] != m.ID {
		t.Fatalf("list-machines: %v; want only %s", got, m.ID)
	}
	lost.Stop()

	// A machine serving a certificate of another CA (which its own
	// CONSUL_CACERT also trusts): fleetctl, trusting only Consul's CA,
	// cannot verify it and sends it nothing, token or not.
	other, err := testcluster.GenerateTLS(filepath.Join(dir, "tls-other"))
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "both-cas.pem")
	ca1, _ := os.ReadFile(pki.CACert)
	ca2, _ := os.ReadFile(other.CACert)
	if err := os.WriteFile(bundle, append(ca1, ca2...), 0o644); err != nil {
		t.Fatal(err)
	}
	m3Cert, m3Key := machineCert(pki, 3)
	servedCert, servedKey := machineCert(other, 3)
	m3 := startMachine(3, []string{addr, "CONSUL_CACERT=" + bundle, m3Cert, m3Key},
		"--api-cert-file", strings.TrimPrefix(servedCert, "CONSUL_CLIENT_CERT="), "--api-key-file", strings.TrimPrefix(servedKey, "CONSUL_CLIENT_KEY="))
	pinned := testcluster.WriteUnit(t, dir, "pinned.service", testcluster.HelloService+"\n[X-Fleet]\nMachineID="+m3.ID+"\n")
	testcluster.Eventually(t, 30*time.Second, func() error {
		_, errOut, code := fleetctl(tlsEnv, "start", pinned)
		if code != 0 {
			log, _ := os.ReadFile(filepath.Join(m3.Dir, "fleetd.log"))
			return fmt.Errorf("start on machine 3: exit %d %s\nfleetd.log:\n%s", code, errOut, log)
		}
		return nil
	})
	for _, env := range [][]string{tlsEnv, append(tlsEnv, "CONSUL_HTTP_TOKEN=caller-token")} {
		_, errOut, code := fleetctl(env, "status", "pinned")
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 ||
			!strings.Contains(errOut, "cannot verify the TLS certificate of the machine at https://127.0.2.3:") ||
			!strings.Contains(errOut, "fleetctl sent it nothing") || !strings.Contains(errOut, "set CONSUL_CACERT") {
			t.Errorf("status of a unit on a machine fleetctl cannot verify: exit %d %q", code, errOut)
		}
	}
	m3.Stop()

	// A machine whose Consul client certificate names no address of its
	// own: it runs its units, serves no status, and fleetctl says so.
	m4 := startMachine(4, []string{addr, "CONSUL_CACERT=" + pki.CACert, "CONSUL_CLIENT_CERT=" + pki.ClientCert, "CONSUL_CLIENT_KEY=" + pki.ClientKey})
	unserved := testcluster.WriteUnit(t, dir, "unserved.service", testcluster.HelloService+"\n[X-Fleet]\nMachineID="+m4.ID+"\n")
	testcluster.Eventually(t, 30*time.Second, func() error {
		if _, errOut, code := fleetctl(tlsEnv, "start", unserved); code != 0 {
			return fmt.Errorf("start on machine 4: exit %d %s", code, errOut)
		}
		return m4.CheckRunning("unserved.service")
	})
	if _, errOut, code := fleetctl(tlsEnv, "status", "unserved"); code == 0 || !strings.Contains(errOut, "serves no status or journal") {
		t.Errorf("status of a unit on a machine serving no status: exit %d %q", code, errOut)
	}
	m4.Stop()
	m.Stop()
}

// machineInspectOverTLS checks fleetctl status and journal, with env, get
// unit tlsapp's status and output from the machine running it, which
// serves them over TLS only.
func machineInspectOverTLS(t *testing.T, mustFleetctl func([]string, ...string) string, env []string) {
	t.Helper()
	if out := mustFleetctl(env, "status", "tlsapp"); !strings.Contains(out, "tlsapp.service") {
		t.Errorf("status over TLS: %q", out)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if out := mustFleetctl(env, "journal", "--lines", "1", "tlsapp"); strings.TrimSpace(out) != "Hello World" {
			return fmt.Errorf("journal over TLS: %q", out)
		}
		return nil
	})
}
