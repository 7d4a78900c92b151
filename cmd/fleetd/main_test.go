package main

import (
	"bytes"
	"testing"

	"github.com/wasmfleet/fleet/internal/version"
)

// TestVersion: fleetd --version prints one line, the version with its
// commit and Go release, and starts nothing.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"--version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := "fleetd version " + version.String() + "\n"; out.String() != want {
		t.Fatalf("fleetd --version printed %q, want %q", out.String(), want)
	}
}
