package testcluster

import (
	"context"
	"os"
	"testing"

	"github.com/wasmfleet/fleet/internal/devcluster"
)

// RequireBoxes skips the test when this host cannot run boxes (not root, or
// no systemd-nspawn). When the environment variable CI is set it fails the
// test instead: CI must run the box tests, never skip them quietly.
func RequireBoxes(t testing.TB) {
	t.Helper()
	err := devcluster.BoxSupport()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%v (CI is set, so box tests fail rather than skip)", err)
	}
	t.Skipf("skipping systemd box test: %v", err)
}

// StartBoxT starts a box (skipping or failing as RequireBoxes does when boxes
// cannot run here) and kills it when the test ends.
func StartBoxT(t testing.TB, opts BoxOptions) *Box {
	t.Helper()
	RequireBoxes(t)
	b, err := devcluster.StartBox(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Kill(); err != nil {
			t.Error(err)
		}
	})
	return b
}
