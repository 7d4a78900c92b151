package main

import (
	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
)

type unitRow struct {
	st *registry.UnitState
	on *unitMachine
}

// unitMachine is the machine of a unit's row, labelled once for all its
// rows.
type unitMachine struct {
	ip          string // "" when the machine is gone
	short, full string // machineLabel's
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
	return unitJSON{Unit: r.st.Name, Machine: r.st.Machine, MachineIP: r.on.ip, Active: r.st.Active, Sub: r.st.Sub, Load: r.st.Load, Hash: r.st.Hash}
}

var unitColumns = map[string]column[unitRow]{
	"unit": {"UNIT", func(r unitRow, _ bool) string { return r.st.Name }},
	"machine": {"MACHINE", func(r unitRow, full bool) string {
		if full {
			return r.on.full
		}
		return r.on.short
	}},
	"active": {"ACTIVE", func(r unitRow, _ bool) string { return dash(r.st.Active) }},
	"sub":    {"SUB", func(r unitRow, _ bool) string { return dash(r.st.Sub) }},
	"load":   {"LOAD", func(r unitRow, _ bool) string { return dash(r.st.Load) }},
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
			r, err := c.reader()
			if err != nil {
				return err
			}
			list, err := r.UnitStates(cmd.Context())
			if err != nil {
				return c.consulErr(err)
			}
			rows := make([]unitRow, len(list.States))
			machines := map[string]*unitMachine{}
			for i, st := range list.States {
				on := machines[st.Machine]
				if on == nil {
					on = &unitMachine{short: machineLabel(list.Machines, st.Machine, false), full: machineLabel(list.Machines, st.Machine, true)}
					if m := list.Machines[st.Machine]; m != nil {
						on.ip = m.IP
					}
					machines[st.Machine] = on
				}
				rows[i] = unitRow{st: st, on: on}
			}
			return printList(c.out, o, unitColumns, rows, unitRow.json)
		},
	}
	addListFlags(cmd, &o, "unit,machine,active,sub", true)
	return cmd
}
