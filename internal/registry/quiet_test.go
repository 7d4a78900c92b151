package registry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestQuiet: Quiet tells that units stopped being written, whatever else
// is written meanwhile (machines' states), and that they did not while
// fleetctl keeps writing them. The change log needs its directory key for
// that: without it, an empty log has no index of its own and Quiet cannot
// tell, and waits what it is told to wait then (the first step shows that,
// so the test can fail); the key outlives the removal of the log's
// entries.
func TestQuiet(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := registry.New(client, "")
	session := lead(t, ctx, client, reg)
	view, err := reg.View(ctx, "placement/", "schedule/")
	if err != nil {
		t.Fatal(err)
	}
	follower := view.Follow(ctx, []string{"units/", "jobs/"}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// A machine reports states all along: writes that are not units'.
	stop := keepWriting(t, func(i int) error {
		_, err := client.KV().Put(&api.KVPair{Key: fmt.Sprintf("fleet/states/m1/s%d.service", i%10), Value: []byte("{}")}, nil)
		return err
	})
	defer stop()
	// Blind, it waits what it is told to wait then, not its most (an hour,
	// beyond the test's deadline).
	blindCtx, cancelBlind := context.WithTimeout(ctx, 30*time.Second)
	defer cancelBlind()
	if follower.Quiet(blindCtx, 200*time.Millisecond, time.Hour, 100*time.Millisecond) {
		t.Fatal("Quiet told of quiet from a log that never held a key, which has no index of its own to tell by")
	}
	if blindCtx.Err() != nil {
		t.Fatal("Quiet, unable to tell, waited past its blind wait")
	}
	if err := reg.KeepChangesDir(ctx); err != nil {
		t.Fatal(err)
	}
	if !follower.Quiet(ctx, 200*time.Millisecond, time.Minute, time.Minute) {
		t.Fatal("no unit written, yet Quiet waited its most")
	}
	// fleetctl writes units without a pause: never quiet.
	tpl := mustParse(t, "[Service]\nExecStart=/bin/sleep 1000\n")
	stopUnits := keepWriting(t, func(i int) error {
		return reg.CreateJob(ctx, fmt.Sprintf("web@%d.service", i), tpl, registry.Loaded)
	})
	quiet := follower.Quiet(ctx, 3*time.Second, 4*time.Second, 4*time.Second)
	stopUnits()
	if quiet {
		t.Fatal("Quiet told of quiet while units were being written")
	}
	// The leader reads and removes the log's entries: the directory key
	// stays, and Quiet still tells.
	readUntil(t, ctx, view, follower, "the units written", func(s *registry.Snapshot) bool { return len(s.Jobs) > 0 })
	if err := follower.Forget(ctx, session); err != nil {
		t.Fatal(err)
	}
	if keys := logKeys(t, client); !slices.Equal(keys, []string{"fleet/changes/"}) {
		t.Fatalf("the log after Forget: %q, want only its directory key", keys)
	}
	if !follower.Quiet(ctx, 200*time.Millisecond, time.Minute, time.Minute) {
		t.Fatal("no unit written since the log was emptied, yet Quiet waited its most")
	}
}

// keepWriting calls write with 0, 1, 2, ... in a goroutine until the
// returned function is called, which waits for it to stop.
func keepWriting(t *testing.T, write func(i int) error) func() {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if err := write(i); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}
