package main

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
)

type unitRow struct {
	st      *registry.UnitState
	machine string
	ip      string // "" when the machine is gone
	label   func(full bool) string
}

// unitJSON is one element of list-units --output json: a unit on one machine.
type unitJSON struct {
	Unit      string `json:"unit"`
	Machine   string `json:"machine"`    // full machine ID
	MachineIP string `json:"machine_ip"` // "" when the machine is gone
	Active    string `json:"active"`     // systemd ActiveState
	Sub       string `json:"sub"`        // systemd SubState
	Load      string `json:"load"`       // systemd LoadState
	Hash      string `json:"hash"`       // full hash of the body the machine runs
}

func (r unitRow) json() any {
	return unitJSON{Unit: r.st.Name, Machine: r.machine, MachineIP: r.ip, Active: r.st.Active, Sub: r.st.Sub, Load: r.st.Load, Hash: r.st.Hash}
}

var unitColumns = map[string]column[unitRow]{
	"unit":    {"UNIT", func(r unitRow, _ bool) string { return r.st.Name }},
	"machine": {"MACHINE", func(r unitRow, full bool) string { return r.label(full) }},
	"active":  {"ACTIVE", func(r unitRow, _ bool) string { return dash(r.st.Active) }},
	"sub":     {"SUB", func(r unitRow, _ bool) string { return dash(r.st.Sub) }},
	"load":    {"LOAD", func(r unitRow, _ bool) string { return dash(r.st.Load) }},
	"hash": {"HASH", func(r unitRow, full bool) string {
		if full || len(r.st.Hash) < 7 {
			return dash(r.st.Hash)
		}
		return r.st.Hash[:7]
	}},
}

func newListUnitsCmd(c *cli) *cobra.Command {
	o := listOptions{}
	cmd := &cobra.Command{
		Use:   "list-units",
		Short: "List the current state of units in the cluster, one line per unit per machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// States and machines only: a constant two reads, without
			// every unit's body and job (BENCHMARKS.md, list-units).
			s, err := c.subtrees(cmd.Context(), "states/", "machines/")
			if err != nil {
				return err
			}
			n := 0
			for _, byMachine := range s.States {
				n += len(byMachine)
			}
			rows := make([]unitRow, 0, n)
			for name, byMachine := range s.States {
				for id, st := range byMachine {
					id := id
					st.Name = name
					r := unitRow{st: st, machine: id, label: func(full bool) string { return machineLabel(s, id, full) }}
					if m := s.Machines[id]; m != nil {
						r.ip = m.IP
					}
					rows = append(rows, r)
				}
			}
			sort.Slice(rows, func(i, j int) bool {
				if rows[i].st.Name != rows[j].st.Name {
					return rows[i].st.Name < rows[j].st.Name
				}
				return rows[i].machine < rows[j].machine
			})
			return printList(c.out, o, unitColumns, rows, unitRow.json)
		},
	}
	addListFlags(cmd, &o, "unit,machine,active,sub", true)
	return cmd
}
