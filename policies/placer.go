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
// the cluster's default policy, else the built-in one. Modules are loaded on
// first use and kept while their content is unchanged, so only the machine
// that leads compiles them, and an upload takes effect on the next
// reconcile.
type Placer struct {
	// Builtin loads the policy fleetd ships.
	Builtin func(context.Context) (*Policy, error)
	// Uploaded loads an uploaded policy's module.
	Uploaded func(context.Context, *registry.PolicyManifest) (*Policy, error)

	mu        sync.Mutex
	manifests map[string]*registry.PolicyManifest
	def       string
	units     map[string]UnitDef // every defined unit, from the last snapshot
	unitsGen  uint64
	defined   map[*Policy]uint64 // unitsGen each policy was given
	loaded    map[string]*Policy // by name+sha256
	failed    map[string]error   // modules that would not load, by name+sha256
}

// Observe takes the uploaded policies and the default from the leader's
// snapshot, before each reconcile.
func (pl *Placer) Observe(s *registry.Snapshot) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.manifests, pl.def = s.Policies, s.DefaultPolicy
	units := make(map[string]UnitDef, len(s.Jobs))
	for name, j := range s.Jobs {
		if j.Unit != nil {
			units[name] = UnitDef{Hash: j.Hash.String(), Options: wireOptions(j)}
		}
	}
	pl.units = units
	pl.unitsGen++
}

func wireOptions(j *registry.Job) []wire.Option {
	if j.Unit == nil {
		return nil
	}
	out := make([]wire.Option, len(j.Unit.Options))
	for i, o := range j.Unit.Options {
		out[i] = wire.Option{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return out
}

// policyName is the name of the policy that places unit j; pl.mu held.
func (pl *Placer) policyName(j *registry.Job) string {
	name := pl.def
	if name == "" {
		name = registry.BuiltinPolicy
	}
	if j.Unit != nil {
		if v := j.Unit.Values("X-Fleet", "Policy"); len(v) > 0 {
			name = v[len(v)-1]
		}
	}
	return name
}

// FleetRules implements leader.RuleChecker: the built-in policy is fleet's
// rules, so units it places are re-checked where they run; a custom
// policy's choices are its own.
func (pl *Placer) FleetRules(j *registry.Job) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.policyName(j) == registry.BuiltinPolicy
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

// policyFor returns the policy that places unit j.
func (pl *Placer) policyFor(ctx context.Context, j *registry.Job) (*Policy, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.loaded == nil {
		pl.loaded, pl.failed = map[string]*Policy{}, map[string]error{}
	}
	name := pl.policyName(j)
	key := name
	var m *registry.PolicyManifest
	if name != registry.BuiltinPolicy {
		if m = pl.manifests[name]; m == nil {
			return nil, fmt.Errorf("policy %s is not uploaded (fleetctl policy list)", name)
		}
		key += "@" + m.SHA256
	}
	if p := pl.loaded[key]; p != nil {
		return p, nil
	}
	if err := pl.failed[key]; err != nil {
		return nil, err
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
		return nil, err
	}
	pl.loaded[key] = p
	return p, nil
}

// Begin implements leader.Placer. The pass's view of the cluster is given
// to each policy the pass uses once, at its first decision in the pass (with
// the units defined since the last Observe); after that a policy is told only
// each placement the pass makes (one wire.OpUnitPlaced), so a decision costs
// the same in a cluster of ten machines as in one of a thousand.
func (pl *Placer) Begin(cands []leader.Candidate) leader.Pass {
	ps := &pass{pl: pl, machines: make([]Machine, 0, len(cands)), placed: map[string][]string{}}
	for _, c := range cands {
		ps.machines = append(ps.machines, Machine{ID: c.Machine.ID, IP: c.Machine.IP, Metadata: c.Machine.Metadata})
		for _, u := range c.Units {
			ps.placed[u] = append(ps.placed[u], c.Machine.ID) // a global unit is on several machines
		}
	}
	return ps
}

// Place decides for one unit in the cluster cands describes, as a pass of
// one decision: fleetctl policy simulate asks this way, each unit with its
// own view.
func (pl *Placer) Place(j *registry.Job, cands []leader.Candidate) leader.Decision {
	return pl.Begin(cands).Place(j)
}

// pass is one reconcile pass of a Placer.
type pass struct {
	pl       *Placer
	machines []Machine
	placed   map[string][]string // unit -> machines, the pass's placements included
	synced   []*Policy           // policies given the view; told each placement since
}

func (ps *pass) Place(j *registry.Job) leader.Decision {
	ctx := context.Background()
	policy, err := ps.pl.policyFor(ctx, j)
	if err != nil {
		return leader.Decision{Error: err.Error()}
	}
	if !slices.Contains(ps.synced, policy) {
		ps.pl.define(policy)
		policy.SyncAll(ps.machines, ps.placed)
		ps.synced = append(ps.synced, policy)
	}
	d, err := policy.Place(ctx, wire.Request{Unit: j.Name, Options: wireOptions(j)})
	if err != nil {
		return leader.Decision{Error: err.Error()}
	}
	out := leader.Decision{Machine: d.Machine, Rejected: map[string]string{}}
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

// define gives policy the units of the last Observe, unless it has them.
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
