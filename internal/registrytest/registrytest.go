// Package registrytest builds snapshots of a cluster for the unit tests of
// logic that reads one (the leader's Reconcile, the agent's Wanted) from a
// compact description, so every such test starts from a valid world.
package registrytest

import (
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// Snapshot is a cluster of machines, each "id:k=v,k=v", and units, each
// "name desired [target] [| X-Fleet lines;...]" (the lines of its
// [X-Fleet] section separated by ";"). Every unit runs /bin/true. The
// cluster's default policy is the built-in one.
func Snapshot(t testing.TB, machines []string, units []string) *registry.Snapshot {
	t.Helper()
	s := &registry.Snapshot{Jobs: map[string]*registry.Job{}, Machines: map[string]*registry.Machine{},
		DefaultPolicy: registry.BuiltinPolicy}
	for _, m := range machines {
		id, md, _ := strings.Cut(m, ":")
		mach := &registry.Machine{ID: id, Metadata: map[string]string{}}
		for _, kv := range strings.Split(md, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				mach.Metadata[k] = v
			}
		}
		s.Machines[id] = mach
	}
	for _, u := range units {
		head, xfleet, _ := strings.Cut(u, "|")
		f := strings.Fields(head)
		body := "[Service]\nExecStart=/bin/true\n"
		if xfleet != "" {
			body += "[X-Fleet]\n" + strings.ReplaceAll(strings.TrimSpace(xfleet), ";", "\n") + "\n"
		}
		uf, err := unitfile.Parse(body)
		if err != nil {
			t.Fatalf("unit %q: %v", u, err)
		}
		j := &registry.Job{Name: f[0], Desired: registry.DesiredState(f[1]), Unit: uf, Hash: uf.Hash()}
		if len(f) > 2 {
			j.Target = f[2]
		}
		s.Jobs[j.Name] = j
	}
	return s
}
