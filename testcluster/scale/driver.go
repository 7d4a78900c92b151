package scale

import (
	"context"
	"maps"
	"sync"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// MemDriver is an agent.Driver that runs nothing: a unit is loaded, started
// and stopped by recording it, so the agent acknowledges it at once. It
// stands in for systemd in the scale harness, where only the cluster's
// traffic matters.
type MemDriver struct {
	mu      sync.Mutex
	units   map[string]agent.UnitState
	changes chan struct{}
}

// NewMemDriver returns a driver with no units.
func NewMemDriver() *MemDriver {
	return &MemDriver{units: map[string]agent.UnitState{}, changes: make(chan struct{}, 1)}
}

var (
	loaded  = agent.UnitState{Load: "loaded", Active: "inactive", Sub: "dead"}
	running = agent.UnitState{Load: "loaded", Active: "active", Sub: "running"}
	absent  = agent.UnitState{Load: "not-found", Active: "inactive", Sub: "dead"}
)

func (d *MemDriver) set(name string, st *agent.UnitState) error {
	d.mu.Lock()
	if st == nil {
		delete(d.units, name)
	} else {
		d.units[name] = *st
	}
	d.mu.Unlock()
	select {
	case d.changes <- struct{}{}:
	default:
	}
	return nil
}

// Load implements agent.Driver.
func (d *MemDriver) Load(_ context.Context, name string, _ *unitfile.File) error {
	return d.set(name, &loaded)
}

// Start implements agent.Driver.
func (d *MemDriver) Start(_ context.Context, name string) error { return d.set(name, &running) }

// Stop implements agent.Driver.
func (d *MemDriver) Stop(_ context.Context, name string) error { return d.set(name, &loaded) }

// Unload implements agent.Driver.
func (d *MemDriver) Unload(_ context.Context, name string) error { return d.set(name, nil) }

// Sync implements agent.Driver; there is no init system to reload.
func (d *MemDriver) Sync(context.Context) error { return nil }

// Existing implements agent.Driver: a simulated machine starts empty.
func (d *MemDriver) Existing(context.Context) (map[string]agent.Have, error) {
	return map[string]agent.Have{}, nil
}

// State implements agent.Driver.
func (d *MemDriver) State(name string) agent.UnitState {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.units[name]; ok {
		return st
	}
	return absent
}

// Changes implements agent.Driver.
func (d *MemDriver) Changes() <-chan struct{} { return d.changes }

// Units returns every unit the driver holds and its state.
func (d *MemDriver) Units() map[string]agent.UnitState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.units)
}
