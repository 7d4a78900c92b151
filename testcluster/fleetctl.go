package testcluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HelloService is a unit body tests submit: it prints "Hello World" five
// times a second until it is stopped, so its log shows it runs
// (Machine.CheckRunning).
const HelloService = `[Unit]
Description=MyApp

[Service]
ExecStart=/bin/sh -c "trap 'exit 0' INT TERM; while true; do echo Hello World; sleep 0.2; done"
`

// WriteUnit writes a unit file called name with body into dir and returns
// its path, for fleetctl to submit.
func WriteUnit(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Rows returns the rows of a fleetctl list table, each split into its
// fields, without the header line.
func Rows(out string) [][]string {
	var rs [][]string
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if i == 0 || line == "" {
			continue
		}
		rs = append(rs, strings.Fields(line))
	}
	return rs
}

// fleetctlLimit is how long Fleetctl lets one command run: far more than a
// blocking start of a few units on a busy machine takes.
const fleetctlLimit = 5 * time.Minute

// Fleetctl runs the fleetctl binary Main built against the Consul at
// endpoint, as an operator would, and returns what it printed and its exit
// code. Tests of fleetctl's own package run its code in process instead.
func Fleetctl(t testing.TB, endpoint string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return FleetctlAt(t, Binary(t, "fleetctl"), endpoint, args...)
}

// FleetctlAt is Fleetctl with the fleetctl binary at path, such as an
// earlier release's (BinariesAt).
func FleetctlAt(t testing.TB, path, endpoint string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fleetctlLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"--endpoint", endpoint}, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	var exit *exec.ExitError
	if err := cmd.Run(); err != nil && (!errors.As(err, &exit) || ctx.Err() != nil) {
		t.Fatalf("run %s %v: %v\nstdout: %s\nstderr: %s", path, args, err, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// MustFleetctl is Fleetctl for a command that must succeed: it fails the
// test unless fleetctl exits 0, and returns its standard output.
func MustFleetctl(t testing.TB, endpoint string, args ...string) string {
	t.Helper()
	return MustFleetctlAt(t, Binary(t, "fleetctl"), endpoint, args...)
}

// MustFleetctlAt is MustFleetctl with the fleetctl binary at path.
func MustFleetctlAt(t testing.TB, path, endpoint string, args ...string) string {
	t.Helper()
	out, errOut, code := FleetctlAt(t, path, endpoint, args...)
	if code != 0 {
		t.Fatalf("%s %v: exit %d\nstdout: %s\nstderr: %s", path, args, code, out, errOut)
	}
	return out
}
