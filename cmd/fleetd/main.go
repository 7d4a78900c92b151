// Command fleetd runs on every machine of a fleet cluster: the agent that runs
// the units scheduled to the machine, and a candidate for leader, which
// places units. "fleetd dev" starts a whole local cluster.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/version"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "fleetd:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "fleetd",
		Short:         "fleet's machine daemon: runs units, and places them when it leads",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	agent := newAgentCmd()
	root.AddCommand(agent, newDevCmd())
	// Plain "fleetd" is "fleetd agent", as fleet's fleetd was.
	root.RunE = agent.RunE
	root.Flags().AddFlagSet(agent.Flags())
	return root
}
