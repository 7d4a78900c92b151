package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/testcluster"
)

// buildExample builds an SDK example policy to WebAssembly.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = filepath.Join("..", "..", "sdk", "examples", name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build example %s: %v\n%s", name, err, b)
	}
	return out
}

func watFile(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	if b, err := exec.Command("wat2wasm", filepath.Join("..", "..", "policies", "testdata", name+".wat"), "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm (install wabt: make deps): %v\n%s", err, b)
	}
	return out
}

func machineOf(t *testing.T, ep, unit string) string {
	t.Helper()
	for _, r := range testcluster.Rows(mustCtl(t, ep, "list-units", "--full", "--fields", "unit,machine")) {
		if r[0] == unit {
			return strings.Split(r[1], "/")[0]
		}
	}
	return ""
}

// TestPolicies uploads a policy from sdk/examples to a running cluster,
// lets units choose it, makes it the default, and shows that a hostile
// endless-loop policy is stopped while other units keep being placed.
func TestPolicies(t *testing.T) {
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	dir := t.TempDir()
	unit := func(name, xfleet string) string {
		body := testcluster.HelloService
		if xfleet != "" {
			body += "\n[X-Fleet]\n" + xfleet + "\n"
		}
		return testcluster.WriteUnit(t, dir, name, body)
	}

	// fleet's own rule spreads.
	mustCtl(t, ep, "start", unit("a.service", ""), unit("b.service", ""))
	if machineOf(t, ep, "a.service") == machineOf(t, ep, "b.service") {
		t.Fatal("the default policy did not spread two units over two empty machines")
	}

	// Bad modules are refused and nothing is stored.
	before := mustCtl(t, ep, "policy", "list")
	for _, bad := range []struct{ file, want string }{
		{unit("notwasm.service", ""), "not a WebAssembly module"},
		{watFile(t, "noplace"), "does not export fleet_place"},
		{watFile(t, "import"), "env.open_socket"},
	} {
		if _, errOut, code := ctl(t, ep, "policy", "upload", "bad", bad.file); code == 0 || !strings.Contains(errOut, bad.want) {
			t.Errorf("upload of %s: exit %d %q, want %q", bad.file, code, errOut, bad.want)
		}
	}
	if after := mustCtl(t, ep, "policy", "list"); after != before {
		t.Fatalf("a refused upload changed the policies:\n%s", after)
	}

	// Simulating binpack as the default on the live cluster: placed anew,
	// a.service stays on the first machine and b.service would join it;
	// nothing changes.
	binpack := buildExample(t, "binpack")
	before = mustCtl(t, ep, "list-units")
	out, errOut, code := ctl(t, ep, "policy", "simulate", binpack)
	a := machineOf(t, ep, "a.service")
	if code != 0 || strings.Contains(out, "a.service") || !strings.Contains(errOut, "1 unit(s) would move") ||
		!regexp.MustCompile(`b\.service\s+\S+\s+`+regexp.QuoteMeta(a[:8])+`\S*\s+placed by policy binpack`).MatchString(out) {
		t.Fatalf("simulate: exit %d\n%s%s", code, out, errOut)
	}
	if after := mustCtl(t, ep, "list-units"); after != before {
		t.Fatalf("simulate changed the cluster:\n%s", after)
	}

	// binpack packs the units that choose it onto the busiest machine.
	if out := mustCtl(t, ep, "policy", "upload", "binpack", binpack); !strings.HasPrefix(out, "Policy binpack uploaded") {
		t.Fatalf("upload printed %q", out)
	}
	if out := mustCtl(t, ep, "policy", "list"); !strings.Contains(out, "binpack") {
		t.Fatalf("policy list:\n%s", out)
	}
	mustCtl(t, ep, "start", unit("c.service", "Policy=binpack"))
	mustCtl(t, ep, "start", unit("d.service", "Policy=binpack"))
	if m := machineOf(t, ep, "c.service"); m != machineOf(t, ep, "d.service") {
		t.Fatalf("binpack spread c and d")
	}

	// An endless loop is stopped by its time limit; the unit says why, and
	// units of other policies keep being placed.
	mustCtl(t, ep, "policy", "upload", "spin", watFile(t, "loop"))
	_, errOut, code = ctl(t, ep, "start", "--block-attempts", "3", unit("e.service", "Policy=spin"))
	if code == 0 || !strings.Contains(errOut, "time limit") {
		t.Fatalf("start with an endless policy: exit %d %q", code, errOut)
	}
	if out := mustCtl(t, ep, "start", unit("f.service", "")); !strings.Contains(out, "launched") {
		t.Fatalf("a unit of the default policy after the endless one: %q", out)
	}

	// binpack as the cluster's default.
	mustCtl(t, ep, "policy", "default", "binpack")
	mustCtl(t, ep, "start", unit("g.service", ""))
	// Under a custom default, a unit may carry options fleet does not know:
	// the policy may read them (with the built-in default they are an error,
	// TestBadInput).
	mustCtl(t, ep, "submit", unit("h.service", "PackTightly=yes"))
	busiest := machineOf(t, ep, "c.service")
	if m := machineOf(t, ep, "g.service"); m != busiest {
		t.Fatalf("g.service on %s, want binpack's busiest machine %s", m, busiest)
	}
	if _, errOut, code := ctl(t, ep, "policy", "rm", "binpack"); code == 0 || !strings.Contains(errOut, "default") {
		t.Fatalf("rm of the default policy: exit %d %q", code, errOut)
	}
	mustCtl(t, ep, "policy", "default", "default")
	mustCtl(t, ep, "policy", "rm", "binpack")
	if out := mustCtl(t, ep, "policy", "list"); strings.Contains(out, "binpack") {
		t.Fatalf("binpack still listed after rm:\n%s", out)
	}
}
