package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
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
	// The leader removes the change log's entries once it has read them,
	// and keeps the log's directory key.
	client, err := c.Consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		keys, _, err := client.KV().Keys("fleet/changes/", "", nil)
		if err == nil && !slices.Equal(keys, []string{"fleet/changes/"}) {
			err = fmt.Errorf("the change log holds %q, want only its directory key", keys)
		}
		return err
	})
}

// TestStartManyReadsOnce: a command given many units reads the cluster's
// default policy and schema with the units themselves, in the jobs'
// transactions, and still honours what they hold: under a custom default
// policy instances with an option only that policy reads are started;
// under the built-in one they are refused, and nothing is written.
func TestStartManyReadsOnce(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ep := consul.URL()
	// The leader stamps a cluster's schema; no fleetd runs here.
	for k, v := range map[string]string{"fleet/policy-default": "zones", "fleet/schema": fmt.Sprintf(`{"version":%d}`, registry.SchemaVersion)} {
		if _, err := client.KV().Put(&api.KVPair{Key: k, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	mustCtl(t, ep, "submit", testcluster.WriteUnit(t, dir, "zoned@.service", "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nZone=eu\n"))
	instances := func(from int) []string {
		var names []string
		for i := from; i < from+20; i++ {
			names = append(names, fmt.Sprintf("zoned@%d", i))
		}
		return names
	}
	out, errOut, code := ctl(t, ep, append([]string{"--debug", "start", "--no-block"}, instances(1)...)...)
	if n := strings.Count(out, "Triggered unit"); code != 0 || n != 20 {
		t.Fatalf("start under a custom default policy: exit %d, %d triggered\n%s%s", code, n, out, errOut)
	}
	for _, line := range strings.Split(errOut, "\n") {
		if strings.HasPrefix(line, "DEBUG consul") && !strings.HasPrefix(line, "DEBUG consul PUT /v1/txn") {
			t.Errorf("request beside the transactions: %s", line)
		}
	}
	if strings.Count(errOut, "DEBUG consul PUT /v1/txn") != 3 {
		t.Errorf("want three transactions (the jobs with the default policy and schema, the template's body, the writes):\n%s", errOut)
	}

	if _, err := client.KV().Delete("fleet/policy-default", nil); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = ctl(t, ep, append([]string{"start", "--no-block"}, instances(21)...)...)
	if code == 0 || !strings.Contains(errOut, `unknown [X-Fleet] option "Zone"`) {
		t.Fatalf("start under the built-in policy: exit %d, want the unknown option refused\n%s%s", code, out, errOut)
	}
	files := mustCtl(t, ep, "list-unit-files", "--no-legend", "--fields", "unit")
	if n := strings.Count(files, "zoned@"); n != 21 {
		t.Errorf("%d units listed, want the template and the 20 started first:\n%s", n, files)
	}
}
