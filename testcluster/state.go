package testcluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
)

// ScheduledOn returns the machine unit is scheduled to, "" when none.
func ScheduledOn(t testing.TB, reg *registry.Registry, unit string) string {
	t.Helper()
	s, err := reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if j := s.Jobs[unit]; j != nil {
		return j.Target
	}
	return ""
}

// WaitPublished waits until machine id is published with metadata md
// ("k=v,k=v"), or is gone when md is "gone".
func WaitPublished(t testing.TB, reg *registry.Registry, id, md string) {
	t.Helper()
	Eventually(t, 30*time.Second, func() error {
		s, err := reg.Snapshot(context.Background(), 0, 0)
		if err != nil {
			return err
		}
		m := s.Machines[id]
		switch {
		case md == "gone" && m != nil:
			return fmt.Errorf("machine %s is still published", id)
		case md == "gone":
			return nil
		case m == nil:
			return fmt.Errorf("machine %s is not published", id)
		}
		for _, kv := range strings.Split(md, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok && m.Metadata[k] != v {
				return fmt.Errorf("machine %s has metadata %v, want %s", id, m.Metadata, md)
			}
		}
		return nil
	})
}
