package leader

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/watch"
)

// leadBlocker says why this build must not lead a cluster whose keys are
// in schema s, with machines live, and "" when it may: the keys are in a
// newer schema than it knows, or in an older one that it would migrate
// but some live machine's fleetd could not read afterwards. That machine
// leads meanwhile, in the schema it knows.
func leadBlocker(s registry.Schema, machines map[string]*registry.Machine) string {
	if s.Version > registry.SchemaVersion {
		return (&registry.SchemaError{Found: s.Version, Known: registry.SchemaVersion}).Error()
	}
	blockers := registry.SchemaBlockers(s, machines)
	if len(blockers) == 0 {
		return ""
	}
	short := make([]string, len(blockers))
	for i, id := range blockers {
		short[i] = registry.ShortID(id)
	}
	return fmt.Sprintf("the cluster's units are in key schema version %d, and the fleetd of %s cannot read version %d, to which this fleetd would move them; this machine competes for the leader lock once every machine runs a fleetd that knows version %d",
		s.Version, strings.Join(short, ", "), registry.SchemaVersion, registry.SchemaVersion)
}

// mayLead reports whether this build may compete for the leader lock now
// (leadBlocker). When it may not, it logs why (once for each new reason,
// said holds the last) and waits a while before it answers false.
func mayLead(ctx context.Context, cfg Config, said *string) bool {
	s, err := cfg.Registry.ReadSchema(ctx)
	if err == nil && s.Stamped && s.Version == registry.SchemaVersion {
		return true // the usual case, in one read
	}
	var why string
	if err == nil {
		var live *registry.Snapshot
		if live, err = cfg.Registry.Subtrees(ctx, "machines/"); err == nil {
			why = leadBlocker(s, live.Machines)
		}
	}
	if err != nil {
		why = err.Error()
	}
	if why == "" {
		*said = ""
		return true
	}
	if why != *said {
		cfg.Log.Warn("not competing for the leader lock", "reason", why)
		*said = why
	}
	watch.Sleep(ctx, 5*time.Second)
	return false
}

// migrate brings the keys to this build's schema, under the lock session
// holds, before the first reconcile pass, and logs what it did. After a
// failure it waits a while before it answers.
func migrate(ctx context.Context, cfg Config, session string) error {
	m, err := cfg.Registry.Migrate(ctx, session)
	if err != nil {
		// Run competes again at once: a refusal (the token may not write
		// the keys, say) would be retried without pause.
		watch.Sleep(ctx, 5*time.Second)
		return fmt.Errorf("key schema migration: %w", err)
	}
	if m == nil {
		return nil
	}
	for key, why := range m.Kept {
		cfg.Log.Warn("key schema migration left a key it cannot move", "key", key, "reason", why)
	}
	cfg.Log.Info("key schema migrated", "from", m.From, "to", m.To, "units", m.Units, "kept", len(m.Kept))
	return nil
}
