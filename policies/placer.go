package policies

import (
	"context"
	"sync"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/leader"
	"github.com/wasmfleet/fleet/sdk/wire"
)

// Placer runs a policy as the leader's placement step (leader.Placer).
// The policy is loaded on first use, so only the machine that leads pays for
// compiling it.
type Placer struct {
	Load func(context.Context) (*Policy, error)

	once   sync.Once
	policy *Policy
	err    error
}

// Place implements leader.Placer.
func (pl *Placer) Place(j *registry.Job, cands []leader.Candidate) leader.Decision {
	ctx := context.Background()
	pl.once.Do(func() { pl.policy, pl.err = pl.Load(ctx) })
	if pl.err != nil {
		return leader.Decision{Error: pl.err.Error()}
	}
	machines := make([]Machine, 0, len(cands))
	placed := map[string]string{}
	for _, c := range cands {
		machines = append(machines, Machine{ID: c.Machine.ID, IP: c.Machine.IP, Metadata: c.Machine.Metadata})
		for _, u := range c.Units {
			placed[u] = c.Machine.ID
		}
	}
	pl.policy.Sync(machines, placed)
	req := wire.Request{Unit: j.Name}
	if j.Unit != nil {
		for _, o := range j.Unit.Options {
			req.Options = append(req.Options, wire.Option{Section: o.Section, Name: o.Name, Value: o.Value})
		}
	}
	d, err := pl.policy.Place(ctx, req)
	if err != nil {
		return leader.Decision{Error: err.Error()}
	}
	out := leader.Decision{Machine: d.Machine, Rejected: map[string]string{}}
	for _, r := range d.Rejected {
		out.Rejected[r.Machine] = r.Reason
	}
	return out
}
