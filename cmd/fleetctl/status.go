package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/apitls"
	"github.com/wasmfleet/fleet/internal/registry"
)

// agentURL finds the inspect address of the machine running unit name.
func (c *cli) agentURL(ctx context.Context, name string) (string, error) {
	reg, err := c.registry()
	if err != nil {
		return "", err
	}
	j, err := c.job(ctx, name)
	if errors.Is(err, registry.ErrNotFound) {
		return "", fmt.Errorf("Unit %s does not exist.", name)
	}
	if err != nil {
		return "", c.consulErr(err)
	}
	if j.Target == "" {
		return "", fmt.Errorf("Unit %s does not appear to be loaded.", name)
	}
	svcs, _, err := reg.Client().Catalog().Service("fleet-agent", "", nil)
	if err != nil {
		return "", c.consulErr(err)
	}
	for _, s := range svcs {
		switch {
		case s.ServiceMeta["machine-id"] != j.Target, apitls.Served(s) && s.ServicePort == 0:
			continue
		case apitls.Served(s):
			return apitls.URL(s), nil
		}
		return "", fmt.Errorf("machine %s running %s serves no status or journal: its fleetd reaches Consul over TLS and has no certificate for its address to serve them with (its log says what to set; docs/tls.md)",
			registry.ShortID(j.Target), name)
	}
	return "", fmt.Errorf("machine %s running %s is not reachable: it has no fleet-agent service in Consul", registry.ShortID(j.Target), name)
}

// fetch GETs path from the agent running unit name and copies the answer
// to w.
func (c *cli) fetch(ctx context.Context, name, path string, w io.Writer) error {
	base, err := c.agentURL(ctx, name)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/units/"+url.PathEscape(name)+path, nil)
	if err != nil {
		return err
	}
	token := c.opts.token
	if token == "" {
		token = c.envToken()
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	hc, err := apitls.Client(base, c.endpoint(), token != "")
	if err != nil {
		return fmt.Errorf("reach the machine running %s: %w", name, err)
	}
	resp, err := hc.Do(req)
	if verr := apitls.VerifyErr(base, err); verr != nil {
		return verr
	}
	if err != nil {
		return fmt.Errorf("reach the machine running %s at %s: %w", name, base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return errors.New(strings.TrimSpace(string(b)))
	}
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil // the user stopped following
	}
	return err
}

func newStatusCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status UNIT...",
		Short: "Output the status of one or more units in the cluster",
		Long: `Output systemd's status of each unit, as "systemctl status" shows it on the
machine that runs it. The fleetd of that machine answers; no SSH is needed.`,
		RunE: c.withUnits(func(ctx context.Context, units []unitArg) error {
			for i, u := range units {
				if i > 0 {
					fmt.Fprintln(c.out)
				}
				if err := c.fetch(ctx, u.name, "/status", c.out); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	addUnusedSSHPort(cmd)
	return cmd
}

// addUnusedSSHPort accepts fleet's --ssh-port on commands that no longer
// use SSH, so scripts written for fleet keep working.
func addUnusedSSHPort(cmd *cobra.Command) {
	cmd.Flags().Int("ssh-port", 22, "accepted for fleet's scripts; unused: the machine's fleetd answers, not SSH")
}

func newJournalCmd(c *cli) *cobra.Command {
	var lines int
	var follow bool
	var output string
	cmd := &cobra.Command{
		Use:   "journal UNIT",
		Short: "Print the journal of a unit in the cluster",
		Long: `Print the unit's journal from the machine that runs it, as journalctl does
there. The fleetd of that machine answers, with its own rights: no SSH, and no
--sudo, is needed. Machines without systemd (fleetd dev) print the unit's
output lines whatever --output says.`,
		Args: cobra.ExactArgs(1),
		RunE: c.withUnits(func(ctx context.Context, units []unitArg) error {
			if !slices.Contains(agent.JournalOutputs, output) {
				return fmt.Errorf("unknown --output %q; use one of %s", output, strings.Join(agent.JournalOutputs, ", "))
			}
			q := fmt.Sprintf("/journal?lines=%d&follow=%t&output=%s", lines, follow, url.QueryEscape(output))
			return c.fetch(ctx, units[0].name, q, c.out)
		}),
	}
	cmd.Flags().IntVar(&lines, "lines", 10, "number of recent journal entries to show")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new entries as they come")
	cmd.Flags().StringVar(&output, "output", "short", "journalctl output mode: "+strings.Join(agent.JournalOutputs, ", "))
	cmd.Flags().Bool("sudo", false, "accepted for fleet's scripts; unused: the machine's fleetd reads the journal")
	addUnusedSSHPort(cmd)
	return cmd
}
