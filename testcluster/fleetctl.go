package testcluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
