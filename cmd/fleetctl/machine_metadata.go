package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
)

func newMachineMetadataCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "machine-metadata",
		Short: "Set or remove a machine's dynamic metadata",
		Long: `Set or remove metadata of a live machine without restarting its fleetd
(fleet's PATCH /machines).

Dynamic metadata is kept in Consul apart from the metadata a machine's fleetd
is configured with, and merged over it wherever fleet reads metadata: in
placement (MachineMetadata), for global units and in list-machines. It
outlives fleetd restarts and configuration reloads until it is removed. A
unit placed by MachineMetadata moves when its machine no longer matches.

A machine is named by its ID or any unique prefix of it.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "set MACHINE KEY=VALUE...",
		Short: "Set dynamic metadata pairs on a machine",
		Example: `  fleetctl machine-metadata set 0e4415df role=db disk=ssd
  fleetctl list-machines`,
		Args: rangeArgs(2, -1, "name a machine and one KEY=VALUE or more: fleetctl machine-metadata set MACHINE KEY=VALUE..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.setMachineMetadata(cmd.Context(), args[0], args[1:])
		},
	}, &cobra.Command{
		Use:   "rm MACHINE KEY...",
		Short: "Remove dynamic metadata keys from a machine",
		Args:  rangeArgs(2, -1, "name a machine and one KEY or more: fleetctl machine-metadata rm MACHINE KEY..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.removeMachineMetadata(cmd.Context(), args[0], args[1:])
		},
	})
	return cmd
}

// rangeArgs accepts min to max arguments (max < 0: no upper bound), else
// says usage: what to type, not only how many.
func rangeArgs(min, max int, usage string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < min || max >= 0 && len(args) > max {
			return errors.New(usage)
		}
		return nil
	}
}

// parseMetadataPairs reads KEY=VALUE arguments; a later duplicate key wins.
func parseMetadataPairs(pairs []string) (map[string]string, error) {
	md := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("malformed metadata %q: want KEY=VALUE, such as role=db", p)
		case !registry.ValidMetadataKey(k):
			return nil, fmt.Errorf("malformed metadata %q: the key may hold only letters, digits, '_', '.' and '-'", p)
		}
		if why := registry.ValidMetadataValue(v); why != "" {
			return nil, fmt.Errorf("malformed metadata %q: %s", p, why)
		}
		md[k] = v
	}
	return md, nil
}

func (c *cli) setMachineMetadata(ctx context.Context, prefix string, pairs []string) error {
	md, err := parseMetadataPairs(pairs) // before any request: bad input changes nothing
	if err != nil {
		return err
	}
	reg, m, err := c.liveMachine(ctx, prefix)
	if err != nil {
		return err
	}
	if err := reg.SetMachineMetadata(ctx, m.ID, md); err != nil {
		return c.consulErr(err)
	}
	return c.printMachineMetadata(ctx, reg, m.ID)
}

func (c *cli) removeMachineMetadata(ctx context.Context, prefix string, keys []string) error {
	for _, k := range keys {
		if !registry.ValidMetadataKey(k) {
			return fmt.Errorf("malformed metadata key %q: a key holds only letters, digits, '_', '.' and '-'", k)
		}
	}
	reg, m, err := c.liveMachine(ctx, prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, ok := m.Dynamic[k]; ok {
			continue
		}
		if v, ok := m.Metadata[k]; ok {
			return fmt.Errorf("machine %s has %s=%s from its fleetd configuration, not set with machine-metadata: change it in its fleet.conf or --metadata and send fleetd SIGHUP", m.ShortID(), k, v)
		}
		return fmt.Errorf("machine %s has no metadata %s", m.ShortID(), k)
	}
	if err := reg.DeleteMachineMetadata(ctx, m.ID, keys); err != nil {
		return c.consulErr(err)
	}
	return c.printMachineMetadata(ctx, reg, m.ID)
}

// liveMachine finds the live machine whose ID starts with prefix (a
// trailing "..." as list-machines prints is dropped).
func (c *cli) liveMachine(ctx context.Context, prefix string) (*registry.Registry, *registry.Machine, error) {
	reg, err := c.registry()
	if err != nil {
		return nil, nil, err
	}
	ms, err := reg.Machines(ctx)
	if err != nil {
		return nil, nil, c.consulErr(err)
	}
	prefix = strings.TrimSuffix(prefix, "...")
	var found []*registry.Machine
	for _, m := range ms {
		if prefix != "" && strings.HasPrefix(m.ID, prefix) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 1:
		return reg, found[0], nil
	case 0:
		return nil, nil, fmt.Errorf("no live machine %q: name one by its ID or a unique prefix of it (fleetctl list-machines --full)", prefix)
	default:
		return nil, nil, fmt.Errorf("%q matches %d machines; give a longer prefix (fleetctl list-machines --full)", prefix, len(found))
	}
}

// printMachineMetadata prints the machine's metadata as the cluster now
// sees it, in list-machines' form.
func (c *cli) printMachineMetadata(ctx context.Context, reg *registry.Registry, id string) error {
	ms, err := reg.Machines(ctx)
	if err != nil {
		return c.consulErr(err)
	}
	for _, m := range ms {
		if m.ID == id {
			fmt.Fprintf(c.out, "%s...\t%s\n", m.ShortID(), machineColumns["metadata"].value(machineRow{m: m}, false))
			return nil
		}
	}
	return fmt.Errorf("machine %s left the cluster; its dynamic metadata applies when it is back", registry.ShortID(id))
}
