package main

import (
	"context"
	"fmt"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/watch"
)

// clusterReader is how fleetctl's commands read fleet's state:
// *registry.Registry reads it from Consul, fixedCluster from one snapshot
// already read. Writes, and the reads that only go with them (policies,
// machine metadata), use the registry itself.
type clusterReader interface {
	// Snapshot reads the whole cluster; with waitIndex > 0 it blocks until
	// the cluster changes past waitIndex or wait passes.
	Snapshot(ctx context.Context, waitIndex uint64, wait time.Duration) (*registry.Snapshot, error)
	// Subtrees reads only the named parts of the cluster ("states/",
	// "machines/", ...), as list-units and list-unit-files do.
	Subtrees(ctx context.Context, names ...string) (*registry.Snapshot, error)
	// UnitStates reads every unit's state on every machine, and the
	// machines, as list-units shows them.
	UnitStates(ctx context.Context) (*registry.StateList, error)
	// Job reads one unit with its body; registry.ErrNotFound when there is
	// no such unit.
	Job(ctx context.Context, name string) (*registry.Job, error)
	// JobsNamed reads the named units' jobs and bodies, and the default
	// policy.
	JobsNamed(ctx context.Context, names []string) (*registry.Snapshot, error)
	// DefaultPolicy reads the policy of units that name none.
	DefaultPolicy(ctx context.Context) (string, error)
	// Tracking reads the named units, where they are placed and what
	// their machines report of them; with everywhere, what every machine
	// reports: what a wait for them looks at.
	Tracking(ctx context.Context, names []string, everywhere bool) (*registry.Snapshot, error)
	// Changed blocks until fleet's keys change past index, or wait passes,
	// and returns their index; with index 0 it returns at once.
	Changed(ctx context.Context, index uint64, wait time.Duration) (uint64, error)
}

var _ clusterReader = (*registry.Registry)(nil)

// fixedCluster is the cluster as one snapshot saw it: every read answers
// from that snapshot at once, since it never changes. Commands given many
// units look them up in a few reads this way (cli.pinned), and tests render
// commands' output from a snapshot they build, with no Consul.
type fixedCluster struct{ s *registry.Snapshot }

// Snapshot returns the snapshot.
func (f fixedCluster) Snapshot(context.Context, uint64, time.Duration) (*registry.Snapshot, error) {
	return f.s, nil
}

// Subtrees returns the whole snapshot, which holds any part asked for.
func (f fixedCluster) Subtrees(context.Context, ...string) (*registry.Snapshot, error) {
	return f.s, nil
}

// UnitStates lists the snapshot's states.
func (f fixedCluster) UnitStates(context.Context) (*registry.StateList, error) {
	return f.s.StateList(), nil
}

// JobsNamed returns the whole snapshot, which holds any unit asked for.
func (f fixedCluster) JobsNamed(context.Context, []string) (*registry.Snapshot, error) {
	return f.s, nil
}

// Tracking returns the whole snapshot, which holds any unit asked for.
func (f fixedCluster) Tracking(context.Context, []string, bool) (*registry.Snapshot, error) {
	return f.s, nil
}

// Changed returns the snapshot's index when index is below it; else, as
// the snapshot never changes, index once wait passes.
func (f fixedCluster) Changed(ctx context.Context, index uint64, wait time.Duration) (uint64, error) {
	if now := max(f.s.Index, 1); index < now {
		return now, nil
	}
	watch.Sleep(ctx, wait)
	return index, ctx.Err()
}

// DefaultPolicy returns the snapshot's default policy.
func (f fixedCluster) DefaultPolicy(context.Context) (string, error) {
	return f.s.DefaultPolicy, nil
}

// Job returns the snapshot's unit, as registry.Registry.Job would: an
// error when its body is missing.
func (f fixedCluster) Job(_ context.Context, name string) (*registry.Job, error) {
	j := f.s.Jobs[name]
	if j == nil {
		return nil, fmt.Errorf("%w: %s", registry.ErrNotFound, name)
	}
	if j.Unit == nil {
		return nil, fmt.Errorf("unit body %s of %s is missing from Consul", j.Hash.Short(), name)
	}
	return j, nil
}
