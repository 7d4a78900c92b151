package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newVerifyCmd is fleet's verify, kept so scripts that call it get fleet's
// answer: unit signing was removed from fleet, and verify only says so.
func newVerifyCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "verify UNIT",
		Short: "DEPRECATED: signed units are not supported; exits 2",
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(c.errOut, "WARNING: The signed/verified units feature is DEPRECATED and cannot be used.")
			return &exitError{code: 2}
		},
	}
}
