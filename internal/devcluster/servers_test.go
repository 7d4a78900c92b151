package devcluster_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/devcluster"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestConsulServers: three servers form one raft cluster; with its leader
// killed the other two elect another and keep what was written; with two
// killed there is no quorum, and started again together they bring it
// back, every write kept.
func TestConsulServers(t *testing.T) {
	ctx := context.Background()
	bin, err := testcluster.ConsulBinary(ctx, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	servers, err := devcluster.StartConsulServers(ctx, devcluster.ConsulOptions{Binary: bin, DataDir: t.TempDir()}, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Stop()
		}
	})
	peers := func(s *devcluster.Consul) []string {
		c, _ := s.Client()
		p, err := c.Status().Peers()
		if err != nil {
			t.Fatalf("peers from %s: %v", s.NodeName, err)
		}
		return p
	}
	if p := peers(servers[0]); len(p) != 3 {
		t.Fatalf("raft peers %v, want the three servers", p)
	}
	put := func(s *devcluster.Consul, key string) error {
		c, _ := s.Client()
		_, err := c.KV().Put(&api.KVPair{Key: key, Value: []byte(key)}, nil)
		return err
	}
	leaderOf := func(s *devcluster.Consul) *devcluster.Consul {
		c, _ := s.Client()
		addr, err := c.Status().Leader()
		if err != nil {
			return nil
		}
		for _, x := range servers {
			if x.RaftAddr == addr {
				return x
			}
		}
		return nil
	}
	if err := put(servers[0], "before"); err != nil {
		t.Fatal(err)
	}
	old := leaderOf(servers[0])
	if old == nil {
		t.Fatal("no server is the raft leader")
	}
	old.Kill()
	var rest []*devcluster.Consul
	for _, s := range servers {
		if s != old {
			rest = append(rest, s)
		}
	}
	testcluster.Eventually(t, 60*time.Second, func() error {
		if l := leaderOf(rest[0]); l == nil || l == old {
			return fmt.Errorf("no new leader after killing %s", old.NodeName)
		}
		return put(rest[0], "after-leader")
	})
	// Two of three down: no quorum, no writes.
	rest[0].Kill()
	if err := put(rest[1], "no-quorum"); err == nil {
		t.Fatal("a write succeeded with one server of three")
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*devcluster.Consul{old, rest[0]} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.StartAgain(ctx) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	testcluster.Eventually(t, 60*time.Second, func() error { return put(old, "back") })
	c, _ := old.Client()
	for _, k := range []string{"before", "after-leader", "back"} {
		if kv, _, err := c.KV().Get(k, nil); err != nil || kv == nil {
			t.Errorf("%s lost after the faults: %v", k, err)
		}
	}
}
