package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
)

// publisher writes what the agent reports (its machine, its units' states,
// their services in Consul's catalog) from a goroutine of its own. A write
// can hang for most of a minute when Consul cannot be reached (a partition,
// a server restarting); the agent's loop must go on driving its units
// meanwhile, above all stopping them when the machine is cut off. The loop
// hands over the latest states with set; the publisher writes what differs
// from what it last wrote, and retries what failed.
type publisher struct {
	cfg      Config
	services *unitServices

	mu      sync.Mutex
	latest  map[string]registry.UnitState // what should be in Consul
	machine bool                          // a new session: the machine and every state must be published again
	record  registry.Machine              // the machine as it should be published
	changed bool                          // record changed: publish the machine again
	meta    map[string]string             // metadata for the catalog to show; nil when shown
	kick    chan struct{}                 // capacity 1: something to write

	published map[string]registry.UnitState // what is in Consul; the publisher's own
}

// publishRetry is how soon a failed write is tried again.
const publishRetry = 2 * time.Second

func newPublisher(cfg Config) *publisher {
	return &publisher{cfg: cfg, record: cfg.Machine, kick: make(chan struct{}, 1), published: map[string]registry.UnitState{},
		services: newUnitServices(cfg.Registry.Client(), cfg.Machine.ID, cfg.Machine.IP, cfg.Heartbeat.ServiceID())}
}

// set makes states what should be published. With session set (a new
// session, which holds no keys yet) the machine and every state are
// written again.
func (p *publisher) set(states map[string]registry.UnitState, session bool) {
	p.mu.Lock()
	p.latest = states
	p.machine = p.machine || session
	p.mu.Unlock()
	p.wake()
}

// setMachine makes m what is published as the machine, and meta (its
// configured metadata with the dynamic merged over it) what its fleet-agent
// service instance shows.
func (p *publisher) setMachine(m registry.Machine, meta map[string]string) {
	p.mu.Lock()
	p.record, p.changed, p.meta = m, true, meta
	p.mu.Unlock()
	p.wake()
}

// setMeta makes meta what the machine's fleet-agent service instance shows.
func (p *publisher) setMeta(meta map[string]string) {
	p.mu.Lock()
	p.meta = meta
	p.mu.Unlock()
	p.wake()
}

func (p *publisher) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run writes until ctx is done.
func (p *publisher) run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-retry.C:
		}
		p.mu.Lock()
		states, machine, record, changed, meta := p.latest, p.machine, p.record, p.changed, p.meta
		p.machine, p.changed, p.meta = false, false, nil
		p.mu.Unlock()
		ok := true
		if meta != nil {
			if err := p.cfg.Heartbeat.SetMeta(ctx, meta); err != nil {
				p.cfg.Log.Error("showing the machine's new metadata in Consul's catalog failed, retrying", "err", err)
				p.mu.Lock()
				if p.meta == nil {
					p.meta = meta
				}
				p.mu.Unlock()
				ok = false
			}
		}
		if machine {
			clear(p.published) // the new session holds none of them
		}
		if machine || changed {
			if err := p.writeMachine(ctx, &record); err != nil {
				p.cfg.Log.Error("publishing the machine failed, retrying", "err", err)
				p.mu.Lock()
				p.machine = p.machine || machine
				p.changed = p.changed || changed
				p.mu.Unlock()
				ok = false
			}
		}
		if states != nil && !p.sync(ctx, states) {
			ok = false
		}
		if !ok && ctx.Err() == nil {
			retry.Reset(publishRetry)
		}
	}
}

func (p *publisher) writeMachine(ctx context.Context, m *registry.Machine) error {
	return p.write(ctx, func() error { return p.cfg.Registry.PublishMachine(ctx, m, p.cfg.Heartbeat.ID()) })
}

// write runs a write of a key held by the machine's session, and runs it
// once more when an earlier session of this machine held the key and was
// destroyed (Heartbeat.ForgetStale).
func (p *publisher) write(ctx context.Context, w func() error) error {
	err := w()
	var held *registry.HeldError
	if errors.As(err, &held) && p.cfg.Heartbeat.ForgetStale(ctx, held.Holder) {
		err = w()
	}
	return err
}

// sync writes every state that differs from what was last written and
// removes the states of units no longer here; it reports whether every
// write went through. The states go first, all of them, then the units'
// services in Consul's catalog: the state is what fleet acts on (the leader,
// fleetctl's waits), the catalog a view of it, and a busy Consul agent's
// catalog registrations must not hold the states of a batch back.
func (p *publisher) sync(ctx context.Context, states map[string]registry.UnitState) bool {
	ok := true
	var written []registry.UnitState
	for name, st := range states {
		if p.published[name] == st {
			continue
		}
		if err := p.write(ctx, func() error { return p.cfg.Registry.PublishState(ctx, &st, p.cfg.Heartbeat.ID()) }); err != nil {
			p.cfg.Log.Warn("publishing unit state failed", "unit", name, "err", err)
			ok = false
			continue
		}
		written = append(written, st)
	}
	for _, st := range written {
		name := st.Name
		if err := p.services.sync(ctx, st); err != nil {
			p.cfg.Log.Warn("showing the unit in Consul's catalog failed", "unit", name, "err", err)
			ok = false
			continue
		}
		p.published[name] = st
	}
	for name := range p.published {
		if _, here := states[name]; here {
			continue
		}
		if err := p.cfg.Registry.DeleteState(ctx, name, p.cfg.Machine.ID); err != nil {
			p.cfg.Log.Warn("removing unit state failed", "unit", name, "err", err)
			ok = false
			continue
		}
		if err := p.services.remove(ctx, name); err != nil {
			p.cfg.Log.Warn("removing the unit from Consul's catalog failed", "unit", name, "err", err)
			ok = false
			continue
		}
		delete(p.published, name)
	}
	return ok
}

// states is what the agent reports for each unit it has: its fleet state
// and what the driver says of it.
func (a *Agent) states() map[string]registry.UnitState {
	out := make(map[string]registry.UnitState, len(a.have))
	for name, h := range a.have {
		ds := a.cfg.Driver.State(name)
		st := registry.UnitState{Name: name, Machine: a.cfg.Machine.ID, Hash: h.Hash.String(), State: registry.Loaded,
			Load: ds.Load, Active: ds.Active, Sub: ds.Sub, Error: ds.Error}
		if h.Launched {
			st.State = registry.Launched
		}
		out[name] = st
	}
	a.cfg.Metrics.unitStates(out)
	return out
}

// publishStates hands the units' current states to the publisher.
func (a *Agent) publishStates(session bool) { a.pub.set(a.states(), session) }
