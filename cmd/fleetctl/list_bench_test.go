package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/testcluster"
)

// BenchmarkList times fleetctl's list commands, in process, against a real
// Consul holding what 10,000 launched units on 1,000 machines leave there
// (FLEET_BENCH_LIST_UNITS=100000: 100,000 units on 5,000 machines):
// instances of one template (one body), each with its job, placement,
// schedule entry and state, and the machine records. The Consul is a
// single-node server as clusters run it (consul=server), and one in dev
// mode as the tests and fleetd dev run it (consul=dev), which pretty-prints
// every answer.
// The goal is 300 ms at this size; the scale harness measures the same
// commands with its cluster still busy (BENCHMARKS.md). Last, it times
// fleetctl start --no-block of 500 new instances in that cluster.
//
//	go test -run '^$' -bench '^BenchmarkList$' -count 6 ./cmd/fleetctl/
//	FLEET_BENCH_LIST_UNITS=100000 go test -run '^$' -bench '^BenchmarkList$/consul=server/list' -count 6 ./cmd/fleetctl/
func BenchmarkList(b *testing.B) {
	for _, mode := range []string{"server", "dev"} {
		b.Run("consul="+mode, func(b *testing.B) {
			opts := testcluster.ConsulOptions{}
			if mode == "server" {
				opts.DataDir = b.TempDir()
			}
			benchmarkList(b, testcluster.StartConsulWith(b, opts))
		})
	}
}

func benchmarkList(b *testing.B, consul *testcluster.Consul) {
	units, machines, perMachine := 10000, 1000, 10
	if v := os.Getenv("FLEET_BENCH_LIST_UNITS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 20 || n%20 != 0 {
			b.Fatalf("FLEET_BENCH_LIST_UNITS=%q: want a number of units, a multiple of 20", v)
		}
		units, machines, perMachine = n, n/20, 20
	}
	seedCluster(b, consul, machines, perMachine)
	// Output goes to a file, /dev/null, so that each write is a system call
	// as to a terminal or a pipe.
	out, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	// Every unit is listed once, from its machine's key.
	var listed bytes.Buffer
	if code := run([]string{"--endpoint", consul.URL(), "list-units", "--no-legend"}, &listed, io.Discard); code != 0 || strings.Count(listed.String(), "\n") != units {
		b.Fatalf("list-units: exit %d, %d lines for %d units", code, strings.Count(listed.String(), "\n"), units)
	}
	for _, cmd := range []string{"list-units", "list-unit-files"} {
		b.Run(fmt.Sprintf("%s/units=%d", cmd, units), func(b *testing.B) {
			for b.Loop() {
				if code := run([]string{"--endpoint", consul.URL(), cmd}, out, io.Discard); code != 0 {
					b.Fatalf("%s: exit %d", cmd, code)
				}
			}
		})
	}
	// Starting 500 new instances of a template: fleetctl reads what it
	// needs of those 500 units, whatever the cluster holds.
	tpl := b.TempDir() + "/bench@.service"
	if err := os.WriteFile(tpl, []byte(benchTemplate), 0o644); err != nil {
		b.Fatal(err)
	}
	if code := run([]string{"--endpoint", consul.URL(), "submit", tpl}, out, io.Discard); code != 0 {
		b.Fatalf("submit: exit %d", code)
	}
	var names []string
	for i := range 500 {
		names = append(names, fmt.Sprintf("bench@%d.service", units+i))
	}
	b.Run(fmt.Sprintf("start-500/units=%d", units), func(b *testing.B) {
		for b.Loop() {
			if code := run(append([]string{"--endpoint", consul.URL(), "start", "--no-block"}, names...), out, io.Discard); code != 0 {
				b.Fatalf("start: exit %d", code)
			}
			// Destroyed again, untimed, so that each start finds as many.
			b.StopTimer()
			if code := run(append([]string{"--endpoint", consul.URL(), "destroy"}, names...), out, io.Discard); code != 0 {
				b.Fatalf("destroy: exit %d", code)
			}
			b.StartTimer()
		}
	})
}

// benchCluster is what seedCluster wrote: the body's hash, and each
// machine's ID and states key as its agent writes it, by machine. A
// benchmark playing its machines has perStep of them report at a time.
type benchCluster struct {
	hash     string
	machines []string
	states   []map[string]map[string]string
	perStep  int
}

// seedCluster writes into consul what machines*perMachine launched units
// leave there: instances of one template (one body) named bench@N.service
// from 0, each with its job, placement, schedule entry and state in its
// machine's key, and the machine records, stamped with the key schema as a
// running cluster's leader stamps it.
func seedCluster(b testing.TB, consul *testcluster.Consul, machines, perMachine int) *benchCluster {
	client, err := consul.Client()
	if err != nil {
		b.Fatal(err)
	}
	var ops api.TxnOps
	put := func(key string, v any) {
		val, _ := json.Marshal(v)
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key, Value: val}})
	}
	flush := func() {
		if err := applyInChunks(context.Background(), client, ops); err != nil {
			b.Fatal(err)
		}
		ops = nil
	}
	body, err := unitfile.Parse(benchTemplate)
	if err != nil {
		b.Fatal(err)
	}
	c := &benchCluster{hash: body.Hash().String(), perStep: 50}
	put("fleet/schema", map[string]int{"version": registry.SchemaVersion})
	ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "fleet/units/" + c.hash, Value: []byte(body.String())}})
	for m := range machines {
		id := fmt.Sprintf("%032x", m+1)
		put("fleet/machines/"+id, map[string]any{"id": id, "ip": fmt.Sprintf("127.1.%d.%d", m/250, m%250+1), "metadata": map[string]string{"hostname": fmt.Sprintf("sim-%d", m+1)}})
		states := map[string]map[string]string{}
		for u := range perMachine {
			name := fmt.Sprintf("bench@%d.service", m*perMachine+u)
			put("fleet/jobs/"+name, map[string]string{"name": name, "hash": c.hash, "desired": "launched"})
			put("fleet/schedule/"+id+"/"+name, map[string]string{"hash": c.hash, "desired": "launched"})
			states[name] = c.state("launched")
		}
		put("fleet/states/"+id+"/", states)
		c.machines, c.states = append(c.machines, id), append(c.states, states)
	}
	flush()
	// Each placement names its job's CreateIndex, known once it is written.
	jobs, _, err := client.KV().List("fleet/jobs/", nil)
	if err != nil || len(jobs) != machines*perMachine {
		b.Fatalf("%d jobs written: %v", len(jobs), err)
	}
	for i, p := range jobs {
		put("fleet/placement/"+strings.TrimPrefix(p.Key, "fleet/jobs/"), map[string]any{"machine": fmt.Sprintf("%032x", i/perMachine+1), "job": p.CreateIndex})
	}
	flush()
	return c
}

const benchTemplate = "[Unit]\nDescription=bench %i\n\n[Service]\nExecStart=/bin/sleep infinity\n"

// state is what an agent reports of an instance of the template that
// reached desired (launched: running; loaded: stopped).
func (c *benchCluster) state(desired string) map[string]string {
	if desired == "launched" {
		return map[string]string{"hash": c.hash, "state": desired, "load": "loaded", "active": "active", "sub": "running"}
	}
	return map[string]string{"hash": c.hash, "state": desired, "load": "loaded", "active": "inactive", "sub": "dead"}
}
