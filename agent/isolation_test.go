package agent

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

func TestIsolationNeedsChecksInARow(t *testing.T) {
	// Each step is one check (true: some member answered) and the state
	// reported after it, "" when nothing is reported.
	steps := []struct {
		reached bool
		report  string
	}{
		{true, ""},
		{false, ""}, // one lost check is not isolation
		{true, ""},
		{false, ""},
		{false, "cut off"},
		{false, ""}, // reported once
		{true, "back"},
		{true, ""},
		{false, ""},
		{false, "cut off"},
	}
	var iso isolation
	for i, s := range steps {
		got := ""
		if iso.observe(s.reached) {
			got = "back"
			if iso.isolated {
				got = "cut off"
			}
		}
		if got != s.report {
			t.Fatalf("check %d (reached %v): reported %q, want %q", i+1, s.reached, got, s.report)
		}
	}
}

func TestAnsweringCountsRefusals(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := l.Addr().String()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := closed.Addr().String()
	closed.Close()
	defer l.Close()
	ctx := context.Background()
	// An open port and a refusing one both prove the machine is reachable;
	// 127.0.0.1 as the source works, and an address that is not this host's
	// falls back to the kernel's choice.
	for _, src := range []string{"127.0.0.1", "192.0.2.1", ""} {
		if !answering(ctx, src, open) {
			t.Errorf("from %q: a listening port did not answer", src)
		}
		if !answering(ctx, src, refusing) {
			t.Errorf("from %q: a refused connection did not count as an answer", src)
		}
	}
	if anyAnswers(ctx, "127.0.0.1", nil, time.Second) {
		t.Error("no members answered, yet anyAnswers said yes")
	}
}

// TestGossipView reads the probe timing from a real Consul agent (a dev
// server: gossip probes every 100 ms, time out after 100 ms) and bounds it.
func TestGossipView(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	v, err := readGossipView(client)
	if err != nil {
		t.Fatal(err)
	}
	if v.check != 100*time.Millisecond || v.probe != 100*time.Millisecond {
		t.Errorf("check every %s, probes time out after %s; want 100ms and 100ms (dev mode's gossip)", v.check, v.probe)
	}
	if len(v.members) != 0 {
		t.Errorf("a lone server has no one to probe, got %v", v.members)
	}
	for _, c := range []struct {
		in   any
		want time.Duration
	}{{"1s", maxCheck}, {"200ms", 200 * time.Millisecond}, {float64(20 * time.Millisecond), minCheck}, {nil, maxCheck}, {"junk", maxCheck}} {
		if got := clamp(duration(c.in), minCheck, maxCheck); got != c.want {
			t.Errorf("probe interval %v: check every %s, want %s", c.in, got, c.want)
		}
	}
}
