package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestReadmeWalk pastes the README's quickstart into one bash, block after
// block, against a "fleetd dev" cluster, as a newcomer would: first the
// export line the banner prints, then every ```sh block of the quickstart.
// The one line a reader must adapt, the machine PID to kill, is rewritten to
// the PID of the machine that runs myapp. It fails on any command that
// fails, and checks what the walk says happens: the sidekick announces both
// instances in Consul, the metadata unit lands on machine-2, and after the
// kill myapp runs on another machine.
func TestReadmeWalk(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := quickstartBlocks(t, string(readme))
	d := startDev(t, "--machines", "3")
	export := regexp.MustCompile(`(?m)^\s*(export PATH=.*)$`).FindStringSubmatch(d.out.String())
	if export == nil {
		t.Fatalf("the banner has no export line:\n%s", d.out.String())
	}
	// fleetctl comes from the same build as the fleetd under test.
	bin := filepath.Dir(testcluster.Binary(t, "fleetctl"))

	// machine-pid prints the PID of the machine that runs a unit, from
	// the state file: what the reader reads off the banner.
	helper := t.TempDir()
	var cases strings.Builder
	for _, m := range d.st.Machines {
		fmt.Fprintf(&cases, "%s) echo %d;;\n", m.ID, m.PID)
	}
	script := "#!/bin/bash\nid=$(fleetctl list-units --no-legend --full --fields unit,machine | awk -v u=\"$1\" '$1==u {print $2}' | cut -d/ -f1)\ncase \"$id\" in\n" + cases.String() + "*) echo \"no machine runs $1\" >&2; exit 1;;\nesac\n"
	if err := os.WriteFile(filepath.Join(helper, "machine-pid"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var walk strings.Builder
	walk.WriteString("set -e -o pipefail -x\n")
	walk.WriteString(export[1] + "\n")
	walk.WriteString("export PATH=" + bin + ":" + helper + ":$PATH\n")
	replaced := 0
	for _, b := range blocks {
		if strings.Contains(b, "kill -9 13000") {
			b = strings.ReplaceAll(b, "kill -9 13000", "kill -9 $(machine-pid myapp.service)")
			replaced++
		}
		walk.WriteString(b)
	}
	if replaced != 1 {
		t.Fatalf("the quickstart should kill one machine by PID (kill -9 13000), found %d", replaced)
	}
	cmd := exec.Command("bash")
	cmd.Stdin = strings.NewReader(walk.String())
	cmd.Dir = t.TempDir()
	cmd.Env = os.Environ()
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the walk did not finish in 4 minutes:\n%s", out)
	}
	log := string(out)
	t.Logf("the walk:\n%s", log)
	if err != nil {
		t.Fatalf("the walk failed: %v\n%s", err, log)
	}
	for _, want := range []string{"services/website/apache@1:up", "services/website/apache@2:up"} {
		if !strings.Contains(log, want) {
			t.Errorf("the walk's output lacks %q:\n%s", want, log)
		}
	}
	if !regexp.MustCompile(`Unit on-two\.service launched on \S+/127\.0\.1\.2\n`).MatchString(log) {
		t.Errorf("on-two.service did not land on machine-2 (127.0.1.2):\n%s", log)
	}
	// The list-units after the kill: myapp active, not on the killed machine.
	_, after, ok := strings.Cut(log, "+ kill -9 ")
	if !ok {
		t.Fatalf("no kill in the walk:\n%s", log)
	}
	pid, _, _ := strings.Cut(after, "\n")
	var killed devStateMachine
	for _, m := range d.st.Machines {
		if fmt.Sprint(m.PID) == strings.TrimSpace(pid) {
			killed = m
		}
	}
	if killed.ID == "" {
		t.Fatalf("killed PID %q is no machine's", pid)
	}
	listing, _, _ := strings.Cut(after[strings.Index(after, "+ fleetctl list-units"):], "\n+ ")
	myapp := regexp.MustCompile(`(?m)^myapp\.service\s+(\S+)\s+active\s+running`).FindStringSubmatch(listing)
	if myapp == nil || strings.Contains(myapp[1], killed.IP) {
		t.Errorf("after killing %s (%s), myapp is not running elsewhere:\n%s", killed.ID, killed.IP, listing)
	}
	// The walk destroyed what it made.
	ls := exec.Command(filepath.Join(bin, "fleetctl"), "list-unit-files", "--no-legend")
	ls.Env = append(os.Environ(), "FLEETCTL_ENDPOINT="+d.st.ConsulHTTPAddr)
	if b, err := ls.CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "" {
		t.Errorf("units left after the walk (%v):\n%s", err, b)
	}
}

// quickstartBlocks is every ```sh block of the README's quickstart section,
// in order.
func quickstartBlocks(t *testing.T, readme string) []string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "## Quickstart")
	if !ok {
		t.Fatal("README has no Quickstart section")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var blocks []string
	for _, part := range strings.Split(section, "```sh\n")[1:] {
		body, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatal("unterminated ```sh block in the quickstart")
		}
		blocks = append(blocks, body)
	}
	if len(blocks) < 5 {
		t.Fatalf("only %d shell blocks in the quickstart", len(blocks))
	}
	return blocks
}
