package main

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
)

// machineRow is a live machine and how many units it holds.
type machineRow struct {
	m     *registry.Machine
	units int
}

// machineJSON is one element of list-machines --output json.
type machineJSON struct {
	Machine  string            `json:"machine"`  // full machine ID
	IP       string            `json:"ip"`       // "" when the machine published none
	Metadata map[string]string `json:"metadata"` // {} when none
	Units    int               `json:"units"`
	Version  string            `json:"version"` // fleetd's version; "" when the machine published none
}

func (r machineRow) json() any {
	md := r.m.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return machineJSON{Machine: r.m.ID, IP: r.m.IP, Metadata: md, Units: r.units, Version: r.m.Version}
}

// machineUnits counts the units on each machine as the leader weighs its
// load: the units scheduled to it, and the global units it reports, leaving
// out units whose desired state is inactive (they are on their way off).
func machineUnits(s *registry.Snapshot) map[string]int {
	n := map[string]int{}
	for _, j := range s.Jobs {
		if j.Desired == registry.Inactive {
			continue
		}
		if j.Global() {
			for id := range s.States[j.Name] {
				n[id]++
			}
		} else if j.Target != "" {
			n[j.Target]++
		}
	}
	return n
}

var machineColumns = map[string]column[machineRow]{
	"machine": {"MACHINE", func(r machineRow, full bool) string {
		if full {
			return r.m.ID
		}
		return r.m.ShortID() + "..."
	}},
	"ip": {"IP", func(r machineRow, _ bool) string { return dash(r.m.IP) }},
	// Not in fleet: how loaded the machine is, as the leader counts it.
	"units": {"UNITS", func(r machineRow, _ bool) string { return strconv.Itoa(r.units) }},
	// Not in fleet: the fleetd the machine runs, to follow a rolling
	// upgrade; "-" for a machine whose fleetd publishes no version.
	"version": {"VERSION", func(r machineRow, _ bool) string { return dash(r.m.Version) }},
	"metadata": {"METADATA", func(r machineRow, _ bool) string {
		m := r.m
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
			// The machines alone are two small reads at any number of
			// units; the units column needs every unit's job, body,
			// placement and states too (machineUnits), not the schedule.
			counted := o.output == jsonOutput || slices.Contains(fieldNames(o.fields), "units")
			parts := []string{"machines/", "machine-metadata/"}
			if counted {
				parts = append(parts, "units/", "jobs/", "placement/", "states/")
			}
			s, err := c.subtrees(cmd.Context(), parts...)
			if err != nil {
				return err
			}
			var units map[string]int
			if counted {
				units = machineUnits(s)
			}
			var rows []machineRow
			for _, id := range s.MachineIDs() {
				rows = append(rows, machineRow{m: s.Machines[id], units: units[id]})
			}
			return printList(c.out, o, machineColumns, rows, machineRow.json)
		},
	}
	addListFlags(cmd, &o, "machine,ip,metadata", true)
	return cmd
}
