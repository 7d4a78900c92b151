package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestStartMany: with many units fleetctl reads the cluster once and writes
// new units in shared transactions; the result is what one unit at a time
// gives: instances from the template in the registry, an existing unit
// moved to the new desired state, a local file submitted.
func TestStartMany(t *testing.T) {
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	dir := t.TempDir()
	mustCtl(t, ep, "submit", testcluster.WriteUnit(t, dir, "app@.service", testcluster.HelloService))
	mustCtl(t, ep, "load", "--no-block", "app@3")
	args := []string{"start", "--no-block", testcluster.WriteUnit(t, dir, "solo.service", testcluster.HelloService)}
	for i := 1; i <= 30; i++ {
		args = append(args, fmt.Sprintf("app@%d", i))
	}
	out := mustCtl(t, ep, args...)
	if n := strings.Count(out, "Triggered unit"); n != 31 {
		t.Fatalf("%d units triggered, want 31:\n%s", n, out)
	}
	testcluster.Eventually(t, 60*time.Second, func() error {
		files := mustCtl(t, ep, "list-unit-files", "--no-legend", "--fields", "unit,dstate,state")
		if got := strings.Count(files, "launched\tlaunched"); got != 31 {
			return fmt.Errorf("%d of 31 units launched:\n%s", got, files)
		}
		return nil
	})
}
