package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/leader"
	"github.com/wasmfleet/fleet/policies"
)

type simulateOptions struct {
	as   string // the uploaded policy FILE stands in for; "" for the cluster's default
	next bool   // the leader's next pass, not every unit placed anew
	all  bool   // print every unit, not only those that change
	list listOptions
}

func newPolicySimulateCmd(c *cli) *cobra.Command {
	o := &simulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate [FILE.wasm]",
		Short: "Show where the leader would put each unit, with a candidate policy or the cluster's own, changing nothing",
		Long: `Runs the leader's placement on the live cluster without writing anything, with
the cluster's policies as they are or with FILE.wasm in the place of one, and
prints where each unit would end up and why.

By default every unit that should run is placed anew, as the leader places
units that all wait at once (a cluster started from scratch). With --next it
is instead what the leader does next to the cluster as it is: the units it
would move, and where the units that wait would go. Either way the leader's
passes are followed until they settle.

FILE.wasm stands in for the cluster's default policy (as if uploaded and made
the default with "fleetctl policy default"), or with --as NAME for the
uploaded policy NAME, which units choose with Policy=NAME. Units whose
machine would not change are left out unless --all is given.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			return c.simulate(ctx, args, o)
		},
	}
	cmd.Flags().StringVar(&o.as, "as", "", "FILE.wasm stands in for the uploaded policy `NAME` instead of the cluster's default")
	cmd.Flags().BoolVar(&o.next, "next", false, "the leader's next pass over the cluster as it is, not every unit placed anew")
	cmd.Flags().BoolVar(&o.all, "all", false, "print every unit, not only those whose machine would change")
	addListFlags(cmd, &o.list, "unit,now,would,why", false)
	return cmd
}

func (c *cli) simulate(ctx context.Context, args []string, o *simulateOptions) error {
	if o.as != "" && len(args) == 0 {
		return fmt.Errorf("--as %s needs a FILE.wasm to stand in for it", o.as)
	}
	host, err := policies.NewHost(ctx, policies.Config{})
	if err != nil {
		return err
	}
	defer host.Close(context.Background())
	var candidate *policies.Policy
	var file string
	if len(args) == 1 {
		if candidate, err = loadCandidate(ctx, host, args[0]); err != nil {
			return err
		}
		file = args[0]
	}
	s, err := c.snapshot(ctx)
	if err != nil {
		return err
	}
	reg, _ := c.registry() // connected by snapshot
	placer := &policies.Placer{
		Builtin: policies.BuiltinNative(host),
		Uploaded: func(ctx context.Context, m *registry.PolicyManifest) (*policies.Policy, error) {
			if candidate != nil && m.SHA256 == candidateSHA(file) {
				return candidate, nil
			}
			wasm, err := reg.PolicyModule(ctx, m)
			if err != nil {
				return nil, err
			}
			return host.Load(ctx, m.Name, wasm, false)
		},
	}
	if candidate != nil {
		if err := standIn(s, file, o.as); err != nil {
			return err
		}
	}
	before := s
	if !o.next {
		s = leader.Anew(s)
	}
	plans, settled := settle(ctx, s, placer)
	if !settled {
		fmt.Fprintf(c.errOut, "Warning: the leader's passes had not settled after %d; this is where the last leaves the units\n", len(plans))
	}
	return c.printSimulation(before, leader.Outcomes(s, plans...), o)
}

// maxPasses bounds a simulation: rules that keep moving units (a unit
// replaced wherever it goes, say) would never settle.
const maxPasses = 16

// settle runs the leader's passes over s until one changes nothing, as the
// leader does, each plan's writes landing before the next pass
// (leader.Apply). It returns the passes' plans, and whether the last
// changed nothing.
func settle(ctx context.Context, s *registry.Snapshot, p leader.Placer) ([]leader.Plan, bool) {
	var plans []leader.Plan
	for len(plans) < maxPasses {
		plan := leader.Reconcile(ctx, s, p)
		plans = append(plans, plan)
		if len(plan.Actions) == 0 {
			return plans, true
		}
		s = leader.Apply(s, plan)
	}
	return plans, false
}

// loadCandidate loads FILE as the leader would load an upload: untrusted.
func loadCandidate(ctx context.Context, host *policies.Host, file string) (*policies.Policy, error) {
	wasm, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return host.Load(ctx, candidateName(file), wasm, false)
}

func candidateName(file string) string { return strings.TrimSuffix(filepath.Base(file), ".wasm") }

// candidateSHA is what identifies the candidate in the simulated
// snapshot's manifests: not a module's hash, so no upload is taken for it.
func candidateSHA(file string) string {
	sum := sha256.Sum256([]byte("fleetctl policy simulate " + file))
	return "candidate-" + hex.EncodeToString(sum[:8])
}

// standIn makes s a cluster where FILE is uploaded as name (or, without a
// name, as a policy of its own made the cluster's default).
func standIn(s *registry.Snapshot, file, name string) error {
	switch {
	case name == registry.BuiltinPolicy:
		return fmt.Errorf("the built-in policy %q cannot be replaced; simulate without --as to try %s as the cluster's default", name, file)
	case name == "":
		name = "candidate:" + candidateName(file) // no uploaded policy can have this name
		s.DefaultPolicy = name
	case s.Policies[name] == nil:
		return fmt.Errorf("policy %s is not uploaded (fleetctl policy list); simulate without --as to try %s as the cluster's default", name, file)
	}
	policies := make(map[string]*registry.PolicyManifest, len(s.Policies)+1)
	for n, m := range s.Policies {
		policies[n] = m
	}
	policies[name] = &registry.PolicyManifest{Name: name, SHA256: candidateSHA(file)}
	s.Policies = policies
	return nil
}

// simulated is one unit's row: where it is and where the simulation
// leaves it.
type simulated struct {
	Unit    string       `json:"unit"`
	Now     string       `json:"now"`      // its machine, "" for none
	WouldBe string       `json:"would_be"` // its machine after the pass, "" for none
	Why     string       `json:"why"`      // why it would move or wait
	Policy  string       `json:"policy"`   // the policy that would choose its machine
	Cause   leader.Cause `json:"cause"`
}

// printSimulation prints each unit whose machine the simulation changes (or
// every unit, with --all): where it is in before, where it would be, and
// why.
func (c *cli) printSimulation(before *registry.Snapshot, out map[string]leader.Outcome, o *simulateOptions) error {
	var rows []simulated
	moves, waits := 0, 0
	for _, name := range before.JobNames() {
		oc, ok := out[name]
		if !ok {
			continue
		}
		r := simulated{Unit: name, Now: before.Jobs[name].Target, WouldBe: oc.Machine, Why: oc.Reason,
			Policy: strings.TrimPrefix(oc.Policy, "candidate:"), Cause: oc.Cause}
		switch {
		case r.WouldBe == "":
			waits++
		case r.WouldBe != r.Now:
			moves++
		case !o.all:
			continue
		}
		rows = append(rows, r)
	}
	machine := func(id string, full bool) string {
		if id == "" {
			return "-"
		}
		return machineLabel(before.Machines, id, full)
	}
	cols := map[string]column[simulated]{
		"unit":  {"UNIT", func(r simulated, _ bool) string { return r.Unit }},
		"now":   {"NOW", func(r simulated, full bool) string { return machine(r.Now, full) }},
		"would": {"WOULD BE", func(r simulated, full bool) string { return machine(r.WouldBe, full) }},
		"why": {"WHY", func(r simulated, _ bool) string {
			if r.Policy != "" {
				return strings.TrimPrefix(r.Why+"; ", "; ") + "placed by policy " + r.Policy
			}
			return dash(r.Why)
		}},
		"policy": {"POLICY", func(r simulated, _ bool) string { return dash(r.Policy) }},
		"cause":  {"CAUSE", func(r simulated, _ bool) string { return dash(string(r.Cause)) }},
	}
	if err := printList(c.out, o.list, cols, rows, func(r simulated) any { return r }); err != nil {
		return err
	}
	fmt.Fprintf(c.errOut, "%d unit(s) would move, %d would wait for a machine; nothing was changed\n", moves, waits)
	return nil
}
