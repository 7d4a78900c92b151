package agent

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/watch"
)

// publisher writes what the agent reports (its machine, its units' states,
// their services in Consul's catalog) from a goroutine of its own. A write
// can hang for most of a minute when Consul cannot be reached (a partition,
// a server restarting); the agent's loop must go on driving its units
// meanwhile, above all stopping them when the machine is cut off. The loop
// hands over the latest states with set; the publisher writes what differs
// from what it last wrote, and retries what failed.
type publisher struct {
	cfg     Config
	catalog *unitCatalog

	mu      sync.Mutex
	latest  map[string]registry.UnitState // what should be in Consul
	machine bool                          // a new session: the machine and every state must be published again
	record  registry.Machine              // the machine as it should be published
	changed bool                          // record changed: publish the machine again
	meta    map[string]string             // metadata for the catalog to show; nil when shown
	kick    chan struct{}                 // capacity 1: something to write

	published map[string]registry.UnitState // what is in Consul; the publisher's own
	node      []*api.TxnOp                  // the machine's catalog node to write, nil when written
}

// publishRetry is how soon a failed write is tried again.
const publishRetry = 2 * time.Second

// publishGather is how long the publisher waits after a change for more
// before it writes: short beside the time a unit takes to start.
const publishGather = 50 * time.Millisecond

func newPublisher(cfg Config) *publisher {
	return &publisher{cfg: cfg, record: cfg.Machine, kick: make(chan struct{}, 1), published: map[string]registry.UnitState{},
		catalog: newUnitCatalog(cfg.Machine.ID, cfg.Machine.IP)}
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
		// What changes comes in bursts (a batch's loads, then its starts,
		// then systemd's reports as each unit comes up): gathering them a
		// moment makes one transaction of many changes, and a unit loaded
		// and started meanwhile is written once.
		watch.Sleep(ctx, publishGather)
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
			p.catalog.reset()
			p.node = p.catalog.nodeOps(&record)
		} else if changed && p.node == nil {
			p.node = []*api.TxnOp{registry.NodeOp(&record, nil)}
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

// sync writes the machine's catalog node when it must, every state that
// differs from what was last written, and removes the states of units no
// longer here, each unit's entry in Consul's catalog going with its state,
// in as few transactions as Consul takes (registry.Publish). It reports
// whether every write went through; what failed is written again on the
// next sync.
func (p *publisher) sync(ctx context.Context, states map[string]registry.UnitState) bool {
	reg, session := p.cfg.Registry, p.cfg.Heartbeat.ID()
	var ws []registry.Write
	var done []func() // what each write's success records
	if p.node != nil {
		ws = append(ws, registry.MachineWrite(p.cfg.Machine.ID, p.node...))
		done = append(done, func() { p.node = nil })
	}
	for _, name := range slices.Sorted(maps.Keys(states)) {
		st := states[name]
		if p.published[name] == st {
			continue
		}
		ws = append(ws, reg.StateWrite(&st, session, p.catalog.ops(st)...))
		done = append(done, func() { p.published[name] = st; p.catalog.written(st) })
	}
	for _, name := range slices.Sorted(maps.Keys(p.published)) {
		if _, here := states[name]; here {
			continue
		}
		ws = append(ws, reg.StateDeleteWrite(name, p.cfg.Machine.ID, p.catalog.removeOps(name)...))
		done = append(done, func() { delete(p.published, name); p.catalog.removed(name) })
	}
	if len(ws) == 0 {
		return true
	}
	errs, err := reg.Publish(ctx, ws)
	if err != nil {
		p.cfg.Log.Warn("publishing unit states failed", "units", len(ws), "err", err)
		return false
	}
	ok := true
	for i, err := range errs {
		if err == nil {
			done[i]()
			continue
		}
		ok = false
		p.cfg.Log.Warn("publishing unit state failed", "write", ws[i].Name, "err", err)
		var held *registry.HeldError
		if errors.As(err, &held) {
			p.cfg.Heartbeat.ForgetStale(ctx, held.Holder) // the next sync writes it again
		}
	}
	return ok
}

// leave removes every unit's state and the machine's catalog node: the
// machine leaves the cluster. The publisher's own loop must have stopped.
func (p *publisher) leave(ctx context.Context) {
	p.node = []*api.TxnOp{registry.NodeDeleteOp(p.cfg.Machine.ID)}
	p.sync(ctx, map[string]registry.UnitState{})
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
