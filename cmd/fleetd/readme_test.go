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
	blocks := docBlocks(t, string(readme), "## Quickstart", 5)
	d := startDev(t, "--machines", "3")
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
	var body strings.Builder
	body.WriteString("export PATH=" + helper + ":$PATH\n")
	replaced := 0
	for _, b := range blocks {
		if strings.Contains(b, "kill -9 13000") {
			b = strings.ReplaceAll(b, "kill -9 13000", "kill -9 $(machine-pid myapp.service)")
			replaced++
		}
		body.WriteString(b)
	}
	if replaced != 1 {
		t.Fatalf("the quickstart should kill one machine by PID (kill -9 13000), found %d", replaced)
	}
	log, _, err := d.walk(body.String(), t.TempDir(), 4*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
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
	if units := testcluster.MustFleetctl(t, d.st.ConsulHTTPAddr, "list-unit-files", "--no-legend"); strings.TrimSpace(units) != "" {
		t.Errorf("units left after the walk:\n%s", units)
	}
}

// docBlocks is every ```sh block of a document's section (from the heading
// that starts with heading to the next "## "), in order; fewer than min is
// a mistake.
func docBlocks(t *testing.T, doc, heading string, min int) []string {
	t.Helper()
	_, section, ok := strings.Cut(doc, "\n"+heading)
	if !ok {
		t.Fatalf("no section %q", heading)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var blocks []string
	for _, part := range strings.Split(section, "```sh\n")[1:] {
		body, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatalf("unterminated ```sh block in %q", heading)
		}
		blocks = append(blocks, body)
	}
	if len(blocks) < min {
		t.Fatalf("only %d shell blocks in %q", len(blocks), heading)
	}
	return blocks
}

// walk pastes body into one bash in dir, as a reader would into a shell
// where they pasted the export line the banner prints: it stops at the
// first command that fails (the error then holds the output), and is
// stopped after limit. fleetctl is the one of this build; env is added to
// the shell's environment. It returns bash's output and how long it took.
func (d *devCluster) walk(body, dir string, limit time.Duration, env []string) (string, time.Duration, error) {
	t := d.t
	t.Helper()
	export := regexp.MustCompile(`(?m)^\s*(export PATH=.*)$`).FindStringSubmatch(d.out.String())
	if export == nil {
		t.Fatalf("the banner has no export line:\n%s", d.out.String())
	}
	bin := filepath.Dir(testcluster.Binary(t, "fleetctl"))
	cmd := exec.Command("bash")
	cmd.Stdin = strings.NewReader("set -e -o pipefail -x\n" + export[1] + "\nexport PATH=" + bin + ":$PATH\n" + body)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out []byte
	var err error
	done := make(chan struct{})
	start := time.Now()
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		return string(out), time.Since(start), fmt.Errorf("the walk did not finish in %s:\n%s", limit, out)
	}
	took := time.Since(start)
	t.Logf("the walk (%s):\n%s", took.Round(time.Second), out)
	if err != nil {
		return string(out), took, fmt.Errorf("the walk failed: %v\n%s", err, out)
	}
	return string(out), took, nil
}
