package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

type sshOptions struct {
	machine      string
	unit         string
	forwardAgent bool
	port         int
}

func newSSHCmd(c *cli) *cobra.Command {
	o := &sshOptions{}
	cmd := &cobra.Command{
		Use:   "ssh [MACHINE|UNIT] [-- COMMAND...]",
		Short: "Open an SSH session (or run a command) on a machine, found by ID prefix or by a unit it runs",
		Long: `Open an interactive SSH session, or run COMMAND, on a machine of the
cluster, using the system's ssh. The machine is named by any unique prefix of
its ID, or by a unit it runs; --machine and --unit say which when a name
could be both.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var target string
			var command []string
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				command = args[dash:]
				args = args[:dash]
			}
			if len(args) > 1 {
				command = append(args[1:], command...)
				args = args[:1]
			}
			if len(args) == 1 {
				target = args[0]
			}
			ip, err := c.sshTarget(cmd.Context(), o, target)
			if err != nil {
				return err
			}
			return c.runSSH(o, ip, command)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.machine, "machine", "", "the machine's ID, or a unique prefix of it")
	f.StringVar(&o.unit, "unit", "", "a unit the machine runs")
	f.BoolVarP(&o.forwardAgent, "forward-agent", "A", false, "forward the local SSH agent")
	f.IntVar(&o.port, "ssh-port", 22, "the machine's SSH port")
	return cmd
}

// sshTarget resolves a machine ID prefix or a unit name to a machine's IP.
func (c *cli) sshTarget(ctx context.Context, o *sshOptions, arg string) (string, error) {
	s, err := c.snapshot(ctx)
	if err != nil {
		return "", err
	}
	byPrefix := func(prefix string) []*registry.Machine {
		var ms []*registry.Machine
		for _, id := range s.MachineIDs() {
			if strings.HasPrefix(id, prefix) {
				ms = append(ms, s.Machines[id])
			}
		}
		return ms
	}
	byUnit := func(name string) *registry.Machine {
		if j := s.Jobs[unitfile.Mangle(name)]; j != nil && j.Target != "" {
			return s.Machines[j.Target]
		}
		return nil
	}
	var m *registry.Machine
	switch {
	case o.machine != "":
		ms := byPrefix(o.machine)
		if len(ms) != 1 {
			return "", fmt.Errorf("--machine %s matches %d machines; give a longer prefix (fleetctl list-machines --full)", o.machine, len(ms))
		}
		m = ms[0]
	case o.unit != "":
		if m = byUnit(o.unit); m == nil {
			return "", fmt.Errorf("unit %s is not running on any machine", unitfile.Mangle(o.unit))
		}
	case arg == "":
		return "", errors.New("name a machine or a unit: fleetctl ssh MACHINE|UNIT [-- COMMAND]")
	default:
		ms, u := byPrefix(arg), byUnit(arg)
		switch {
		case len(ms) > 0 && u != nil:
			return "", fmt.Errorf("ambiguous argument %q: it names both a machine and a unit; use --machine or --unit", arg)
		case len(ms) > 1:
			return "", fmt.Errorf("%q matches %d machines; give a longer prefix", arg, len(ms))
		case len(ms) == 1:
			m = ms[0]
		case u != nil:
			m = u
		default:
			return "", fmt.Errorf("%q is neither a machine nor a unit running on one (fleetctl list-machines, fleetctl list-units)", arg)
		}
	}
	if m.IP == "" {
		return "", fmt.Errorf("machine %s has no public IP to reach it on", m.ID)
	}
	return m.IP, nil
}

// sshArgs are the system ssh's arguments for fleet's SSH options: the
// machine's port and user, the bastion (--tunnel), the connect timeout, the
// known-hosts file and whether host keys are checked (asking before trusting
// a new one, as fleet did).
func sshArgs(g globalOptions, o *sshOptions, ip string, command []string) []string {
	args := []string{"-p", strconv.Itoa(o.port), "-l", g.sshUser}
	if g.tunnel != "" {
		args = append(args, "-J", g.tunnel)
	}
	if g.sshTimeout > 0 {
		args = append(args, "-o", fmt.Sprintf("ConnectTimeout=%d", int(math.Ceil(g.sshTimeout))))
	}
	if g.knownHosts != "" {
		args = append(args, "-o", "UserKnownHostsFile="+expandHome(g.knownHosts))
	}
	if g.strictHostChecks {
		args = append(args, "-o", "StrictHostKeyChecking=ask")
	} else {
		args = append(args, "-o", "StrictHostKeyChecking=no")
	}
	if o.forwardAgent {
		args = append(args, "-A")
	}
	args = append(args, ip)
	return append(args, command...)
}

// expandHome replaces a leading ~/ with the user's home directory.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// runSSH runs the system's ssh with the terminal, and exits with its code.
func (c *cli) runSSH(o *sshOptions, ip string, command []string) error {
	if kh := expandHome(c.opts.knownHosts); kh != "" {
		_ = os.MkdirAll(filepath.Dir(kh), 0o700) // ssh does not create the directory of its known-hosts file
	}
	cmd := exec.Command("ssh", sshArgs(c.opts, o, ip, command)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.out, c.errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.ExitCode(), err: fmt.Errorf("ssh exited with status %d", ee.ExitCode())}
	}
	if err != nil {
		return fmt.Errorf("run ssh (is an OpenSSH client installed?): %w", err)
	}
	return nil
}
