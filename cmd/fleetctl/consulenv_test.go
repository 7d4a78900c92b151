package main

import (
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestConsulEnvironment: fleetctl finds Consul and its token the way the
// consul CLI does, CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN, and --endpoint
// and --token win over them. With ACLs on and no token, Consul's refusal
// reaches the operator.
func TestConsulEnvironment(t *testing.T) {
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{ACLToken: "root-token"})
	unit := testcluster.WriteUnit(t, t.TempDir(), "envtest.service", testcluster.HelloService)
	list := func(args ...string) (string, string, int) {
		t.Helper()
		var out, errOut strings.Builder
		code := run(args, &out, &errOut)
		return out.String(), errOut.String(), code
	}

	t.Setenv("FLEETCTL_ENDPOINT", "") // whatever the tester's shell has
	t.Setenv("FLEETCTL_TOKEN", "")
	t.Setenv("CONSUL_HTTP_ADDR", consul.URL())
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	if _, errOut, code := list("submit", unit); code == 0 || !strings.Contains(errOut, "Permission denied") || !strings.Contains(errOut, "no ACL token was given") {
		t.Errorf("submit without a token: exit %d, stderr %q; want Consul's permission error", code, errOut)
	}
	t.Setenv("CONSUL_HTTP_TOKEN", "root-token")
	if _, errOut, code := list("submit", unit); code != 0 {
		t.Fatalf("submit with CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN: exit %d, %s", code, errOut)
	}
	if out, errOut, code := list("list-unit-files", "--no-legend", "--fields", "unit"); code != 0 || strings.TrimSpace(out) != "envtest.service" {
		t.Errorf("list-unit-files from the environment: exit %d %q %s", code, out, errOut)
	}
	// Flags win over the environment.
	t.Setenv("CONSUL_HTTP_TOKEN", "wrong-token")
	if out, errOut, code := list("--token", "root-token", "list-unit-files", "--no-legend", "--fields", "unit"); code != 0 || strings.TrimSpace(out) != "envtest.service" {
		t.Errorf("--token over CONSUL_HTTP_TOKEN: exit %d %q %s", code, out, errOut)
	}
	t.Setenv("CONSUL_HTTP_ADDR", "http://127.0.0.1:1")
	if _, errOut, code := list("--endpoint", consul.URL(), "--token", "root-token", "list-machines"); code != 0 {
		t.Errorf("--endpoint over CONSUL_HTTP_ADDR: exit %d %s", code, errOut)
	}
	if _, errOut, code := list("list-machines"); code == 0 || !strings.Contains(errOut, "cannot reach Consul at http://127.0.0.1:1") {
		t.Errorf("an unreachable CONSUL_HTTP_ADDR: exit %d %q", code, errOut)
	}
}
