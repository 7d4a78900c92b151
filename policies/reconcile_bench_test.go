package policies

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/leader"
	defaultpolicy "github.com/wasmfleet/fleet/plugins/default"
	"github.com/wasmfleet/fleet/plugins/default/policy"
	"github.com/wasmfleet/fleet/sdk/native"
)

// startedAtOnce is a burst of starts: machines live machines (four regions,
// two disk kinds) and units units just started, none placed yet; every
// tenth unit asks for a region.
func startedAtOnce(tb testing.TB, machines, units int) *registry.Snapshot {
	tb.Helper()
	s := &registry.Snapshot{Jobs: map[string]*registry.Job{}, Machines: map[string]*registry.Machine{},
		DefaultPolicy: registry.BuiltinPolicy}
	regions, disks := []string{"east", "west", "north", "south"}, []string{"ssd", "hdd"}
	for i := range machines {
		id := fmt.Sprintf("%032x", i*7919)
		s.Machines[id] = &registry.Machine{ID: id, IP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
			Metadata: map[string]string{"region": regions[i%4], "disk": disks[i%2]}}
	}
	plain, err := unitfile.Parse("[Service]\nExecStart=/bin/true\n")
	if err != nil {
		tb.Fatal(err)
	}
	east, err := unitfile.Parse("[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=region=east\n")
	if err != nil {
		tb.Fatal(err)
	}
	for u := range units {
		f := plain
		if u%10 == 0 {
			f = east
		}
		name := fmt.Sprintf("web@%05d.service", u)
		s.Jobs[name] = &registry.Job{Name: name, Desired: registry.Launched, Unit: f, Hash: f.Hash()}
	}
	return s
}

// closePolicy releases p's instances and compiled module.
func closePolicy(p *Policy) {
	ctx := context.Background()
	for {
		select {
		case i := <-p.pool:
			i.close(ctx)
		default:
			if p.compiled != nil {
				_ = p.compiled.Close(ctx)
			}
			return
		}
	}
}

// BenchmarkReconcile is one leader pass (Reconcile) that places
// units units started at once over machines machines with the default
// policy, in WebAssembly as fleetd runs it and natively (fleetd
// --default-policy-native, the baseline). Each pass starts with a policy
// loaded but told nothing yet, as on the first pass after the units were
// submitted to a new leader. A pass is long: run it a fixed number of
// times.
//
//	go test -run '^$' -bench Reconcile -benchtime 1x -count 6 ./policies/ | tee reconcile.txt && benchstat reconcile.txt
func BenchmarkReconcile(b *testing.B) {
	ctx := context.Background()
	h := newHost(b, Config{})
	if _, err := h.Load(ctx, "warm", defaultpolicy.Wasm, true); err != nil { // fills the compilation cache
		b.Fatal(err)
	}
	for _, size := range []struct{ machines, units int }{{1000, 1000}, {1000, 10000}} {
		s := startedAtOnce(b, size.machines, size.units)
		for _, impl := range []string{"wasm", "native"} {
			b.Run(fmt.Sprintf("impl=%s/machines=%d/units=%d", impl, size.machines, size.units), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					var p *Policy
					if impl == "native" {
						p = h.LoadNative(registry.BuiltinPolicy, func() Runner { return native.NewRunner(policy.Place) })
					} else {
						var err error
						if p, err = h.Load(ctx, registry.BuiltinPolicy, defaultpolicy.Wasm, true); err != nil {
							b.Fatal(err)
						}
					}
					placer := &Placer{Builtin: func(context.Context) (*Policy, error) { return p, nil }}
					b.StartTimer()
					plan := leader.Reconcile(context.Background(), s, placer)
					b.StopTimer()
					if len(plan.Actions) != size.units || len(plan.Unplaced) != 0 {
						b.Fatalf("placed %d of %d units; unplaced: %v", len(plan.Actions), size.units, plan.Unplaced)
					}
					closePolicy(p)
					b.StartTimer()
				}
				b.ReportMetric(float64(size.units*b.N)/b.Elapsed().Seconds(), "placements/s")
			})
		}
	}
}

// BenchmarkReconcileDense is a leader pass over a cluster where every unit
// is placed already and machines run many units each: the pass checks the
// rules again where each unit runs (fleet's Conflicts, Replaces, MachineOf
// between the units of a machine) and writes nothing.
//
//	go test -run '^$' -bench ReconcileDense -count 6 ./policies/
func BenchmarkReconcileDense(b *testing.B) {
	h := newHost(b, Config{})
	p := h.LoadNative(registry.BuiltinPolicy, func() Runner { return native.NewRunner(policy.Place) })
	placer := &Placer{Builtin: func(context.Context) (*Policy, error) { return p, nil }}
	for _, perMachine := range []int{300, 3000} {
		const machines = 10
		s := startedAtOnce(b, machines, machines*perMachine)
		ids := s.MachineIDs()
		i := 0
		for _, name := range slices.Sorted(maps.Keys(s.Jobs)) {
			j := s.Jobs[name]
			if j.Spec().Metadata != nil { // region=east: the machines of index 0 mod 4
				j.Target = ids[(i%(machines/4+1))*4%machines]
			} else {
				j.Target = ids[i%machines]
			}
			i++
		}
		b.Run(fmt.Sprintf("machines=%d/units=%d", machines, machines*perMachine), func(b *testing.B) {
			for b.Loop() {
				if plan := leader.Reconcile(context.Background(), s, placer); len(plan.Actions) != 0 {
					b.Fatalf("a pass over placed units changed %d", len(plan.Actions))
				}
			}
		})
	}
}
