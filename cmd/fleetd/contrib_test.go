package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/config"
)

// literalBlock returns the YAML literal block ("key: |") that follows the
// line holding marker, with its indentation removed.
func literalBlock(t *testing.T, doc, marker, key string) string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	start := -1
	for i, l := range lines {
		if strings.Contains(l, marker) {
			start = i
			break
		}
	}
	for ; start >= 0 && start < len(lines); start++ {
		if strings.TrimSpace(lines[start]) == key+": |" {
			break
		}
	}
	if start < 0 || start >= len(lines) {
		t.Fatalf("no %q block after %q", key, marker)
	}
	indent := ""
	var out []string
	for _, l := range lines[start+1:] {
		if indent == "" && strings.TrimSpace(l) != "" {
			indent = l[:len(l)-len(strings.TrimLeft(l, " "))]
		}
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, indent) {
			break
		}
		out = append(out, strings.TrimPrefix(l, indent))
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
}

// TestContrib checks the files in contrib/ offline: the Ignition example
// carries contrib/fleetd.service verbatim and a fleet.conf whose every
// option is one of fleetd's, and systemd-analyze (where installed) finds
// nothing wrong with the units.
func TestContrib(t *testing.T) {
	ign, err := os.ReadFile("../../contrib/ignition.yaml")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := os.ReadFile("../../contrib/fleetd.service")
	if err != nil {
		t.Fatal(err)
	}
	if got := literalBlock(t, string(ign), "name: fleetd.service", "contents"); got != string(svc) {
		t.Errorf("contrib/ignition.yaml's fleetd.service differs from contrib/fleetd.service:\n%s", got)
	}

	dir := t.TempDir()
	conf := filepath.Join(dir, "fleet.conf")
	if err := os.WriteFile(conf, []byte(literalBlock(t, string(ign), "path: /etc/fleet/fleet.conf", "inline")), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := config.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	flags := newAgentCmd().Flags()
	for k := range opts {
		if flags.Lookup(strings.ReplaceAll(k, "_", "-")) == nil {
			t.Errorf("the example fleet.conf sets %s, which is no fleetd option", k)
		}
	}
	if err := config.Apply(flags, "FLEET_TEST_NONE_", opts); err != nil {
		t.Errorf("the example fleet.conf does not load: %v", err)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: units not verified")
		return
	}
	consul := literalBlock(t, string(ign), "name: consul.service", "contents")
	socket, err := os.ReadFile("../../contrib/fleet.socket")
	if err != nil {
		t.Fatal(err)
	}
	units := map[string]string{
		// verify wants the programs to exist: stand-ins for those a
		// machine gets from Ignition or Flatcar.
		"fleetd.service": strings.ReplaceAll(string(svc), "/opt/bin/fleetd", "/bin/true"),
		"consul.service": strings.ReplaceAll(consul, "/usr/bin/docker", "/bin/true"),
		"fleet.socket":   string(socket),
	}
	for name, body := range units {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name := range units {
		if out, err := exec.Command(analyze, "verify", filepath.Join(dir, name)).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}
