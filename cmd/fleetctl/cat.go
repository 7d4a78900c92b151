package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

func newCatCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "cat UNIT",
		Short: "Output the contents of a submitted unit",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := unitfile.Mangle(args[0])
			j, err := c.job(cmd.Context(), name)
			if errors.Is(err, registry.ErrNotFound) {
				return fmt.Errorf("Unit %s not found", name)
			}
			if err != nil {
				return c.consulErr(err)
			}
			fmt.Fprint(c.out, j.Unit.String())
			return nil
		},
	}
}
