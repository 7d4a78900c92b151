package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestPolicyWalk runs the first section of docs/policies.md, a policy
// author's first policy from an empty directory, as a reader would: every
// ```sh block in one bash, in a temporary directory outside the
// repository, with no Go module proxy (the module must build from what
// fleetctl wrote), against a "fleetd dev" cluster. The one thing a reader
// adapts, the machine ID to give an SSD, is rewritten to a machine of this
// cluster. It checks what the section says happens: the policy turns the
// unit down on every machine for "no disk=ssd", then places it on the
// machine given an SSD, and the walk leaves nothing behind.
func TestPolicyWalk(t *testing.T) {
	doc, err := os.ReadFile("../../docs/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, string(doc), "## Your first policy", 4)
	d := startDev(t, "--machines", "3")
	ssd := d.st.Machines[len(d.st.Machines)-1]
	var body strings.Builder
	replaced, paced := 0, 0
	for _, b := range blocks {
		if strings.Contains(b, "machine-metadata set 766046ec ") {
			b = strings.ReplaceAll(b, "766046ec", ssd.ID[:8])
			replaced++
		}
		// A reader reads the reasons a moment after starting the unit,
		// when the leader has tried to place it; the walk waits for that
		// moment (at most two minutes) instead of racing the leader.
		const start = "fleetctl start --no-block web.service\n"
		if strings.Contains(b, start) {
			b = strings.Replace(b, start, start+"timeout 120 bash -c 'until fleetctl list-unit-files --no-legend --fields reason | grep -q disk=ssd; do sleep 0.5; done'\n", 1)
			paced++
		}
		body.WriteString(b)
	}
	if replaced != 1 || paced != 1 {
		t.Fatalf("the section should start web.service without blocking once (found %d) and set metadata on one machine (machine-metadata set 766046ec, found %d)", paced, replaced)
	}
	dir := t.TempDir()
	// The timeout stops a hung walk; the walk's time is logged, as a
	// newcomer's first policy should take minutes, not hours.
	log, took, err := d.walk(body.String(), dir, 10*time.Minute, []string{"GOPROXY=off", "GOFLAGS=", "GOWORK=off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("from an empty directory to a placed unit: %s", took.Round(time.Second))
	if _, err := os.Stat(filepath.Join(dir, "ssd", "ssd.wasm")); err != nil {
		t.Errorf("the walk built no module: %v", err)
	}
	_, after, _ := strings.Cut(log, "+ fleetctl list-unit-files")
	reasons, _, _ := strings.Cut(after, "\n+ ")
	for _, m := range d.st.Machines {
		if !strings.Contains(reasons, m.ID[:8]+": no disk=ssd") {
			t.Errorf("list-unit-files does not say why %s turned web.service down:\n%s", m.ID[:8], reasons)
		}
	}
	if !regexp.MustCompile(`Unit web\.service launched on ` + ssd.ID[:8] + `\S*/` + regexp.QuoteMeta(ssd.IP)).MatchString(log) {
		t.Errorf("web.service was not placed on the machine given an SSD (%s, %s):\n%s", ssd.ID[:8], ssd.IP, log)
	}
	fleetctl := func(args ...string) string {
		return strings.TrimSpace(testcluster.MustFleetctl(t, d.st.ConsulHTTPAddr, args...))
	}
	if units := fleetctl("list-unit-files", "--no-legend"); units != "" {
		t.Errorf("units left after the walk:\n%s", units)
	}
	if ps := fleetctl("policy", "list", "--no-legend"); strings.Contains(ps, "ssd") {
		t.Errorf("the policy is still uploaded after the walk:\n%s", ps)
	}
}
