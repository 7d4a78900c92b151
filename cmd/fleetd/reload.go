package main

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/config"
)

// liveOptions are the options a reload (SIGHUP) applies to a running
// fleetd; any other that changed takes effect at the next restart.
var liveOptions = []string{"metadata", "verbosity", "metrics-addr"}

// secretOptions are never logged.
var secretOptions = []string{"token"}

// reloader applies a new configuration to a running fleetd without
// touching its units.
type reloader struct {
	cmdline map[string]string // flags from the command line: they keep winning
	running map[string]string // each option's value in force
	log     *slog.Logger
	level   *slog.LevelVar
	agent   *agent.Agent
	hb      *agent.Heartbeat
	metrics *metricsServer
}

// reload reads the configuration as fleetd did when it started (command
// line, then FLEET_* environment, then the file) and applies what changed
// and can change live. A configuration that does not load or parse is
// logged and changes nothing.
func (r *reloader) reload(ctx context.Context) {
	n := &agentOptions{}
	fs := pflag.NewFlagSet("fleetd", pflag.ContinueOnError)
	n.addFlags(fs)
	for name, v := range r.cmdline {
		if err := fs.Set(name, v); err != nil {
			r.log.Error("configuration reload failed; the running configuration stays", "err", err)
			return
		}
	}
	if err := n.loadConfig(fs); err != nil {
		r.log.Error("configuration reload failed; the running configuration stays", "err", err)
		return
	}
	n.warnUnknown(r.log)
	md, err := config.ParseMetadata(n.metadata)
	if err != nil {
		r.log.Error("configuration reload failed; the running configuration stays", "err", err)
		return
	}
	values := flagValues(fs, false)
	var applied, restart []string
	for _, name := range sortedKeys(values) {
		old, now := r.running[name], values[name]
		if old == now || name == "config" {
			continue
		}
		shown := []any{"option", name, "running", old, "configured", now}
		if slices.Contains(secretOptions, name) {
			shown = []any{"option", name}
		}
		if !slices.Contains(liveOptions, name) {
			r.log.Warn("option changed; it takes effect when fleetd restarts", shown...)
			restart = append(restart, name)
			continue
		}
		switch name {
		case "metadata":
			r.agent.SetMetadata(md)
		case "verbosity":
			r.level.Set(logLevel(n.verbosity))
		case "metrics-addr":
			bound, err := r.metrics.listen(now)
			if err != nil {
				r.log.Error("metrics address not changed", "err", err)
				continue
			}
			go func() {
				// The catalog shows where to scrape; Consul may be slow.
				ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if err := r.hb.SetMetricsAddr(ctx, bound); err != nil {
					r.log.Warn("showing the new metrics address in Consul's catalog failed", "err", err)
				}
			}()
			if bound != "" {
				r.log.Info("serving Prometheus metrics", "url", "http://"+bound+"/metrics")
			}
		}
		r.running[name] = now
		applied = append(applied, name)
		r.log.Info("option reloaded", shown...)
	}
	r.log.Info("configuration reloaded; units untouched", "file", n.configFile, "applied", applied, "need-restart", restart)
}

// flagValues returns the value of every option of fs, or with changed only
// of those set so far (on the command line, before the configuration is
// applied).
func flagValues(fs *pflag.FlagSet, changed bool) map[string]string {
	out := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		if !changed || f.Changed {
			out[f.Name] = f.Value.String()
		}
	})
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func logLevel(verbosity int) slog.Level {
	if verbosity > 0 {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
