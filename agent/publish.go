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

	published map[string]registry.UnitState // what is in Consul in keys of their own; the publisher's own
	inMachine map[string]registry.UnitState // what the machine key holds (registry.MachineStatesWrite)
	byMachine bool                          // the cluster's schema has machine keys: write them
	checked   time.Time                     // when the schema was last read for byMachine
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
	layout := time.NewTimer(layoutIdle)
	defer layout.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-retry.C:
		case <-layout.C:
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
		p.readLayout(ctx)
		if machine {
			clear(p.published) // the new session holds none of them
			p.inMachine = nil
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
		if !p.byMachine {
			layout.Reset(layoutIdle)
		}
	}
}

// layoutCheck is how often at most an agent that writes a key per unit's
// state reads whether the cluster's schema has machine keys yet: when it
// has something to write, one small read beside the write, and when idle
// once every layoutIdle; never again once it has.
const (
	layoutCheck = time.Second
	layoutIdle  = 30 * time.Second
)

// readLayout reads whether the states go in the machine key, until they
// do: the leader stamps that schema only once, and never takes it back.
func (p *publisher) readLayout(ctx context.Context) {
	if p.byMachine || time.Since(p.checked) < layoutCheck {
		return
	}
	p.checked = time.Now()
	by, err := p.cfg.Registry.StatesByMachine(ctx)
	if err != nil {
		p.cfg.Log.Debug("reading the key schema failed; states stay in a key per unit", "err", err)
		return
	}
	if by {
		p.cfg.Log.Info("the cluster's key schema has machine keys: unit states go in this machine's key from now on", "most", registry.MachineStatesMax)
	}
	p.byMachine = by
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
	var pw pending
	if p.node != nil {
		pw.add(registry.MachineWrite(p.cfg.Machine.ID, p.node...), func() { p.node = nil })
	}
	keyed := p.keyed(states)
	catalog := p.machineKeyWrites(&pw, keyed, p.catalog.changes(states))
	for _, c := range catalog {
		pw.add(registry.CatalogWrite(c.name, c.ops...), c.done)
	}
	p.unitKeyWrites(&pw, states, keyed)
	p.serviceWrites(&pw, states)
	if len(pw.ws) == 0 {
		return true
	}
	errs, err := p.cfg.Registry.Publish(ctx, pw.ws)
	if err != nil {
		p.cfg.Log.Warn("publishing unit states failed", "writes", len(pw.ws), "err", err)
		return false
	}
	ok := true
	for i, err := range errs {
		if err == nil {
			pw.done[i]()
			continue
		}
		ok = false
		p.cfg.Log.Warn("publishing unit state failed", "write", pw.ws[i].Name, "err", err)
		var held *registry.HeldError
		if errors.As(err, &held) {
			p.cfg.Heartbeat.ForgetStale(ctx, held.Holder) // the next sync writes it again
		}
	}
	return ok
}

// pending is the writes of one sync, each with what its success records.
type pending struct {
	ws   []registry.Write
	done []func()
}

func (pw *pending) add(w registry.Write, done func()) {
	pw.ws, pw.done = append(pw.ws, w), append(pw.done, done)
}

// keyed is what of states goes in the machine key (registry.MachineStatesWrite):
// nothing until the cluster's schema has machine keys; then the units
// already there, and others in name order while there is room.
func (p *publisher) keyed(states map[string]registry.UnitState) map[string]registry.UnitState {
	keyed := map[string]registry.UnitState{}
	if !p.byMachine {
		return keyed
	}
	for name := range p.inMachine {
		if st, ok := states[name]; ok {
			keyed[name] = st
		}
	}
	for _, name := range slices.Sorted(maps.Keys(states)) {
		if len(keyed) >= registry.MachineStatesMax {
			break
		}
		keyed[name] = states[name]
	}
	return keyed
}

// machineKeyOps is how many catalog operations at most go in the machine
// key's own write, so that it fits a transaction beside the machine's
// catalog node; the rest go in writes of their own after it.
const machineKeyOps = 60

// machineKeyWrites writes the machine key when keyed differs from what it
// holds, with as many of the catalog's changes as fit beside it, and
// returns the rest, which go in writes of their own after it.
func (p *publisher) machineKeyWrites(pw *pending, keyed map[string]registry.UnitState, catalog []catalogChange) []catalogChange {
	if maps.Equal(keyed, p.inMachine) {
		return catalog
	}
	var ops []*api.TxnOp
	var dones []func()
	for len(catalog) > 0 && len(ops)+len(catalog[0].ops) <= machineKeyOps {
		ops, dones = append(ops, catalog[0].ops...), append(dones, catalog[0].done)
		catalog = catalog[1:]
	}
	w := p.cfg.Registry.MachineStatesWrite(p.cfg.Machine.ID, slices.Collect(maps.Values(keyed)), p.cfg.Heartbeat.ID(), ops...)
	pw.add(w, func() {
		p.inMachine = keyed
		for _, d := range dones {
			d()
		}
	})
	return catalog
}

// unitKeyWrites writes the state of each unit not in the machine key that
// differs from what was last written, and removes the keys of units no
// longer here or now in the machine key.
func (p *publisher) unitKeyWrites(pw *pending, states, keyed map[string]registry.UnitState) {
	reg, session := p.cfg.Registry, p.cfg.Heartbeat.ID()
	for _, name := range slices.Sorted(maps.Keys(states)) {
		st := states[name]
		if _, in := keyed[name]; in || p.published[name] == st {
			continue
		}
		pw.add(reg.StateWrite(&st, session), func() { p.published[name] = st })
	}
	for _, name := range slices.Sorted(maps.Keys(p.published)) {
		_, here := states[name]
		if _, in := keyed[name]; here && !in {
			continue // still in its own key
		}
		// Gone, or moved to the machine key, which the writes before this one write.
		pw.add(reg.StateDeleteWrite(name, p.cfg.Machine.ID), func() { delete(p.published, name) })
	}
}

// serviceWrites remove, after the units' own removals, the service
// instances none of whose units is left, and their checks with them.
func (p *publisher) serviceWrites(pw *pending, states map[string]registry.UnitState) {
	alive := map[string]bool{}
	for name := range states {
		alive[ServiceName(name)] = true
	}
	for _, svc := range p.catalog.gone(alive) {
		pw.add(registry.CatalogWrite("service "+svc, registry.ServiceDeleteOp(p.cfg.Machine.ID, svc)), func() { p.catalog.serviceRemoved(svc) })
	}
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
