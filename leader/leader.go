package leader

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/watch"
)

// Config is what a leader candidate needs.
type Config struct {
	Registry  *registry.Registry
	MachineID string
	// Session returns the machine's current Consul session; the lock is
	// held with it, so the lock dies with the machine.
	Session func() string
	// Placer chooses machines; required (fleetd's is policies.Placer).
	Placer Placer
	Log    *slog.Logger
	// Metrics records reconcile passes and placements; nil records nothing.
	Metrics *Metrics
}

// ErrNoPlacer is Run's answer to a Config without a Placer: a leader
// without one cannot honour fleet's rules, and there is no fallback.
var ErrNoPlacer = errors.New("leader: Config.Placer is nil")

// Run competes for the leader lock and, while holding it, reconciles on
// every change in the cluster. It returns when ctx is done, releasing the
// lock so another machine takes over at once, and at once with ErrNoPlacer
// when cfg has no Placer.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Placer == nil {
		return ErrNoPlacer
	}
	cfg.Placer = cfg.Metrics.placer(cfg.Placer)
	cfg.Metrics.leading(false)
	var said string // why this machine last did not compete, if it did not
	for ctx.Err() == nil {
		if !mayLead(ctx, cfg, &said) {
			continue
		}
		session := cfg.Session()
		ok, err := cfg.Registry.AcquireLeader(ctx, session, cfg.MachineID)
		if err != nil {
			if ctx.Err() == nil {
				cfg.Log.Warn("leader election: Consul unreachable, retrying", "err", err)
				watch.Sleep(ctx, 2*time.Second)
			}
			continue
		}
		if !ok {
			waitForVacancy(ctx, cfg.Registry)
			continue
		}
		cfg.Log.Info("became leader")
		cfg.Metrics.leading(true)
		if err = migrate(ctx, cfg, session); err == nil {
			err = lead(ctx, cfg, session)
		}
		cfg.Metrics.leading(false)
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = cfg.Registry.ReleaseLeader(rctx, session)
			cancel()
			return nil
		}
		cfg.Log.Warn("lost leadership", "err", err)
		if errors.As(err, new(*registry.SchemaError)) || errors.As(err, new(*cannotLeadError)) {
			// Keys this build cannot lead: a machine that can, leads.
			_ = cfg.Registry.ReleaseLeader(ctx, session)
		}
	}
	return nil
}

// waitForVacancy blocks until nobody holds the leader lock. When the lock
// is already vacant, an acquire was refused because of Consul's lock-delay
// after the last holder's session died; nothing will change the key, so it
// waits a moment instead of blocking.
func waitForVacancy(ctx context.Context, r *registry.Registry) {
	holder, index, err := r.Leader(ctx, 0)
	for ctx.Err() == nil {
		if err != nil {
			watch.Sleep(ctx, time.Second)
			return
		}
		if holder == "" {
			watch.Sleep(ctx, 100*time.Millisecond)
			return
		}
		holder, index, err = r.Leader(ctx, max(index, 1))
		if holder == "" && err == nil {
			return
		}
	}
}

var errDeposed = errors.New("leader lock is no longer held by this machine")

// followed are the subtrees of fleet's prefix the leader follows: what
// others write, but for states/, which machines write with each unit they
// start or stop, and which Reconcile does not need. owned are those only
// the leader writes, which its View keeps.
var (
	followed = []string{"units/", "jobs/", "machines/", "machine-metadata/", "policies/", "policy-default", "leader", "schema"}
	owned    = []string{"placement/", "schedule/"}
)

// lead reconciles until the lock is lost: a pass for each change of what it
// follows (registry.View), and one more after each pass that wrote
// something, until a pass writes nothing, as a pass's writes can leave work
// for the next (a unit displaced by a replacer placed beside it). Before a
// pass it gathers what else changes meanwhile (gatherFor).
func lead(ctx context.Context, cfg Config, session string) error {
	view, err := cfg.Registry.View(ctx, owned...)
	if err != nil {
		return err
	}
	if err := cfg.Registry.KeepChangesDir(ctx); err != nil {
		cfg.Log.Warn("in a burst of submits the leader waits its longest before each pass, not until fleetctl's writes stop", "most", gatherMost, "err", err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	follower := view.Follow(fctx, followed, time.Minute, cfg.Log)
	var ended time.Time   // when the last pass ended
	forgetFailed := false // refused by ACL, told once
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-follower.Changed():
		}
		g := gatherFor(time.Since(ended))
		follower.Quiet(ctx, g.quiet, g.most, g.blind)
		rd, err := follower.Read(ctx)
		if err != nil {
			return err
		}
		s := view.Snapshot(rd)
		if s.LeaderSession != session {
			return errDeposed
		}
		if s.Schema.Version > registry.SchemaVersion { // a newer fleetd migrated the keys
			return &registry.SchemaError{Found: s.Schema.Version, Known: registry.SchemaVersion}
		}
		start := time.Now()
		plan := Reconcile(ctx, s, cfg.Placer)
		wrote, err := write(ctx, cfg, view, s, plan, session)
		if err != nil {
			return err
		}
		if err := follower.Forget(ctx, session); errors.Is(err, registry.ErrNotLeader) {
			return err
		} else if errors.As(err, new(*registry.PermissionError)) && !forgetFailed {
			cfg.Log.Warn("the leader may not remove the change log's entries: it reads every unit at each pass instead (contrib/acl/leader.hcl)", "err", err)
			forgetFailed = true
		} else if err != nil {
			cfg.Log.Warn("removing read entries of the change log failed; they are read again", "err", err)
		}
		cfg.Metrics.reconciled(start, plan)
		if wrote {
			view.Poke()
		}
		ended = time.Now()
	}
}

// How long a leader gathers changes before a pass (gatherFor).
const (
	gatherLeast = 50 * time.Millisecond  // after a quiet spell: until no unit was written for this long
	gatherSpell = time.Second            // no pass ended for this long: a quiet spell
	gatherQuiet = 250 * time.Millisecond // in a burst: until no unit was written for this long
	gatherMost  = 2 * time.Second        // never longer than this
)

// gather is how long the leader waits, once a change woke it, for more
// changes before a pass (Follower.Quiet): until no unit was written for
// quiet, at most most, and blind when the change log cannot tell.
type gather struct{ quiet, most, blind time.Duration }

// gatherFor is the wait before a pass, given how long ago the last pass
// ended. After a quiet spell a change waits until no unit was written for
// gatherLeast: a fleetctl start of a few units is held back that long, and
// one of many units, whose transactions land one after the other, is
// placed whole in one pass rather than its first transactions in one and
// the rest in the next. Within a burst (fleetctl start of many units,
// command after command) the pass waits until the submits pause for
// gatherQuiet. Either waits at most gatherMost: each machine then gets its
// units in few schedule writes, wakes and state transactions, which is
// what a unit costs the cluster (RATIONALE.md). When the log cannot tell
// (its directory key missing), a change after a quiet spell waits
// gatherLeast and one in a burst gatherMost.
func gatherFor(since time.Duration) gather {
	if since > gatherSpell {
		return gather{quiet: gatherLeast, most: gatherMost, blind: gatherLeast}
	}
	return gather{quiet: gatherQuiet, most: gatherMost, blind: gatherMost}
}

// write applies plan in as few transactions as Consul allows (the schedule
// actions, the machines' schedules, why units are unplaced) through view,
// which keeps them, and logs each change. It reports whether it wrote
// anything. A write refused because its unit changed meanwhile is decided
// again on the next pass, on the view read again from Consul; the error is
// ErrNotLeader, ctx's, or a failure to read the view again, after which the
// leader starts over.
func write(ctx context.Context, cfg Config, view *registry.View, s *registry.Snapshot, plan Plan, session string) (bool, error) {
	ws := Writes(cfg.Registry, s, plan)
	if len(ws) == 0 {
		return false, nil
	}
	done, err := view.WriteAll(ctx, session, ws)
	if errors.Is(err, registry.ErrNotLeader) || ctx.Err() != nil {
		return false, err
	}
	if slices.Contains(done, false) {
		if err := view.Reload(ctx); err != nil {
			return true, err
		}
	}
	why := errChanged
	if err != nil { // Consul refused, or failed: not a conflict
		cfg.Log.Warn("schedule write failed; the next pass decides again", "err", err)
		why = err
	}
	// Writes begins with one write per action, in order.
	for i, a := range plan.Actions {
		if !done[i] {
			cfg.Metrics.applied(a, why)
			cfg.Log.Warn("schedule write failed", "action", a.String(), "err", why)
			continue
		}
		cfg.Metrics.applied(a, nil)
		if a.Kind == Schedule {
			cfg.Log.Info("schedule changed", "unit", a.Job.Name, "target", a.Machine, "kind", a.Kind.String(), "policy", a.Policy)
		} else {
			cfg.Log.Info("schedule changed", "unit", a.Job.Name, "target", a.Machine, "kind", a.Kind.String(), "cause", string(a.Cause), "reason", a.Reason)
		}
	}
	for _, u := range plan.Unplaced {
		if s.Jobs[u.Job.Name].Unplaced != u.Reason {
			cfg.Log.Warn("unit cannot be placed", "unit", u.Job.Name, "cause", string(u.Cause), "reason", u.Reason)
		}
	}
	return true, nil
}

var errChanged = errors.New("unit changed since it was read; the next pass decides again")
