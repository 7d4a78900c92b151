package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestWaitReadsItsUnits: a start that waits reads the units it waits for,
// where they are placed and what those machines report, and a destroy that
// waits reads every machine's reports: neither lists the whole cluster. Each still returns only once
// every unit got there, and says so of each. The test plays the leader and
// the machines (playStart, playDestroy) of a cluster of 200 units on 20
// machines; its 10 units are reported two machines at a time.
func TestWaitReadsItsUnits(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	c := seedCluster(t, consul, 20, 10)
	c.perStep = 2
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ep := consul.URL()
	mustCtl(t, ep, "submit", testcluster.WriteUnit(t, t.TempDir(), "bench@.service", benchTemplate))
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("bench@%d.service", 200+i))
	}
	// reported counts the units the machines' keys report now.
	reported := func() int {
		n := 0
		for i := range names {
			p, _, err := client.KV().Get("fleet/states/"+c.machines[i]+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(p.Value), `"`+names[i]+`"`) {
				n++
			}
		}
		return n
	}
	wait := func(cmd string, play func(context.Context) error, lists ...string) string {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		played := make(chan error, 1)
		go func() { played <- play(ctx) }()
		out, errOut, code := ctl(t, ep, append([]string{"--debug", cmd, "--block-attempts=15"}, names...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", cmd, code, out, errOut)
		}
		if n := reported(); cmd == "start" && n != len(names) || cmd == "destroy" && n != 0 {
			t.Errorf("%s returned with %d of %d units reported", cmd, n, len(names))
		}
		if err := <-played; err != nil {
			t.Fatal(err)
		}
		// Reads of single keys and transactions are the command's own;
		// a list (recurse) is what a wait could read too much of.
		for _, line := range strings.Split(errOut, "\n") {
			req, ok := strings.CutPrefix(line, "DEBUG consul GET ")
			if !ok || !strings.Contains(req, "recurse") {
				continue
			}
			if !slices.ContainsFunc(lists, func(l string) bool { return strings.HasPrefix(req, l) }) {
				t.Errorf("%s read more than it waits for: %s", cmd, req)
			}
		}
		return out
	}

	out := wait("start", func(ctx context.Context) error { return c.playStart(ctx, client, names) })
	for i, n := range names {
		if want := fmt.Sprintf("Unit %s launched on 00000000.../127.1.0.%d\n", n, i+1); !strings.Contains(out, want) {
			t.Errorf("start's output lacks %q:\n%s", want, out)
		}
	}
	out = wait("destroy", func(ctx context.Context) error { return c.playDestroy(ctx, client, names) }, "/v1/kv/fleet/states/?")
	if n := strings.Count(out, "Destroyed bench@"); n != len(names) {
		t.Errorf("destroy said %d units destroyed, want %d:\n%s", n, len(names), out)
	}
}
