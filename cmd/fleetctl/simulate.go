package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/leader"
	"github.com/wasmfleet/fleet/policies"
)

func newPolicySimulateCmd(c *cli) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "simulate FILE.wasm",
		Short: "Show where a candidate policy would put each unit of the live cluster, changing nothing",
		Long: `Replays the live cluster through a policy module that is not uploaded: for
each unit that should run, the policy is asked where it would go if it were
placed now, with every other unit where it is. Units it would move (or could
not place) are printed; --all prints every unit. Nothing is written.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read policy: %w", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			host, err := policies.NewHost(ctx, policies.Config{})
			if err != nil {
				return err
			}
			defer host.Close(context.Background())
			p, err := host.Load(ctx, "candidate", wasm, false)
			if err != nil {
				return err
			}
			s, err := c.snapshot(ctx)
			if err != nil {
				return err
			}
			return c.simulate(s, p, all)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "print every unit, not only those that would move")
	return cmd
}

func (c *cli) simulate(s *registry.Snapshot, p *policies.Policy, all bool) error {
	load := map[string][]string{}
	for _, name := range s.JobNames() {
		if j := s.Jobs[name]; j.Target != "" && j.Desired != registry.Inactive {
			load[j.Target] = append(load[j.Target], name)
		}
	}
	placer := &policies.Placer{Builtin: func(context.Context) (*policies.Policy, error) { return p, nil }}
	tw := tabwriter.NewWriter(c.out, 0, 8, 1, '\t', 0)
	fmt.Fprintln(tw, "UNIT\tNOW\tWOULD BE\tWHY")
	moves := 0
	for _, name := range s.JobNames() {
		j := s.Jobs[name]
		if j.Desired == registry.Inactive {
			continue
		}
		// Every other unit stays where it is.
		var cands []leader.Candidate
		for _, id := range s.MachineIDs() {
			var units []string
			for _, u := range load[id] {
				if u != name {
					units = append(units, u)
				}
			}
			cands = append(cands, leader.Candidate{Machine: s.Machines[id], Units: units})
		}
		d := placer.Place(j, cands)
		now, would, why := "-", "-", ""
		if j.Target != "" {
			now = machineLabel(s, j.Target, false)
		}
		switch {
		case d.Error != "":
			why = d.Error
		case d.Machine == "":
			why = fmt.Sprintf("no machine fits (%d rejected)", len(d.Rejected))
		default:
			would = machineLabel(s, d.Machine, false)
		}
		if d.Machine != j.Target {
			moves++
		} else if !all {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, now, would, dash(why))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.errOut, "%d unit(s) would move or stay unplaced; nothing was changed\n", moves)
	return nil
}
