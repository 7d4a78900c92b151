// Command fleetctl is fleet's command-line client. It talks to Consul, where
// fleet keeps all its state, and offers fleet's commands with fleet's output.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spf13/cobra"

	"github.com/wasmfleet/fleet/internal/config"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit code other than 1. A nil err means the command
// has already said everything it had to say.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// run executes fleetctl with args and returns the exit code; tests call it
// directly.
func run(args []string, stdout, stderr io.Writer) int {
	return newCLI(stdout, stderr).execute(args)
}

// execute runs the command args name and returns its exit code.
func (c *cli) execute(args []string) int {
	root := c.rootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if c.reg != nil {
		registry.CloseIdle(c.reg.Client())
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.err == nil {
		return ee.code
	}
	fmt.Fprintln(c.errOut, "Error:", permissionErr(err))
	if ee != nil {
		return ee.code
	}
	return 1
}

// globalOptions are the flags every command takes.
type globalOptions struct {
	endpoint string
	token    string
	prefix   string

	requestTimeout float64 // seconds to connect to Consul
	debug          bool

	// fleet's SSH options, for fleetctl ssh.
	sshUser          string
	tunnel           string
	sshTimeout       float64
	knownHosts       string
	strictHostChecks bool
}

// cli is what every command works with.
type cli struct {
	opts   globalOptions
	out    io.Writer
	errOut io.Writer
	reg    *registry.Registry // fleet's state in Consul; connected on first use
	state  clusterReader      // what commands read the cluster through: reg, or a fixedCluster
	live   *liveLine          // progress while a command blocks; draws only on a terminal
}

func newCLI(stdout, stderr io.Writer) *cli {
	return &cli{out: stdout, errOut: stderr, live: newLiveLine(stdout, stderr)}
}

// reader is what commands read the cluster through: the registry, unless
// a snapshot stands in for it (fixedCluster).
func (c *cli) reader() (clusterReader, error) {
	if c.state != nil {
		return c.state, nil
	}
	reg, err := c.registry()
	if err != nil {
		return nil, err
	}
	c.state = reg
	return reg, nil
}

// registry connects on first use.
func (c *cli) registry() (*registry.Registry, error) {
	if c.reg != nil {
		return c.reg, nil
	}
	o := registry.ClientOptions{DialTimeout: time.Duration(c.opts.requestTimeout * float64(time.Second))}
	if c.opts.debug {
		o.Debug = c.errOut
	}
	client, err := registry.NewClientWith(c.endpoint(), c.opts.token, o)
	var perr *fs.PathError
	if errors.As(err, &perr) || err != nil && strings.Contains(err.Error(), "Error loading CA") {
		return nil, fmt.Errorf("%w (check the files CONSUL_CACERT, CONSUL_CAPATH, CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY name)", err)
	}
	if err != nil {
		return nil, err
	}
	c.reg = registry.New(client, c.opts.prefix)
	return c.reg, nil
}

// endpoint is --endpoint, else FLEETCTL_ENDPOINT (applied to the flag),
// else CONSUL_HTTP_ADDR, else Consul's default.
func (c *cli) endpoint() string {
	if c.opts.endpoint != "" {
		return c.opts.endpoint
	}
	if v := os.Getenv("CONSUL_HTTP_ADDR"); v != "" {
		return v
	}
	return "http://127.0.0.1:8500"
}

// snapshot reads the whole cluster once.
func (c *cli) snapshot(ctx context.Context) (*registry.Snapshot, error) {
	r, err := c.reader()
	if err != nil {
		return nil, err
	}
	s, err := r.Snapshot(ctx, 0, 0)
	return s, c.consulErr(err)
}

// subtrees reads only the named parts of fleet's state (registry.Subtrees).
func (c *cli) subtrees(ctx context.Context, names ...string) (*registry.Snapshot, error) {
	r, err := c.reader()
	if err != nil {
		return nil, err
	}
	s, err := r.Subtrees(ctx, names...)
	return s, c.consulErr(err)
}

// envToken is the Consul token the environment gives, as the consul CLI
// reads it.
func (c *cli) envToken() string { return os.Getenv("CONSUL_HTTP_TOKEN") }

// consulErr adds to an error from Consul a hint of what to do when Consul
// could not be reached at all, or TLS stood in the way.
func (c *cli) consulErr(err error) error {
	if err == nil {
		return nil
	}
	if terr := tlsErr(err, c.endpoint()); terr != nil {
		return terr
	}
	var nerr *net.OpError
	if !errors.As(err, &nerr) {
		return err
	}
	return fmt.Errorf("cannot reach Consul at %s (%v); start it or point fleetctl at it with --endpoint, FLEETCTL_ENDPOINT or CONSUL_HTTP_ADDR", c.endpoint(), nerr.Err)
}

// tlsErr says what to set when err is TLS between fleetctl and Consul
// failing (the consul CLI's CONSUL_* variables configure it), and nil for
// any other error.
func tlsErr(err error, endpoint string) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		nerr      *net.OpError
		status    api.StatusError
		uerr      *url.Error
	)
	overTLS := errors.As(err, &uerr) && strings.HasPrefix(uerr.URL, "https://")
	dialed := !(errors.As(err, &nerr) && nerr.Op == "dial")
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("cannot verify the TLS certificate of Consul at %s (%v): set CONSUL_CACERT (or CONSUL_CAPATH) to the CA certificate that signed it",
			endpoint, unknownCA)
	case errors.As(err, &hostname):
		return fmt.Errorf("the TLS certificate of Consul at %s is not for the name fleetctl connects to (%v): use an address the certificate names, or set CONSUL_TLS_SERVER_NAME to one",
			endpoint, hostname)
	case errors.As(err, &verify):
		return fmt.Errorf("cannot verify the TLS certificate of Consul at %s (%v): check the certificate and CONSUL_CACERT", endpoint, verify.Err)
	case overTLS && errors.As(err, &record):
		return fmt.Errorf("Consul at %s answers plain HTTP, not HTTPS: give its address as http://host:port, or give the address of its HTTPS port (ports.https)", endpoint)
	case errors.As(err, &nerr) && nerr.Op == "remote error" && strings.HasPrefix(nerr.Err.Error(), "tls: "):
		// The server's TLS alert: with verify_incoming, Consul wants a
		// client certificate signed by its CA.
		return fmt.Errorf("Consul at %s refused the TLS connection (%v): it requires a client certificate its CA signed; set CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY to one",
			endpoint, nerr.Err)
	case overTLS && dialed && os.Getenv("CONSUL_CLIENT_CERT") == "" && !uerr.Timeout() &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		// With TLS 1.3 the server checks the client's certificate after
		// the handshake: its alert can lose the race with the request,
		// which then fails as a broken pipe, a reset, an EOF or an
		// unusable HTTP/2 connection.
		return fmt.Errorf("Consul at %s closed the TLS connection (%v), as Consul does when it requires a client certificate (verify_incoming) and gets none: set CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY to one its CA signed",
			endpoint, uerr.Err)
	case errors.As(err, &status) && status.Code == 400 && strings.Contains(status.Body, "HTTP request to an HTTPS server"):
		return fmt.Errorf("Consul at %s serves HTTPS only (%q): give its address as https://host:port (--endpoint, FLEETCTL_ENDPOINT or CONSUL_HTTP_ADDR), or set CONSUL_HTTP_SSL=true",
			endpoint, status.Body)
	}
	return nil
}

// rootCmd is fleetctl with every command, working with c.
func (c *cli) rootCmd() *cobra.Command {
	cobra.EnablePrefixMatching = true
	root := &cobra.Command{
		Use:           "fleetctl",
		Short:         "fleetctl controls a fleet cluster",
		Long:          "fleetctl runs systemd units across a fleet cluster whose state lives in Consul.",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return config.Apply(cmd.Root().PersistentFlags(), "FLEETCTL_", nil)
		},
	}
	root.SetOut(c.out)
	root.SetErr(c.errOut)
	root.SetVersionTemplate("fleetctl version {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&c.opts.endpoint, "endpoint", "", "Consul HTTP address (default: FLEETCTL_ENDPOINT, else CONSUL_HTTP_ADDR, else http://127.0.0.1:8500)")
	pf.StringVar(&c.opts.token, "token", "", "Consul ACL token (default: CONSUL_HTTP_TOKEN)")
	pf.StringVar(&c.opts.prefix, "key-prefix", registry.DefaultPrefix, "Consul KV prefix of fleet's keys")
	pf.Float64Var(&c.opts.requestTimeout, "request-timeout", 3, "seconds allowed to connect to Consul (blocking waits themselves are not cut short)")
	pf.BoolVar(&c.opts.debug, "debug", false, "print every request to Consul on stderr")
	pf.StringVar(&c.opts.sshUser, "ssh-username", "core", "user fleetctl ssh logs in as")
	pf.StringVar(&c.opts.tunnel, "tunnel", "", "fleetctl ssh reaches machines through this SSH bastion, host[:port]")
	pf.Float64Var(&c.opts.sshTimeout, "ssh-timeout", 10, "seconds allowed for fleetctl ssh to connect")
	pf.StringVar(&c.opts.knownHosts, "known-hosts-file", "~/.fleetctl/known_hosts", "where fleetctl ssh keeps machines' host keys")
	pf.BoolVar(&c.opts.strictHostChecks, "strict-host-key-checking", true, "fleetctl ssh checks host keys (asking before it trusts a new one)")
	root.AddCommand(
		newSubmitCmd(c), newLoadCmd(c), newStartCmd(c), newStopCmd(c), newUnloadCmd(c), newDestroyCmd(c),
		newListUnitsCmd(c), newListUnitFilesCmd(c), newListMachinesCmd(c), newCatCmd(c), newVersionCmd(c),
		newStatusCmd(c), newJournalCmd(c), newSSHCmd(c), newPolicyCmd(c),
		newRestartCmd(c), newVerifyCmd(c),
		newMachineMetadataCmd(c),
	)
	return root
}

func newVersionCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and exit",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(c.out, "fleetctl version %s\n", version.String())
		},
	}
}
