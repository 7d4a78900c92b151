package policies

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	defaultpolicy "github.com/wasmfleet/fleet/plugins/default"
)

// TestPoolHammer drives one uploaded policy's instance pool from many
// goroutines at once: decisions that succeed, decisions whose context is
// already done (their instance fails and is discarded, or none is made),
// and placements recorded in between, which every instance catches up on.
// Every decision names a live machine or fails because of its context; the
// pool never makes more instances than its size, keeps every one it made
// once the callers are done, and still decides.
func TestPoolHammer(t *testing.T) {
	ctx := context.Background()
	const size = 3
	h := newHost(t, Config{PoolSize: size})
	p, err := h.Load(ctx, "hammer", defaultpolicy.Wasm, false)
	if err != nil {
		t.Fatal(err)
	}
	p.Sync(threeMachines(), nil)
	live := map[string]bool{"m1": true, "m2": true, "m3": true}
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				c, cancel := context.WithCancel(ctx)
				if (g+k)%4 == 0 {
					cancel()
				}
				unit := fmt.Sprintf("u%d-%d.service", g, k)
				d, err := p.Place(c, request(unit))
				switch {
				case err == nil && live[d.Machine]:
					ok.Add(1)
					p.Placed(unit, d.Machine)
				case err != nil && c.Err() != nil:
					failed.Add(1)
				default:
					t.Errorf("%s: machine %q, error %v (context %v)", unit, d.Machine, err, c.Err())
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 || failed.Load() == 0 {
		t.Fatalf("%d decisions, %d failed: the hammer must drive both paths", ok.Load(), failed.Load())
	}
	p.mu.Lock()
	created, idle := p.created, len(p.pool)
	p.mu.Unlock()
	if created > size || idle != created {
		t.Fatalf("after the hammer the pool made %d instances (size %d) and holds %d idle", created, size, idle)
	}
	if d, err := p.Place(ctx, request("after.service")); err != nil || !live[d.Machine] {
		t.Fatalf("after the hammer: machine %q, error %v", d.Machine, err)
	}
	t.Logf("%d decisions, %d failed by their context", ok.Load(), failed.Load())
}
