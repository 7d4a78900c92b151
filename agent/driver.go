package agent

import (
	"context"

	"github.com/wasmfleet/fleet/internal/unitfile"
)

// Driver runs units on this machine. The systemd driver and the process
// supervisor for dev mode both implement it.
//
// # Notes
//
//   - The agent does the tasks of one kind for many units at once (all the
//     loads, then all the starts, ...), so calls for different units come
//     from different goroutines together; calls for one unit come one at a
//     time, and a Driver need not order them itself.
//   - Start and Stop return once the init system has done the job (or failed
//     it), not when the request was queued.
type Driver interface {
	// Load installs the unit under name, replacing any earlier body.
	Load(ctx context.Context, name string, f *unitfile.File) error
	// Start starts a loaded unit.
	Start(ctx context.Context, name string) error
	// Stop stops a unit; it stays loaded.
	Stop(ctx context.Context, name string) error
	// Unload stops the unit if it runs and removes it.
	Unload(ctx context.Context, name string) error
	// Sync makes the init system see the loads and unloads made since the
	// last Sync (systemd's daemon-reload), once for a whole batch.
	Sync(ctx context.Context) error
	// Existing reports the units the driver finds already installed when
	// fleetd starts (after a restart), so they are adopted, not restarted.
	Existing(ctx context.Context) (map[string]Have, error)
	// State is what the init system says of the unit now.
	State(name string) UnitState
	// Changes fires (coalesced) whenever some unit's State may have changed.
	Changes() <-chan struct{}
}

// UnitState is a unit's state in systemd's words.
type UnitState struct {
	Load   string // loaded, not-found, bad-setting, error
	Active string // active, inactive, activating, deactivating, failed
	Sub    string // running, dead, failed, exited, ...
	// Error is the init system's own complaint about the unit, if any
	// (a bad ExecStart, an unknown directive).
	Error string
}
