package agent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// BenchmarkPublish: 20 machines each publish the states of 20 units of
// one template as a leader's passes give them, in two batches of 10, the
// first bringing the template's service to the machine: the states, the
// service instance and the check that lists its passing units in Consul's
// catalog, against one real Consul. It reports time, the Consul server's
// CPU and the machines' (this process's: what their fleetd pays to
// report) per 400 units; removing them (and the instances) between
// iterations is not counted.
//
//	go test -run '^$' -bench Publish -count 6 ./agent/
func BenchmarkPublish(b *testing.B) {
	const machines, batches, batch = 20, 2, 10
	ctx := context.Background()
	consul := testcluster.StartConsulT(b)
	client, err := registry.NewClient(consul.URL(), "")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := client.KV().Put(&api.KVPair{Key: "fleet/schema", Value: fmt.Appendf(nil, `{"version":%d}`, registry.SchemaVersion)}, nil); err != nil {
		b.Fatal(err)
	}
	reg := registry.New(client, "")
	log := slog.New(slog.DiscardHandler)
	pubs := make([]*publisher, machines)
	for i := range pubs {
		machine := registry.Machine{ID: fmt.Sprintf("%032x", i+1), IP: fmt.Sprintf("127.0.3.%d", i+1)}
		hb := NewHeartbeat(client, machine.ID, machine.IP, nil, 10*time.Minute, log)
		if err := hb.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { hb.Stop(context.Background()) })
		p := newPublisher(Config{Registry: reg, Machine: machine, Heartbeat: hb, Log: log})
		p.node = p.catalog.nodeOps(&machine)
		p.readLayout(ctx)
		if !p.byMachine {
			b.Fatal("the stamped schema's machine keys are not followed")
		}
		pubs[i] = p
	}
	sync := func(p *publisher, states map[string]registry.UnitState) {
		if !p.sync(ctx, maps.Clone(states)) {
			b.Fatal("a write failed")
		}
	}
	var used, own time.Duration
	for b.Loop() {
		c0, o0 := testcluster.CPUTimeT(b, consul.PID()), testcluster.CPUTimeT(b, os.Getpid())
		for i, p := range pubs {
			states := map[string]registry.UnitState{}
			for k := range batches * batch {
				name := fmt.Sprintf("bench@%d.service", i*batches*batch+k)
				states[name] = registry.UnitState{Name: name, Machine: p.cfg.Machine.ID, Hash: "3f2a", State: registry.Launched, Load: "loaded", Active: "active", Sub: "running"}
				if (k+1)%batch == 0 {
					sync(p, states)
				}
			}
		}
		used += testcluster.CPUTimeT(b, consul.PID()) - c0
		own += testcluster.CPUTimeT(b, os.Getpid()) - o0
		b.StopTimer()
		for _, p := range pubs {
			sync(p, nil)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(used.Microseconds())/1000/float64(b.N), "consul-cpu-ms/op")
	b.ReportMetric(float64(own.Microseconds())/1000/float64(b.N), "machines-cpu-ms/op")
}
