package policies

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	defaultpolicy "github.com/wasmfleet/fleet/plugins/default"
	"github.com/wasmfleet/fleet/plugins/default/policy"
	"github.com/wasmfleet/fleet/sdk/native"
	"github.com/wasmfleet/fleet/sdk/wire"
)

// benchCluster is n machines with three metadata keys and about ten units
// each.
func benchCluster(n int) ([]Machine, map[string]string) {
	ms, placed, _ := benchClusterDefs(n)
	return ms, placed
}

// benchClusterDefs is benchCluster where every tenth machine also runs an
// instance of api@, whose units conflict with each other, and every unit is
// defined (as the leader defines them).
func benchClusterDefs(n int) ([]Machine, map[string]string, map[string]UnitDef) {
	regions, disks, racks := []string{"east", "west", "north", "south"}, []string{"ssd", "hdd"}, 16
	ms := make([]Machine, n)
	placed := map[string]string{}
	for i := range ms {
		id := fmt.Sprintf("%032x", i*7919)
		ms[i] = Machine{ID: id, IP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Metadata: map[string]string{
			"region": regions[i%4], "disk": disks[i%2], "rack": fmt.Sprint(i % racks)}}
		for u := 0; u < 10+i%2; u++ {
			placed[fmt.Sprintf("web@%d-%d.service", i, u)] = id
		}
		if i%10 == 0 {
			placed[fmt.Sprintf("api@%d.service", i)] = id
		}
	}
	defs := map[string]UnitDef{}
	for name := range placed {
		q := request(name)
		if strings.HasPrefix(name, "api@") {
			q = benchRequest
		}
		defs[name] = UnitDef{Hash: fmt.Sprint(q.Options), Options: q.Options}
	}
	return ms, placed, defs
}

// benchRequest is a realistic unit: a metadata constraint (two regions, an
// SSD) and Conflicts with the other instances of its template.
var benchRequest = request("api@1.service", "MachineMetadata=region=east", "MachineMetadata=region=west", "MachineMetadata=disk=ssd",
	"Conflicts=api@*.service")

// BenchmarkPlacement is one placement decision of the default policy over
// clusters of several sizes: compiled to WebAssembly (as fleetd runs it,
// trusted, without the time guard), the same with the time guard (as an
// uploaded policy runs), and compiled natively, run by fleetd's host as
// fleetd --default-policy-native runs it (native: the baseline, through the
// same pool, lock, mirror and answer checks as the module) and called
// directly (native-bare); and, to split the cost, a module that answers at
// once without deciding
// (boundary: the host's and the call boundary's share), the same written
// in Go without the SDK (go-raw: what Go's runtime adds entering and
// leaving an export) and a Go policy written with the SDK that answers at
// once (go-floor: what any SDK policy pays per decision before it decides
// anything).
//
//	go test -run '^$' -bench Placement -count 6 ./policies/ | tee placement.txt && benchstat placement.txt
func BenchmarkPlacement(b *testing.B) {
	ctx := context.Background()
	// A generous time limit: this measures what the guard costs, not
	// whether the decision fits the production limit.
	h := newHost(b, Config{CallTimeout: 10 * time.Second})
	goraw, gofloor := goGuest(b, "./testdata/goraw", "-buildmode=c-shared"), goGuest(b, "./testdata/gofloor", "-buildmode=c-shared")
	for _, n := range []int{100, 1000, 5000} {
		ms, placed, defs := benchClusterDefs(n)
		defs[benchRequest.Unit] = UnitDef{Hash: fmt.Sprint(benchRequest.Options), Options: benchRequest.Options}
		for _, impl := range []string{"wasm", "wasm-guarded", "native", "native-bare", "boundary", "go-raw", "go-floor"} {
			b.Run(fmt.Sprintf("impl=%s/machines=%d", impl, n), func(b *testing.B) {
				var place func() (string, error)
				switch impl {
				case "native":
					// The same source built natively, run by fleetd's host
					// as fleetd --default-policy-native runs it: the same
					// mirror, pool, handles and answer checks as the module.
					p := h.LoadNative(impl, func() Runner { return native.NewRunner(policy.Place) })
					p.Define(defs)
					p.Sync(ms, placed)
					place = func() (string, error) {
						d, err := p.Place(ctx, benchRequest)
						return d.Machine, err
					}
				case "native-bare":
					// The native policy alone, without fleetd's pool,
					// lock and mirror around it: the unit asked for by its
					// handle, the answer decoded and checked. Against
					// native it shows what fleetd's own bookkeeping costs
					// every decision.
					r := native.NewRunner(policy.Place)
					m := newMirror(true)
					m.define(defs)
					m.sync(ms, placed)
					if err := r.Apply(m.full()); err != nil {
						b.Fatal(err)
					}
					place = func() (string, error) {
						h, ok := m.handleFor(benchRequest)
						if !ok {
							return "", fmt.Errorf("no handle for %s", benchRequest.Unit)
						}
						out, err := r.PlaceDefined(h)
						if err != nil {
							return "", err
						}
						d, err := wire.DecodeDecision(out)
						if err == nil && m.machines[d.Machine] == nil {
							err = fmt.Errorf("chose %q, not a live machine", d.Machine)
						}
						return d.Machine, err
					}
				case "boundary", "go-raw", "go-floor":
					mod := map[string][]byte{"boundary": wat(b, "fixed"), "go-raw": goraw, "go-floor": gofloor}[impl]
					p, err := h.Load(ctx, impl, mod, true)
					if err != nil {
						b.Fatal(err)
					}
					p.Define(defs)
					p.Sync(ms, placed)
					place = func() (string, error) {
						d, err := p.Place(ctx, benchRequest)
						return d.Machine, err
					}
				default:
					p, err := h.Load(ctx, impl, defaultpolicy.Wasm, impl == "wasm")
					if err != nil {
						b.Fatal(err)
					}
					p.Define(defs)
					p.Sync(ms, placed)
					place = func() (string, error) {
						d, err := p.Place(ctx, benchRequest)
						return d.Machine, err
					}
				}
				if m, err := place(); err != nil || m == "" { // also brings the instance up to date
					b.Fatalf("placement: %q %v", m, err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := place(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLoad is validating and compiling the default policy: cold, and
// again through the host's compilation cache; and creating one more
// instance.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	b.Run("compile=cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			h, err := NewHost(ctx, Config{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.Load(ctx, "default", defaultpolicy.Wasm, true); err != nil {
				b.Fatal(err)
			}
			h.Close(ctx)
		}
	})
	b.Run("compile=cached", func(b *testing.B) {
		h := newHost(b, Config{})
		if _, err := h.Load(ctx, "default", defaultpolicy.Wasm, true); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p, err := h.Load(ctx, "default", defaultpolicy.Wasm, true)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			p.compiled.Close(ctx)
			b.StartTimer()
		}
	})
	b.Run("instance", func(b *testing.B) {
		h := newHost(b, Config{})
		p, err := h.Load(ctx, "default", defaultpolicy.Wasm, true)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			inst, err := p.newInstance(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			inst.close(ctx)
			b.StartTimer()
		}
	})
}
