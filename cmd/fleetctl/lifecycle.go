package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/sdk/xfleet"
)

// lifecycleOptions are the flags of submit, load, start, stop and unload.
type lifecycleOptions struct {
	block   blockOptions
	replace bool
	sign    bool
}

func addBlockFlags(cmd *cobra.Command, b *blockOptions) {
	cmd.Flags().IntVar(&b.attempts, "block-attempts", 0, "wait until the units reach their state, at most N attempts of 2s each; 0 waits forever")
	cmd.Flags().BoolVar(&b.noBlock, "no-block", false, "do not wait until the units reach their state")
}

func addReplaceFlags(cmd *cobra.Command, o *lifecycleOptions) {
	cmd.Flags().BoolVar(&o.replace, "replace", false, "replace units already in the cluster whose local file differs")
	cmd.Flags().BoolVar(&o.sign, "sign", false, "deprecated, ignored: unit signing was removed from fleet")
	_ = cmd.Flags().MarkHidden("sign")
}

// noUnits is fleet's answer to a command given no units: a message, exit 0.
func (c *cli) noUnits() error {
	fmt.Fprintln(c.errOut, "No units given")
	return nil
}

// activate creates missing units, moves every unit to desired, and waits.
// replaceFrom lists the desired states in which --replace may overwrite a
// unit, per fleet's matrix.
func (c *cli) activate(ctx context.Context, o *lifecycleOptions, units []unitArg, desired registry.DesiredState, replaceFrom []registry.DesiredState) error {
	for _, u := range units {
		if err := registry.CheckActivatable(u.name, desired); err != nil {
			return err
		}
	}
	res, err := c.resolveUnits(ctx, units, o.replace, replaceFrom...)
	if err != nil {
		return err
	}
	if err := c.create(ctx, res, desired); err != nil {
		return err
	}
	reg, _ := c.registry()
	var wait []string
	var set []*registry.Job
	verb := map[registry.DesiredState]string{registry.Loaded: "load", registry.Launched: "start"}[desired]
	kept := res[:0:0]
	for _, u := range res {
		if u.existing != nil && u.existing.Desired != desired {
			if desired == registry.Loaded && u.existing.Desired == registry.Launched {
				fmt.Fprintf(c.errOut, "Unit %s is launched; leaving it running (use fleetctl stop to bring it to loaded)\n", u.name)
				continue
			}
			set = append(set, u.existing)
		}
		kept = append(kept, u)
	}
	if err := reg.SetDesiredAll(ctx, set, desired); err != nil {
		return c.consulErr(err)
	}
	for _, u := range kept {
		if isGlobal(u) {
			// Every eligible machine runs it; there is no one state to
			// wait for (fleet did the same).
			fmt.Fprintf(c.out, "Triggered global unit %s %s\n", u.name, verb)
			continue
		}
		wait = append(wait, u.name)
	}
	if o.block.noBlock {
		for _, n := range wait {
			fmt.Fprintf(c.out, "Triggered unit %s %s\n", n, verb)
		}
		return nil
	}
	return c.waitFor(ctx, wait, desired, o.block, desired == registry.Launched)
}

// withUnits parses the command's unit arguments (every name checked before
// anything is written) and hands them to run; no arguments is fleet's
// "No units given", exit 0.
func (c *cli) withUnits(run func(ctx context.Context, units []unitArg) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		units, err := parseUnitArgs(args)
		if err != nil {
			return err
		}
		if len(units) == 0 {
			return c.noUnits()
		}
		return run(cmd.Context(), units)
	}
}

// existing reads every named unit, failing before any write if one is
// missing.
func (c *cli) existing(ctx context.Context, units []unitArg) ([]*registry.Job, error) {
	restore, err := c.pinned(ctx, units)
	if err != nil {
		return nil, err
	}
	defer restore()
	var jobs []*registry.Job
	for _, u := range units {
		j, err := c.job(ctx, u.name)
		if errors.Is(err, registry.ErrNotFound) {
			return nil, fmt.Errorf("unit %s does not exist (fleetctl list-unit-files shows the units fleet knows)", u.name)
		}
		if err != nil {
			return nil, c.consulErr(err)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

func newSubmitCmd(c *cli) *cobra.Command {
	o := &lifecycleOptions{}
	cmd := &cobra.Command{
		Use:   "submit UNIT...",
		Short: "Upload one or more units to the cluster without starting them",
		RunE: c.withUnits(func(ctx context.Context, units []unitArg) error {
			res, err := c.resolveUnits(ctx, units, o.replace, registry.Inactive)
			if err != nil {
				return err
			}
			if err := c.create(ctx, res, registry.Inactive); err != nil {
				return err
			}
			for _, u := range res {
				if u.file != nil && !u.replace {
					fmt.Fprintf(c.out, "Unit %s inactive\n", u.name)
				}
			}
			return nil
		}),
	}
	addReplaceFlags(cmd, o)
	return cmd
}

func newLoadCmd(c *cli) *cobra.Command {
	o := &lifecycleOptions{}
	cmd := &cobra.Command{
		Use:   "load UNIT...",
		Short: "Schedule one or more units in the cluster, first submitting them if necessary",
		RunE: c.withUnits(func(ctx context.Context, units []unitArg) error {
			return c.activate(ctx, o, units, registry.Loaded, []registry.DesiredState{registry.Inactive, registry.Loaded})
		}),
	}
	addBlockFlags(cmd, &o.block)
	addReplaceFlags(cmd, o)
	return cmd
}

func newStartCmd(c *cli) *cobra.Command {
	o := &lifecycleOptions{}
	cmd := &cobra.Command{
		Use:   "start UNIT...",
		Short: "Instruct systemd to start one or more units in the cluster, first submitting and loading if necessary",
		RunE: c.withUnits(func(ctx context.Context, units []unitArg) error {
			return c.activate(ctx, o, units, registry.Launched,
				[]registry.DesiredState{registry.Inactive, registry.Loaded, registry.Launched})
		}),
	}
	addBlockFlags(cmd, &o.block)
	addReplaceFlags(cmd, o)
	return cmd
}

func newStopCmd(c *cli) *cobra.Command {
	o := &lifecycleOptions{}
	cmd := &cobra.Command{
		Use:   "stop UNIT...",
		Short: "Instruct systemd to stop one or more units in the cluster",
		RunE: c.withUnits(func(ctx context.Context, units []unitArg) error {
			jobs, err := c.existing(ctx, units)
			if err != nil {
				return err
			}
			for _, j := range jobs {
				if j.Desired == registry.Inactive {
					return fmt.Errorf("Unable to stop unit %s in state inactive", j.Name)
				}
			}
			return c.moveTo(ctx, jobs, registry.Loaded, o.block, "stopped", "stop")
		}),
	}
	addBlockFlags(cmd, &o.block)
	return cmd
}

func newUnloadCmd(c *cli) *cobra.Command {
	o := &lifecycleOptions{}
	cmd := &cobra.Command{
		Use:   "unload UNIT...",
		Short: "Unschedule one or more units in the cluster",
		RunE: c.withUnits(func(ctx context.Context, units []unitArg) error {
			jobs, err := c.existing(ctx, units)
			if err != nil {
				return err
			}
			return c.moveTo(ctx, jobs, registry.Inactive, o.block, "unloaded", "unload")
		}),
	}
	addBlockFlags(cmd, &o.block)
	return cmd
}

// moveTo sets every job whose desired state differs to d and waits.
func (c *cli) moveTo(ctx context.Context, jobs []*registry.Job, d registry.DesiredState, b blockOptions, done, verb string) error {
	reg, _ := c.registry()
	if err := reg.SetDesiredAll(ctx, jobs, d); err != nil {
		return c.consulErr(err)
	}
	var names []string
	for _, j := range jobs {
		if j.Desired == d {
			continue
		}
		if j.Global() {
			fmt.Fprintf(c.out, "Triggered global unit %s %s\n", j.Name, verb)
			continue
		}
		names = append(names, j.Name)
	}
	if b.noBlock {
		for _, n := range names {
			fmt.Fprintf(c.out, "Triggered unit %s %s\n", n, verb)
		}
		return nil
	}
	if err := c.waitFor(ctx, names, d, b, false); err != nil {
		return err
	}
	if len(names) > 0 {
		fmt.Fprintf(c.errOut, "Successfully %s units %v.\n", done, names)
	}
	return nil
}

// isGlobal reports whether a resolved unit is global, by its new file or
// the one in the registry.
func isGlobal(u resolved) bool {
	if u.file != nil {
		return xfleet.Read(u.name, u.file.Options).Global
	}
	return u.existing != nil && u.existing.Global()
}
