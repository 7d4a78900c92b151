package main

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
)

var machineColumns = map[string]column[*registry.Machine]{
	"machine": {"MACHINE", func(m *registry.Machine, full bool) string {
		if full {
			return m.ID
		}
		return m.ShortID() + "..."
	}},
	"ip": {"IP", func(m *registry.Machine, _ bool) string { return dash(m.IP) }},
	"metadata": {"METADATA", func(m *registry.Machine, _ bool) string {
		keys := make([]string, 0, len(m.Metadata))
		for k := range m.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + m.Metadata[k]
		}
		return dash(strings.Join(parts, ","))
	}},
}

func newListMachinesCmd(c *cli) *cobra.Command {
	o := listOptions{}
	cmd := &cobra.Command{
		Use:   "list-machines",
		Short: "Enumerate the current hosts in the cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := c.registry()
			if err != nil {
				return err
			}
			ms, err := reg.Machines(cmd.Context())
			if err != nil {
				return c.consulErr(err)
			}
			return printTable(c.out, o, machineColumns, ms)
		},
	}
	addListFlags(cmd, &o, "machine,ip,metadata", true)
	return cmd
}
