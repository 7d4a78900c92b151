package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
)

func newDestroyCmd(c *cli) *cobra.Command {
	var b blockOptions
	cmd := &cobra.Command{
		Use:   "destroy UNIT...",
		Short: "Destroy one or more units in the cluster",
		RunE: c.withUnits(func(ctx context.Context, units []unitArg) error {
			return c.destroy(ctx, units, b)
		}),
	}
	addBlockFlags(cmd, &b)
	return cmd
}

func (c *cli) destroy(ctx context.Context, units []unitArg, b blockOptions) error {
	reg, err := c.registry()
	if err != nil {
		return err
	}
	destroyed, err := c.present(ctx, units)
	if err != nil {
		return err
	}
	if err := reg.DestroyJobs(ctx, destroyed); err != nil {
		return c.consulErr(err)
	}
	for _, n := range destroyed {
		fmt.Fprintf(c.out, "Destroyed %s\n", n)
	}
	if len(destroyed) == 0 {
		fmt.Fprintln(c.out, "Units not found in registry")
		return nil
	}
	if b.noBlock {
		return nil
	}
	// fleet's docs promise destroy waits until the units are gone; its code
	// only waited with --no-block (a bug). Wait until no machine reports them.
	var deadline time.Time
	if b.attempts > 0 {
		deadline = time.Now().Add(time.Duration(b.attempts) * attemptPeriod)
	}
	if len(destroyed) > 1 {
		defer c.live.set("")
	}
	r, err := c.reader()
	if err != nil {
		return err
	}
	read := func(ctx context.Context) (*registry.Snapshot, error) { return r.Tracking(ctx, destroyed, true) }
	return c.watchUntil(ctx, r, read, func(s *registry.Snapshot) (bool, error) {
		left, gone := 0, 0
		for _, n := range destroyed {
			left += len(s.States[n])
			if len(s.States[n]) == 0 {
				gone++
			}
		}
		if left == 0 {
			return true, nil
		}
		if len(destroyed) > 1 {
			c.live.set(fmt.Sprintf("waiting: %d/%d units off their machines", gone, len(destroyed)))
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return false, fmt.Errorf("units %v are destroyed but still reported by %d machine(s) after %d block attempts", destroyed, left, b.attempts)
		}
		return false, nil
	})
}

// present names the given units that exist, each once, in the order given.
func (c *cli) present(ctx context.Context, units []unitArg) ([]string, error) {
	restore, err := c.pinned(ctx, units)
	if err != nil {
		return nil, err
	}
	defer restore()
	var names []string
	seen := map[string]bool{}
	for _, u := range units {
		if _, err := c.job(ctx, u.name); errors.Is(err, registry.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, c.consulErr(err)
		}
		if !seen[u.name] {
			seen[u.name] = true
			names = append(names, u.name)
		}
	}
	return names, nil
}
