package execdriver

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

func newDriver(t *testing.T) (*Driver, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := New(filepath.Join(dir, "units"), filepath.Join(dir, "logs"), "m1", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return d, dir
}

func load(t *testing.T, d *Driver, name, body string) {
	t.Helper()
	f, err := unitfile.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Load(context.Background(), name, f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Unload(context.Background(), name) })
}

func waitState(t *testing.T, d *Driver, name string, want agent.UnitState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.State(name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %+v, want %+v", name, d.State(name), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLifecycle(t *testing.T) {
	d, dir := newDriver(t)
	ctx := context.Background()
	load(t, d, "hello@x.service", "[Service]\nExecStartPre=-/bin/false\nExecStart=/bin/sh -c \"echo start %i; while true; do sleep 0.1; done\"\nExecStop=/bin/sh -c 'echo stopping $MAINPID'\n")
	if _, err := os.Stat(filepath.Join(dir, "units", "hello@x.service")); err != nil {
		t.Fatalf("unit file not written: %v", err)
	}
	waitState(t, d, "hello@x.service", agent.UnitState{Load: "loaded", Active: "inactive", Sub: "dead"})
	if err := d.Start(ctx, "hello@x.service"); err != nil {
		t.Fatal(err)
	}
	waitState(t, d, "hello@x.service", agent.UnitState{Load: "loaded", Active: "active", Sub: "running"})
	logPath := filepath.Join(dir, "logs", "hello@x.service.log")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "start x") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unit never printed its expanded start line")
		}
	}
	if err := d.Stop(ctx, "hello@x.service"); err != nil {
		t.Fatal(err)
	}
	waitState(t, d, "hello@x.service", agent.UnitState{Load: "loaded", Active: "inactive", Sub: "dead"})
	logs, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logs), "stopping ") {
		t.Errorf("log lacks the ExecStop output:\n%s", logs)
	}
	if err := d.Unload(ctx, "hello@x.service"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "units", "hello@x.service")); !os.IsNotExist(err) {
		t.Errorf("unit file still there after unload: %v", err)
	}
	if got := d.State("hello@x.service").Load; got != "not-found" {
		t.Errorf("after unload load state = %q", got)
	}
}

func TestFailureAndRestart(t *testing.T) {
	d, dir := newDriver(t)
	ctx := context.Background()
	load(t, d, "fail.service", "[Service]\nExecStart=/bin/sh -c 'exit 3'\n")
	if err := d.Start(ctx, "fail.service"); err != nil {
		t.Fatal(err)
	}
	waitState(t, d, "fail.service", agent.UnitState{Load: "loaded", Active: "failed", Sub: "failed"})

	counter := filepath.Join(dir, "count")
	load(t, d, "flappy.service", "[Service]\nExecStart=/bin/sh -c 'echo x >> "+counter+"; exit 1'\nRestart=on-failure\nRestartSec=50ms\n")
	if err := d.Start(ctx, "flappy.service"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(counter)
		if strings.Count(string(b), "x") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Restart=on-failure did not restart: ran %d times", strings.Count(string(b), "x"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.Stop(ctx, "flappy.service"); err != nil {
		t.Fatal(err)
	}
}

func TestStartWithoutExecStart(t *testing.T) {
	d, _ := newDriver(t)
	load(t, d, "web.socket", "[Socket]\nListenStream=8080\n")
	err := d.Start(context.Background(), "web.socket")
	if err == nil || !strings.Contains(err.Error(), "ExecStart") {
		t.Fatalf("Start = %v, want an error naming ExecStart", err)
	}
}
