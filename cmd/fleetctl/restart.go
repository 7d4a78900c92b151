package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
)

func newRestartCmd(c *cli) *cobra.Command {
	var b blockOptions
	cmd := &cobra.Command{
		Use:   "restart UNIT...",
		Short: "Instruct systemd to restart one or more units in the cluster",
		Long: `Restart stops and starts each unit where it runs, one unit after the other.

A launched unit is set to loaded, and once its machine reports it stopped, to
launched again; a loaded unit is started. A unit whose desired state is
inactive cannot be restarted. A global unit is cycled the same way on every
machine that runs it. --no-block still waits for the stop, without which
nothing would restart, but not for the start.`,
		RunE: c.withUnits(func(ctx context.Context, units []unitArg) error {
			jobs, err := c.existing(ctx, units)
			if err != nil {
				return err
			}
			for _, j := range jobs {
				if j.Desired == registry.Inactive {
					return fmt.Errorf("Unable to restart unit %s in state inactive", j.Name)
				}
			}
			return c.restart(ctx, jobs, b)
		}),
	}
	addBlockFlags(cmd, &b)
	return cmd
}

// restart cycles each job through loaded and back to launched, in fleet's
// order: scheduled units in the order given, then global units.
//
// # Notes
//
// fleet waited for launched after setting loaded, so a launched unit could
// be set back to launched before its machine ever stopped it; here each
// step waits for its own state. fleet also skipped global units; here they
// are cycled like the others, waiting for every machine that runs them.
func (c *cli) restart(ctx context.Context, jobs []*registry.Job, b blockOptions) error {
	var scheduled, global []*registry.Job
	seen := map[string]bool{}
	for _, j := range jobs {
		if seen[j.Name] {
			continue
		}
		seen[j.Name] = true
		if j.Global() {
			global = append(global, j)
		} else {
			scheduled = append(scheduled, j)
		}
	}
	all := append(scheduled, global...)
	if len(all) > 1 {
		defer c.live.set("")
	}
	for i, j := range all {
		if len(all) > 1 {
			c.live.set(fmt.Sprintf("restarting: %d/%d units", i, len(all)))
		}
		items := []waitItem{{name: j.Name}}
		if i >= len(scheduled) {
			// A global unit: wait for the copy on every machine that runs
			// it now, or that fleet's rules give it to and has yet to report.
			s, err := c.snapshot(ctx)
			if err != nil {
				return err
			}
			items = nil
			for _, id := range s.MachineIDs() {
				if s.States[j.Name][id] != nil || shouldRun(s, id, j.Name) {
					items = append(items, waitItem{name: j.Name, machine: id})
				}
			}
		}
		if err := c.cycle(ctx, j, items, b); err != nil {
			return err
		}
	}
	return nil
}

// cycle sets a launched job to loaded and waits until every item got there,
// then sets it to launched and, unless told not to block, waits until every
// item runs again.
func (c *cli) cycle(ctx context.Context, j *registry.Job, items []waitItem, b blockOptions) error {
	reg, err := c.registry()
	if err != nil {
		return err
	}
	if j.Desired == registry.Launched {
		if err := reg.SetDesired(ctx, j.Name, registry.Loaded); err != nil {
			return c.consulErr(err)
		}
		if err := c.waitForItems(ctx, items, registry.Loaded, b, false); err != nil {
			return err
		}
	}
	if err := reg.SetDesired(ctx, j.Name, registry.Launched); err != nil {
		return c.consulErr(err)
	}
	if b.noBlock || len(items) == 0 {
		kind := "unit"
		if j.Global() {
			kind = "global unit"
		}
		c.live.printf(c.out, "Triggered %s %s start\n", kind, j.Name)
		return nil
	}
	return c.waitForItems(ctx, items, registry.Launched, b, true)
}
