package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/testcluster"
)

// BenchmarkWait measures what fleetctl start and destroy cost while they
// wait, as they do unless told --no-block: one iteration starts 500 new
// instances of a template in a cluster of 10,000 units on 1,000 machines
// (seedCluster), waits until they run, destroys them and waits until no
// machine reports them, against a real Consul server. The benchmark plays
// the leader and the machines: once the jobs are written it places each
// unit on a machine of its own and reports it running, 50 machines every
// 50 ms, as a cluster's machines report a burst of starts one after
// another; once the jobs are gone it removes the placements and the
// reports alike. Beside the time, it reports the CPU the Consul server
// spent per iteration (consul-cpu-ms/op), and this process's, fleetctl and
// the player together (cpu-ms/op). The no-block run is the same with
// --no-block: what the commands and the player cost without the waits.
//
//	go test -run '^$' -bench '^BenchmarkWait$' -benchtime 5x -count 6 ./cmd/fleetctl/
func BenchmarkWait(b *testing.B) {
	consul := testcluster.StartConsulWith(b, testcluster.ConsulOptions{DataDir: b.TempDir()})
	c := seedCluster(b, consul, 1000, 10)
	client, err := consul.Client()
	if err != nil {
		b.Fatal(err)
	}
	tpl := b.TempDir() + "/bench@.service"
	if err := os.WriteFile(tpl, []byte(benchTemplate), 0o644); err != nil {
		b.Fatal(err)
	}
	endpoint := []string{"--endpoint", consul.URL()}
	if code := run(append(endpoint, "submit", tpl), io.Discard, io.Discard); code != 0 {
		b.Fatalf("submit: exit %d", code)
	}
	var names []string
	for i := range 500 {
		names = append(names, fmt.Sprintf("bench@%d.service", 10000+i))
	}
	// --no-block gives the floor, the same commands and cluster
	// without the waits; a waiting command gives up after a minute rather
	// than hang the benchmark when the player fails.
	for _, mode := range []struct{ name, flag string }{{"no-block", "--no-block"}, {"wait", "--block-attempts=30"}} {
		flag := mode.flag
		b.Run(mode.name, func(b *testing.B) {
			step := func(cmd string, play func(context.Context) error) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				played := make(chan error, 1)
				go func() { played <- play(ctx) }()
				if code := run(append(append(endpoint, cmd, flag), names...), io.Discard, io.Discard); code != 0 {
					b.Fatalf("%s: exit %d", cmd, code)
				}
				if err := <-played; err != nil {
					b.Fatalf("playing the cluster for %s: %v", cmd, err)
				}
			}
			consul0, self0 := testcluster.CPUTimeT(b, consul.PID()), testcluster.CPUTimeT(b, os.Getpid())
			for b.Loop() {
				step("start", func(ctx context.Context) error { return c.playStart(ctx, client, names) })
				step("destroy", func(ctx context.Context) error { return c.playDestroy(ctx, client, names) })
			}
			perOp := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(b.N) }
			b.ReportMetric(perOp(testcluster.CPUTimeT(b, consul.PID())-consul0), "consul-cpu-ms/op")
			b.ReportMetric(perOp(testcluster.CPUTimeT(b, os.Getpid())-self0), "cpu-ms/op")
		})
	}
}

// playStart plays the leader and machines 0 to len(names)-1 for units being
// started: once every job is written it places names[i] on machine i, then
// reports each running from its machine's key (report).
func (c *benchCluster) playStart(ctx context.Context, client *api.Client, names []string) error {
	created, err := jobsWritten(ctx, client, names, len(names))
	if err != nil {
		return err
	}
	var ops api.TxnOps
	for i, n := range names {
		v, _ := json.Marshal(map[string]any{"machine": c.machines[i], "job": created[n]})
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "fleet/placement/" + n, Value: v}})
	}
	if err := applyInChunks(ctx, client, ops); err != nil {
		return err
	}
	return c.report(ctx, client, names, func(states map[string]map[string]string, name string) {
		states[name] = c.state("launched")
	})
}

// playDestroy plays them for units being destroyed: once no job is left
// it removes the placements, then the reports (report).
func (c *benchCluster) playDestroy(ctx context.Context, client *api.Client, names []string) error {
	if _, err := jobsWritten(ctx, client, names, 0); err != nil {
		return err
	}
	var ops api.TxnOps
	for _, n := range names {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: "fleet/placement/" + n}})
	}
	if err := applyInChunks(ctx, client, ops); err != nil {
		return err
	}
	return c.report(ctx, client, names, func(map[string]map[string]string, string) {})
}

// report rewrites the keys of machines 0 to len(names)-1, c.perStep
// every 50 ms: each with what it held when seeded, changed by edit for
// names[i].
func (c *benchCluster) report(ctx context.Context, client *api.Client, names []string, edit func(states map[string]map[string]string, name string)) error {
	for from := 0; from < len(names); from += c.perStep {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		var ops api.TxnOps
		for i := from; i < min(from+c.perStep, len(names)); i++ {
			states := maps.Clone(c.states[i])
			edit(states, names[i])
			v, _ := json.Marshal(states)
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "fleet/states/" + c.machines[i] + "/", Value: v}})
		}
		if err := applyInChunks(ctx, client, ops); err != nil {
			return err
		}
	}
	return nil
}

// jobsWritten waits until want of the named units have a job (all of them,
// or none), and returns each job's CreateIndex.
func jobsWritten(ctx context.Context, client *api.Client, names []string, want int) (map[string]uint64, error) {
	prefix := "fleet/jobs/" + commonPrefix(names)
	wanted := map[string]bool{}
	for _, n := range names {
		wanted[n] = true
	}
	var index uint64
	for {
		pairs, meta, err := client.KV().List(prefix, (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx))
		if err != nil {
			return nil, err
		}
		created := map[string]uint64{}
		for _, p := range pairs {
			if n := strings.TrimPrefix(p.Key, "fleet/jobs/"); wanted[n] {
				created[n] = p.CreateIndex
			}
		}
		if len(created) == want {
			return created, nil
		}
		index = meta.LastIndex
	}
}

// commonPrefix is the longest prefix all names share.
func commonPrefix(names []string) string {
	p := names[0]
	for _, n := range names[1:] {
		for !strings.HasPrefix(n, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}

// applyInChunks applies ops in transactions of at most 64.
func applyInChunks(ctx context.Context, client *api.Client, ops api.TxnOps) error {
	for len(ops) > 0 {
		n := min(len(ops), 64)
		ok, resp, _, err := client.Txn().Txn(ops[:n], (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("transaction rolled back: %v", resp.Errors)
		}
		ops = ops[n:]
	}
	return nil
}
