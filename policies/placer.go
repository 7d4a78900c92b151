package policies

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/leader"
	"github.com/wasmfleet/fleet/sdk/wire"
)

// Placer runs placement policies as the leader's placement step
// (leader.Placer): for each unit the policy its [X-Fleet] Policy= names, else
// the cluster's default policy (Snapshot.PolicyOf), the built-in one unless
// an operator chose another. Modules are loaded on first use and kept while
// their content is unchanged, so an upload takes effect on the next pass.
type Placer struct {
	// Builtin loads the policy fleetd ships (Builtin, BuiltinNative).
	Builtin func(context.Context) (*Policy, error)
	// Uploaded loads an uploaded policy's module.
	Uploaded func(context.Context, *registry.PolicyManifest) (*Policy, error)

	mu       sync.Mutex
	units    map[string]UnitDef // every defined unit, from the last pass's snapshot
	unitsGen uint64
	defined  map[*Policy]uint64 // unitsGen each policy was given
	loaded   map[string]*Policy // by name+sha256
	failed   map[string]error   // modules that would not load, by name+sha256
}

// observe takes the units the snapshot defines, which every policy the
// pass uses is given before its first decision (rules between units).
func (pl *Placer) observe(s *registry.Snapshot) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	units := make(map[string]UnitDef, len(s.Jobs))
	for name, j := range s.Jobs {
		if j.Unit != nil {
			units[name] = UnitDef{Hash: j.Hash.String(), Options: j.Unit.Options}
		}
	}
	pl.units = units
	pl.unitsGen++
}

// Prepare loads the built-in policy ahead of need, so that a machine which
// becomes leader places units at once instead of compiling the module first
// (under a second; BENCHMARKS.md). fleetd calls it when it starts.
func (pl *Placer) Prepare(ctx context.Context) error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.loaded == nil {
		pl.loaded, pl.failed = map[string]*Policy{}, map[string]error{}
	}
	if pl.loaded[registry.BuiltinPolicy] != nil {
		return nil
	}
	p, err := pl.Builtin(ctx)
	if err != nil {
		return err
	}
	pl.loaded[registry.BuiltinPolicy] = p
	return nil
}

// policyFor returns the policy that places unit j in snapshot s, and its
// name.
func (pl *Placer) policyFor(ctx context.Context, s *registry.Snapshot, j *registry.Job) (*Policy, string, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.loaded == nil {
		pl.loaded, pl.failed = map[string]*Policy{}, map[string]error{}
	}
	name := s.PolicyOf(j)
	key := name
	var m *registry.PolicyManifest
	if name != registry.BuiltinPolicy {
		if m = s.Policies[name]; m == nil {
			return nil, name, fmt.Errorf("policy %s is not uploaded (fleetctl policy list)", name)
		}
		key += "@" + m.SHA256
	}
	if p := pl.loaded[key]; p != nil {
		return p, name, nil
	}
	if err := pl.failed[key]; err != nil {
		return nil, name, err
	}
	var p *Policy
	var err error
	if m == nil {
		p, err = pl.Builtin(ctx)
	} else {
		p, err = pl.Uploaded(ctx, m)
	}
	if err != nil {
		pl.failed[key] = err
		return nil, name, err
	}
	pl.loaded[key] = p
	return p, name, nil
}

// Begin implements leader.Placer. It takes the units s defines; the pass's
// view of the cluster is then given to each policy the pass uses once, at
// its first decision in the pass; after that a policy is told only each
// placement the pass makes (one wire.OpUnitPlaced), so a decision costs the
// same in a cluster of ten machines as in one of a thousand.
func (pl *Placer) Begin(ctx context.Context, s *registry.Snapshot, cands []leader.Candidate) leader.Pass {
	pl.observe(s)
	ps := &pass{ctx: ctx, s: s, pl: pl, machines: make([]Machine, 0, len(cands)), placed: map[string][]string{}}
	for _, c := range cands {
		ps.machines = append(ps.machines, Machine{ID: c.Machine.ID, IP: c.Machine.IP, Metadata: c.Machine.Metadata})
		for _, u := range c.Units {
			ps.placed[u] = append(ps.placed[u], c.Machine.ID) // a global unit is on several machines
		}
	}
	return ps
}

// pass is one reconcile pass of a Placer.
type pass struct {
	ctx      context.Context
	s        *registry.Snapshot
	pl       *Placer
	machines []Machine
	placed   map[string][]string // unit -> machines, the pass's placements included
	synced   []*Policy           // policies given the view; told each placement since
}

func (ps *pass) Place(j *registry.Job) leader.Decision {
	policy, name, err := ps.pl.policyFor(ps.ctx, ps.s, j)
	if err != nil {
		return leader.Decision{Error: err.Error(), Policy: name}
	}
	if !slices.Contains(ps.synced, policy) {
		ps.pl.define(policy)
		policy.SyncAll(ps.machines, ps.placed)
		ps.synced = append(ps.synced, policy)
	}
	d, err := policy.Place(ps.ctx, wire.Request{Unit: j.Name, Options: j.Unit.Options})
	if err != nil {
		return leader.Decision{Error: err.Error(), Policy: name}
	}
	out := leader.Decision{Machine: d.Machine, Rejected: map[string]string{}, Policy: name}
	for _, r := range d.Rejected {
		out.Rejected[r.Machine] = r.Reason
	}
	return out
}

func (ps *pass) Placed(j *registry.Job, machine string) {
	ps.placed[j.Name] = append(ps.placed[j.Name], machine)
	for _, p := range ps.synced {
		p.Placed(j.Name, machine)
	}
}

// define gives policy the units of the pass's snapshot, unless it has them.
func (pl *Placer) define(policy *Policy) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.defined == nil {
		pl.defined = map[*Policy]uint64{}
	}
	if pl.units != nil && pl.defined[policy] != pl.unitsGen {
		policy.Define(pl.units)
		pl.defined[policy] = pl.unitsGen
	}
}
