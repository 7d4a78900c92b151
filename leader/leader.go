package leader

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
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
				sleep(ctx, 2*time.Second)
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
			sleep(ctx, time.Second)
			return
		}
		if holder == "" {
			sleep(ctx, 100*time.Millisecond)
			return
		}
		holder, index, err = r.Leader(ctx, max(index, 1))
		if holder == "" && err == nil {
			return
		}
	}
}

var errDeposed = errors.New("leader lock is no longer held by this machine")

// lead reconciles until the lock is lost.
func lead(ctx context.Context, cfg Config, session string) error {
	var index uint64
	for ctx.Err() == nil {
		s, err := cfg.Registry.Snapshot(ctx, index, time.Minute)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			cfg.Log.Warn("reading the cluster failed, retrying", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if s.Index < index {
			index = 0
			continue
		}
		index = max(s.Index, 1)
		if s.LeaderSession != session {
			return errDeposed
		}
		start := time.Now()
		plan := Reconcile(ctx, s, cfg.Placer)
		if err := write(ctx, cfg, s, plan, session); err != nil {
			return err
		}
		cfg.Metrics.reconciled(start, plan)
		// Our own writes wake the next blocking read at once; a short pause
		// lets a burst of changes (fleetctl start of many units) land first.
		sleep(ctx, 50*time.Millisecond)
	}
	return ctx.Err()
}

// write applies plan in as few transactions as Consul allows (the schedule
// actions, the machines' schedules, why units are unplaced) and logs each
// change. It returns only ErrNotLeader or ctx's error: a write refused
// because its unit changed meanwhile is decided again on the next pass.
func write(ctx context.Context, cfg Config, s *registry.Snapshot, plan Plan, session string) error {
	ws := Writes(cfg.Registry, s, plan)
	if len(ws) == 0 {
		return nil
	}
	done, err := cfg.Registry.WriteAll(ctx, session, ws)
	if errors.Is(err, registry.ErrNotLeader) || ctx.Err() != nil {
		return err
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
	return nil
}

var errChanged = errors.New("unit changed since it was read; the next pass decides again")

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
