package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
)

type unitFileRow struct {
	s *registry.Snapshot
	j *registry.Job
}

func (r unitFileRow) global() bool { return r.j.Global() }

func (r unitFileRow) target(full bool) string {
	if r.global() {
		return "global"
	}
	if r.j.Target == "" {
		return "-"
	}
	return machineLabel(r.s.Machines, r.j.Target, full)
}

// state is the current state; "" for a global unit, which has one per machine.
func (r unitFileRow) state() string {
	if r.global() {
		return ""
	}
	return string(r.s.CurrentState(r.j))
}

// desc is the unit's last Description, "" when it has none.
func (r unitFileRow) desc() string {
	if r.j.Unit == nil {
		return ""
	}
	d := r.j.Unit.Values("Unit", "Description")
	if len(d) == 0 {
		return ""
	}
	return d[len(d)-1]
}

// unitFileJSON is one element of list-unit-files --output json.
type unitFileJSON struct {
	Unit     string `json:"unit"`
	Hash     string `json:"hash"`      // full hash of the unit's body
	DState   string `json:"dstate"`    // desired state
	State    string `json:"state"`     // current state; "" for a global unit
	Target   string `json:"target"`    // full ID of the machine it is scheduled to; "" when none or global
	TargetIP string `json:"target_ip"` // that machine's IP; "" when none
	Global   bool   `json:"global"`
	Reason   string `json:"reason"` // why an unplaced unit waits; "" when placed
	Desc     string `json:"desc"`   // [Unit] Description
}

func (r unitFileRow) json() any {
	out := unitFileJSON{Unit: r.j.Name, Hash: r.j.Hash.String(), DState: string(r.j.Desired), State: r.state(),
		Global: r.global(), Reason: r.j.Unplaced, Desc: r.desc()}
	if !r.global() && r.j.Target != "" {
		out.Target = r.j.Target
		if m := r.s.Machines[r.j.Target]; m != nil {
			out.TargetIP = m.IP
		}
	}
	return out
}

var unitFileColumns = map[string]column[unitFileRow]{
	"unit": {"UNIT", func(r unitFileRow, _ bool) string { return r.j.Name }},
	"hash": {"HASH", func(r unitFileRow, full bool) string {
		if full {
			return r.j.Hash.String()
		}
		return r.j.Hash.Short()
	}},
	"dstate":   {"DSTATE", func(r unitFileRow, _ bool) string { return string(r.j.Desired) }},
	"state":    {"STATE", func(r unitFileRow, _ bool) string { return dash(r.state()) }},
	"target":   {"TARGET", func(r unitFileRow, full bool) string { return r.target(full) }},
	"tmachine": {"TMACHINE", func(r unitFileRow, full bool) string { return r.target(full) }},
	"global":   {"GLOBAL", func(r unitFileRow, _ bool) string { return fmt.Sprint(r.global()) }},
	// Not in fleet: why the leader cannot place the unit (fleet #1348).
	"reason": {"REASON", func(r unitFileRow, _ bool) string { return dash(r.j.Unplaced) }},
	"desc":   {"DESCRIPTION", func(r unitFileRow, _ bool) string { return dash(r.desc()) }},
}

func newListUnitFilesCmd(c *cli) *cobra.Command {
	o := listOptions{}
	cmd := &cobra.Command{
		Use:   "list-unit-files",
		Short: "List the units that exist in the cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.output == tableOutput && strings.Contains(o.fields, "tmachine") {
				fmt.Fprintln(c.errOut, "WARNING: the tmachine field is deprecated, use target instead")
			}
			// Without the schedule's entries (one per unit), metadata and
			// policies: five reads whatever the cluster's size.
			s, err := c.subtrees(cmd.Context(), "units/", "jobs/", "placement/", "states/", "machines/")
			if err != nil {
				return err
			}
			var rows []unitFileRow
			unplaced := 0
			for _, name := range s.JobNames() {
				rows = append(rows, unitFileRow{s: s, j: s.Jobs[name]})
				if s.Jobs[name].Unplaced != "" {
					unplaced++
				}
			}
			if err := printList(c.out, o, unitFileColumns, rows, unitFileRow.json); err != nil {
				return err
			}
			// TARGET stays "-" for an unplaced unit, as in fleet, so
			// scripts read the same table; a reader is told where to look.
			if unplaced > 0 && o.output == tableOutput && !o.noLegend && !slices.Contains(fieldNames(o.fields), "reason") {
				units := "units"
				if unplaced == 1 {
					units = "unit"
				}
				fmt.Fprintf(c.errOut, "%d %s cannot be placed; fleetctl list-unit-files --fields unit,dstate,reason says why\n", unplaced, units)
			}
			return nil
		},
	}
	addListFlags(cmd, &o, "unit,hash,dstate,state,target", false)
	return cmd
}
