package devcluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// MachineOptions configures one fleetd machine process.
type MachineOptions struct {
	Fleetd    string        // fleetd binary
	ConsulURL string        // Consul HTTP address the machine talks to
	ID        string        // machine ID; random when empty
	IP        string        // public IP the machine announces
	Metadata  string        // k=v,k=v
	Dir       string        // the machine's own directory: units, logs, fleetd.log
	TTL       time.Duration // heartbeat TTL; fleetd's default when zero
	Prefix    string        // key prefix; fleetd's default when empty
	Extra     []string      // more flags for "fleetd agent"
	Env       []string      // more environment (KEY=value) for fleetd and so for its units
}

// maxSocketPath is the longest path a unix socket can have on Linux
// (sun_path, less its terminating NUL).
const maxSocketPath = 107

// Machine is a fleetd agent running as its own process, so it can be killed
// alone like a real machine.
type Machine struct {
	ID, IP, Dir string
	// FleetAPI is the endpoint of the machine's fleet HTTP API
	// (unix://<Dir>/fleet.sock), for fleet's own fleetctl --driver API
	// and Go client; "" when Dir's path is too long for a socket.
	FleetAPI string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// NewMachineID returns a random 32-hex-character ID like /etc/machine-id.
func NewMachineID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StartMachine starts "fleetd agent" with the exec driver.
func StartMachine(opts MachineOptions) (*Machine, error) {
	if opts.ID == "" {
		opts.ID = NewMachineID()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"agent",
		"--endpoint", opts.ConsulURL,
		"--machine-id", opts.ID,
		"--public-ip", opts.IP,
		"--driver", "exec",
		"--units-dir", filepath.Join(opts.Dir, "units"),
		"--logs-dir", filepath.Join(opts.Dir, "logs"),
		"--config", "", // a dev machine reads no /etc/fleet/fleet.conf
		"--api-addr", opts.IP + ":0",
		"--metrics-addr", "127.0.0.1:0", // its own port: machines share the host
		"--pprof", // loopback only: profiles for whoever develops on this host
	}
	if opts.Metadata != "" {
		args = append(args, "--metadata", opts.Metadata)
	}
	if opts.TTL > 0 {
		args = append(args, "--agent-ttl", opts.TTL.String())
	}
	if opts.Prefix != "" {
		args = append(args, "--key-prefix", opts.Prefix)
	}
	sock := filepath.Join(opts.Dir, "fleet.sock")
	if len(sock) > maxSocketPath {
		sock = ""
	}
	args = append(args, "--fleet-api-socket", sock)
	args = append(args, opts.Extra...)
	logf, err := os.OpenFile(filepath.Join(opts.Dir, "fleetd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(opts.Fleetd, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(fleetdEnv(), opts.Env...)
	// Own process group: Ctrl-C at the terminal reaches machines through
	// fleetd dev, in order. SIGKILL if the parent dies: no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start machine %s: %w", opts.ID, err)
	}
	m := &Machine{ID: opts.ID, IP: opts.IP, Dir: opts.Dir, cmd: cmd, exited: make(chan struct{})}
	if sock != "" {
		m.FleetAPI = "unix://" + sock
	}
	go func() { _ = cmd.Wait(); close(m.exited) }()
	return m, nil
}

// fleetdEnv is the environment without FLEET_* settings of the caller's, so
// a machine is configured by its flags alone.
func fleetdEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if len(e) >= 6 && e[:6] == "FLEET_" {
			continue
		}
		env = append(env, e)
	}
	return env
}

// PID is the fleetd process ID.
func (m *Machine) PID() int { return m.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (m *Machine) Exited() <-chan struct{} { return m.exited }

// Kill kills the machine at once (SIGKILL) and waits for it: a machine
// failure. Its units die with it.
func (m *Machine) Kill() {
	_ = m.cmd.Process.Kill()
	<-m.exited
}

// Stop stops the machine gracefully (SIGTERM: it unloads its units and leaves
// the cluster), with SIGKILL after 30s.
func (m *Machine) Stop() {
	stopProcess(m.cmd.Process, m.exited, 30*time.Second)
}

// CheckRunning checks that unit really runs on m: its log keeps growing
// and holds what HelloService prints. It takes half a second.
func (m *Machine) CheckRunning(unit string) error {
	p := filepath.Join(m.Dir, "logs", unit+".log")
	a, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	b, _ := os.ReadFile(p)
	if len(b) <= len(a) || !strings.Contains(string(b), "Hello World") {
		return fmt.Errorf("%s is not running on %s: its output did not grow", unit, m.ID)
	}
	return nil
}
