package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/starter"
	"github.com/wasmfleet/fleet/policies"
	"github.com/wasmfleet/fleet/sdk/wire"
)

func newPolicyCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage placement policies (WebAssembly modules that choose machines for units)",
		Long: `Placement policies are WebAssembly modules written with fleet's SDK (sdk/).
A unit picks one with [X-Fleet] Policy=NAME; units that name none use the
cluster's default policy, which is fleet's own ("default") until changed.`,
	}
	cmd.AddCommand(newPolicyNewCmd(c), newPolicySDKCmd(c), newPolicyUploadCmd(c), newPolicyListCmd(c), newPolicyShowCmd(c),
		newPolicyRmCmd(c), newPolicyDefaultCmd(c), newPolicySimulateCmd(c))
	return cmd
}

func newPolicyNewCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "new NAME [DIR]",
		Short: "Write a Go module with a working policy, its test and the SDK, ready to build (DIR defaults to ./NAME)",
		Long: `Write a new placement policy into DIR (./NAME unless given), which must not
exist or be empty: a Go module with the policy (main.go), its test
(main_test.go) and, in fleet-sdk/, the SDK this fleetctl speaks, which the
module's go.mod points at. It builds offline with the standard Go toolchain.`,
		Example: `  fleetctl policy new ssd
  cd ssd && go test ./...
  ` + starter.BuildCommand("ssd.wasm") + `
  fleetctl policy upload ssd ssd.wasm`,
		Args: rangeArgs(1, 2, "name the policy, and optionally its directory: fleetctl policy new NAME [DIR]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, dir := args[0], args[0]
			if len(args) == 2 {
				dir = args[1]
			}
			if err := registry.ValidatePolicyName(name); err != nil {
				return err
			}
			if name == registry.BuiltinPolicy {
				return fmt.Errorf("%q is the built-in policy's name; choose another", name)
			}
			if err := starter.New(dir, name); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "Wrote policy %s in %s, with the SDK of ABI version %d in %s. Next:\n", name, dir, wire.Version,
				filepath.Join(dir, starter.SDKDir))
			fmt.Fprintf(c.out, "  cd %s\n  go test ./...\n  %s\n  fleetctl policy simulate %s.wasm\n  fleetctl policy upload %s %s.wasm\n",
				dir, starter.BuildCommand(name+".wasm"), name, name, name)
			return nil
		},
	}
}

func newPolicySDKCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "sdk [DIR]",
		Short: "Write the SDK this fleetctl speaks into DIR/fleet-sdk, replacing an older copy (DIR defaults to .)",
		Long: `Write the policy SDK this fleetctl speaks into DIR/fleet-sdk, where a module
written by "fleetctl policy new" finds it. Run it in a policy's directory
after upgrading fleet, then rebuild the policy: a module built with an SDK
of another ABI version is refused at upload.`,
		Args: rangeArgs(0, 1, "name at most one directory: fleetctl policy sdk [DIR]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if err := starter.WriteSDK(dir); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "Wrote the SDK of ABI version %d in %s\n", wire.Version, filepath.Join(dir, starter.SDKDir))
			return nil
		},
	}
}

func newPolicyUploadCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "upload NAME FILE.wasm",
		Short: "Validate a policy module and store it under NAME (replacing an earlier upload)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, file := args[0], args[1]
			if err := registry.ValidatePolicyName(name); err != nil {
				return err
			}
			if name == registry.BuiltinPolicy {
				return fmt.Errorf("%q is the built-in policy; upload under another name", name)
			}
			wasm, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("read policy: %w", err)
			}
			// Load it the way the leader will, untrusted: a module that
			// would fail there is refused here, and nothing is stored.
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			host, err := policies.NewHost(ctx, policies.Config{})
			if err != nil {
				return err
			}
			defer host.Close(context.Background())
			if _, err := host.Load(ctx, name, wasm, false); err != nil {
				return err
			}
			reg, err := c.registry()
			if err != nil {
				return err
			}
			m, err := reg.PutPolicy(ctx, name, wasm)
			if err != nil {
				return c.consulErr(err)
			}
			fmt.Fprintf(c.out, "Policy %s uploaded (%s, %d bytes)\n", m.Name, m.SHA256[:12], m.Size)
			return nil
		},
	}
}

func newPolicyListCmd(c *cli) *cobra.Command {
	o := listOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the placement policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := c.snapshot(cmd.Context())
			if err != nil {
				return err
			}
			rows := []*registry.PolicyManifest{{Name: registry.BuiltinPolicy}}
			names := make([]string, 0, len(s.Policies))
			for n := range s.Policies {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				rows = append(rows, s.Policies[n])
			}
			cols := map[string]column[*registry.PolicyManifest]{
				"name": {"POLICY", func(m *registry.PolicyManifest, _ bool) string { return m.Name }},
				"hash": {"SHA256", func(m *registry.PolicyManifest, full bool) string {
					if m.SHA256 == "" {
						return "built-in"
					}
					if full {
						return m.SHA256
					}
					return m.SHA256[:12]
				}},
				"size": {"SIZE", func(m *registry.PolicyManifest, _ bool) string {
					if m.Size == 0 {
						return "-"
					}
					return fmt.Sprint(m.Size)
				}},
				"default": {"DEFAULT", func(m *registry.PolicyManifest, _ bool) string {
					if m.Name == s.DefaultPolicy {
						return "yes"
					}
					return "-"
				}},
			}
			return printTable(c.out, o, cols, rows)
		},
	}
	addListFlags(cmd, &o, "name,hash,size,default", false)
	return cmd
}

func newPolicyShowCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a policy's details",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := c.registry()
			if err != nil {
				return err
			}
			if args[0] == registry.BuiltinPolicy {
				fmt.Fprintln(c.out, "Policy default: built into fleetd (fleet's least-loaded rule with MachineMetadata)")
				return nil
			}
			m, err := reg.Policy(cmd.Context(), args[0])
			if errors.Is(err, registry.ErrPolicyNotFound) {
				return fmt.Errorf("policy %s does not exist (fleetctl policy list)", args[0])
			}
			if err != nil {
				return c.consulErr(err)
			}
			fmt.Fprintf(c.out, "Policy:   %s\nSHA256:   %s\nSize:     %d bytes in %d chunks\nUploaded: %s\n",
				m.Name, m.SHA256, m.Size, len(m.Chunks), m.Uploaded.Format(time.RFC3339))
			return nil
		},
	}
}

func newPolicyRmCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove an uploaded policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if name == registry.BuiltinPolicy {
				return errors.New("the built-in policy cannot be removed")
			}
			s, err := c.snapshot(cmd.Context())
			if err != nil {
				return err
			}
			if s.DefaultPolicy == name {
				return fmt.Errorf("policy %s is the cluster's default; choose another first (fleetctl policy default default)", name)
			}
			reg, _ := c.registry() // connected by snapshot
			if err := reg.DeletePolicy(cmd.Context(), name); errors.Is(err, registry.ErrPolicyNotFound) {
				return fmt.Errorf("policy %s does not exist (fleetctl policy list)", name)
			} else if err != nil {
				return c.consulErr(err)
			}
			fmt.Fprintf(c.out, "Policy %s removed\n", name)
			return nil
		},
	}
}

func newPolicyDefaultCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "default NAME",
		Short: "Make NAME the policy of units that name none (\"default\" is fleet's own)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			reg, err := c.registry()
			if err != nil {
				return err
			}
			if name != registry.BuiltinPolicy {
				if _, err := reg.Policy(cmd.Context(), name); errors.Is(err, registry.ErrPolicyNotFound) {
					return fmt.Errorf("policy %s does not exist; upload it first", name)
				} else if err != nil {
					return c.consulErr(err)
				}
			}
			if err := reg.SetDefaultPolicy(cmd.Context(), name); err != nil {
				return c.consulErr(err)
			}
			fmt.Fprintf(c.out, "Default policy is now %s\n", name)
			return nil
		},
	}
}
