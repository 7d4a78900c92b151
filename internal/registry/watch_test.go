package registry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestEmptyPrefixWatch: a blocking read of a machine's dynamic metadata
// must not return because of writes elsewhere in the cluster. Without its
// directory key the prefix has never held a key, Consul answers it with the
// whole store's index, and it returns at once after any write (the first
// half shows that, so the test can fail); with the key it waits.
func TestEmptyPrefixWatch(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(client, "")
	ctx := context.Background()
	busy := func() { // another machine's writes
		for i := range 3 {
			if _, err := client.KV().Put(&api.KVPair{Key: fmt.Sprintf("fleet/states/m%d/x.service", i), Value: []byte("{}")}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	waited := func(machine string) time.Duration {
		_, index, err := reg.DynamicMetadata(ctx, machine, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		busy() // written between two reads, as in a busy cluster
		start := time.Now()
		if _, _, err := reg.DynamicMetadata(ctx, machine, index, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if d := waited("m-without-key"); d > 5*time.Second {
		t.Fatalf("without the directory key the read waited %s; Consul's behaviour changed, and the key may no longer be needed", d)
	}
	if err := reg.KeepMetadataDir(ctx, "m-with-key"); err != nil {
		t.Fatal(err)
	}
	if d := waited("m-with-key"); d < 5*time.Second {
		t.Fatalf("with the directory key the read returned after %s, woken by writes elsewhere", d)
	}
	if md, _, err := reg.DynamicMetadata(ctx, "m-with-key", 0, 0); err != nil || len(md) != 0 {
		t.Fatalf("the directory key reads as metadata: %v %v", md, err)
	}
}
