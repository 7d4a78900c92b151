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
	return fmt.Sprintf("the cluster's keys are in schema version %d, and the fleetd of %s cannot read version %d, to which this fleetd would move them; this machine competes for the leader lock once every machine runs a fleetd that knows version %d",
		s.Version, strings.Join(short, ", "), registry.SchemaVersion, registry.SchemaVersion)
}

// leadable reads what leadBlocker decides on and returns its answer with
// the schema read: in one read when the keys are stamped in this build's
// schema (current), as they usually are.
func leadable(ctx context.Context, r *registry.Registry) (s registry.Schema, why string, err error) {
	if s, err = r.ReadSchema(ctx); err != nil || current(s) {
		return s, "", err
	}
	live, err := r.Subtrees(ctx, "machines/")
	if err != nil {
		return s, "", err
	}
	return s, leadBlocker(s, live.Machines), nil
}

// current reports whether s is stamped in this build's schema: nothing to
// migrate.
func current(s registry.Schema) bool { return s.Stamped && s.Version == registry.SchemaVersion }

// mayLead reports whether this build may compete for the leader lock now
// (leadBlocker). When it may not, it logs why (once for each new reason,
// said holds the last) and waits a while before it answers false. When
// Consul does not answer it may: the lock cannot be taken either, and
// Run's retry of that is the one to wait on, so that a leader is elected
// as soon as Consul is back (migrate asks again under the lock).
func mayLead(ctx context.Context, cfg Config, said *string) bool {
	_, why, err := leadable(ctx, cfg.Registry)
	if err != nil {
		return true
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

// cannotLeadError is a lock taken that this build must give up
// (leadBlocker).
type cannotLeadError struct{ why string }

func (e *cannotLeadError) Error() string { return e.why }

// migrate brings the keys to this build's schema, under the lock session
// holds, before the first reconcile pass, and logs what it did: when no
// live machine keeps it from leading, which it asks again now that it
// holds the lock (a *cannotLeadError when one does). After a failure it
// waits a while before it answers.
func migrate(ctx context.Context, cfg Config, session string) error {
	s, why, err := leadable(ctx, cfg.Registry)
	switch {
	case why != "":
		return &cannotLeadError{why}
	case err == nil && current(s):
		return nil
	}
	var m *registry.Migration
	if err == nil {
		m, err = cfg.Registry.Migrate(ctx, session)
	}
	if err != nil {
		// Run competes again at once: a refusal (the token may not write
		// the keys, say) would be retried without pause.
		watch.Sleep(ctx, 5*time.Second)
		return fmt.Errorf("key schema migration: %w", err)
	}
	if m == nil {
		return nil
	}
	if m.Unstamped != "" {
		cfg.Log.Warn("key schema version not stamped: the leader's Consul token may not write it, and the machines report their units' states in the older layout, one key each; add the schema rule of contrib/acl/leader.hcl to its policy", "err", m.Unstamped)
		return nil
	}
	for key, why := range m.Kept {
		cfg.Log.Warn("key schema migration left a key it cannot move", "key", key, "reason", why)
	}
	cfg.Log.Info("key schema migrated", "from", m.From, "to", m.To, "units", m.Units, "kept", len(m.Kept))
	return nil
}
