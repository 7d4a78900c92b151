package leader

import (
	"context"
	"errors"
	"log/slog"
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
	for ctx.Err() == nil {
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
		err = lead(ctx, cfg, session)
		cfg.Metrics.leading(false)
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = cfg.Registry.ReleaseLeader(rctx, session)
			cancel()
			return nil
		}
		cfg.Log.Warn("lost leadership", "err", err)
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

// followed are the subtrees of fleet's prefix the leader follows: all but
// states/, which machines write with each unit they start or stop, and
// which Reconcile does not need.
var followed = []string{"units/", "jobs/", "placement/", "schedule/", "machines/", "machine-metadata/",
	"policies/", "policy-default", "leader"}

// lead reconciles until the lock is lost: a pass for each change of what it
// follows. Each subtree is read by a blocking query of its own (Follow), so
// a pass may see one subtree newer than another; after writing, the leader
// waits for a view of the subtrees it wrote that holds its writes, so it
// never decides again on what it has just changed.
func lead(ctx context.Context, cfg Config, session string) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snaps := make(chan *registry.Snapshot, 1)
	go cfg.Registry.Follow(fctx, followed, time.Minute, cfg.Log, snaps)
	var wrote map[string]uint64 // index by subtree of the last pass's writes
	var wroteAt time.Time
	for {
		var s *registry.Snapshot
		select {
		case <-ctx.Done():
			return ctx.Err()
		case s = <-snaps:
		}
		if !holds(s, wrote) && time.Since(wroteAt) < holdsWait {
			continue
		}
		if s.LeaderSession != session {
			return errDeposed
		}
		start := time.Now()
		plan := Reconcile(ctx, s, cfg.Placer)
		at, err := write(ctx, cfg, s, plan, session)
		if err != nil {
			return err
		}
		wrote, wroteAt = at, time.Now()
		cfg.Metrics.reconciled(start, plan)
		// Our own writes wake the next read at once; a short pause lets a
		// burst of changes (fleetctl start of many units) land first.
		watch.Sleep(ctx, 50*time.Millisecond)
	}
}

// holdsWait bounds the wait for a view that holds the leader's writes: an
// index that went backwards (Consul restored from a snapshot) never reaches
// them.
const holdsWait = 10 * time.Second

// holds reports whether s was read after the writes at (subtree -> index).
func holds(s *registry.Snapshot, at map[string]uint64) bool {
	for sub, i := range at {
		if s.Indexes[sub] < i {
			return false
		}
	}
	return true
}

// write applies plan in as few transactions as Consul allows (the schedule
// actions, the machines' schedules, why units are unplaced) and logs each
// change. It returns where its writes are (WriteAll), and only ErrNotLeader
// or ctx's error: a write refused because its unit changed meanwhile is
// decided again on the next pass.
func write(ctx context.Context, cfg Config, s *registry.Snapshot, plan Plan, session string) (map[string]uint64, error) {
	ws := Writes(cfg.Registry, s, plan)
	if len(ws) == 0 {
		return nil, nil
	}
	done, at, err := cfg.Registry.WriteAll(ctx, session, ws)
	if errors.Is(err, registry.ErrNotLeader) || ctx.Err() != nil {
		return nil, err
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
			cfg.Log.Info("schedule changed", "unit", a.Job.Name, "machine", a.Machine, "kind", a.Kind.String(), "policy", a.Policy)
		} else {
			cfg.Log.Info("schedule changed", "unit", a.Job.Name, "machine", a.Machine, "kind", a.Kind.String(), "cause", string(a.Cause), "reason", a.Reason)
		}
	}
	for _, u := range plan.Unplaced {
		if s.Jobs[u.Job.Name].Unplaced != u.Reason {
			cfg.Log.Warn("unit cannot be placed", "unit", u.Job.Name, "cause", string(u.Cause), "reason", u.Reason)
		}
	}
	return at, nil
}

var errChanged = errors.New("unit changed since it was read; the next pass decides again")
