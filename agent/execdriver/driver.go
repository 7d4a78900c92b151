package execdriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// Driver supervises units as child processes. It implements agent.Driver.
type Driver struct {
	unitsDir string
	logsDir  string
	hostname string
	machine  string
	log      *slog.Logger

	mu      sync.Mutex
	units   map[string]*unit
	changes chan struct{}
}

type unit struct {
	name   string
	spec   map[byte]string
	file   *unitfile.File
	state  agent.UnitState
	proc   *os.Process
	since  time.Time     // when the unit last changed between active and inactive
	exited chan struct{} // closed when the main process has been reaped
	// stopping marks a stop fleet asked for, so the exit is not a failure
	// and Restart= does not apply.
	stopping bool
}

// New returns a Driver that writes unit files to unitsDir and each unit's
// output to logsDir/<unit>.log.
func New(unitsDir, logsDir, machineID string, log *slog.Logger) (*Driver, error) {
	for _, d := range []string{unitsDir, logsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("exec driver: %w", err)
		}
	}
	host, _ := os.Hostname()
	return &Driver{unitsDir: unitsDir, logsDir: logsDir, hostname: host, machine: machineID, log: log,
		units: map[string]*unit{}, changes: make(chan struct{}, 1)}, nil
}

// Changes fires when a unit's state may have changed.
func (d *Driver) Changes() <-chan struct{} { return d.changes }

func (d *Driver) changed() {
	select {
	case d.changes <- struct{}{}:
	default:
	}
}

// State returns the unit's state; not-found for a unit not loaded.
func (d *Driver) State(name string) agent.UnitState {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u := d.units[name]; u != nil {
		return u.state
	}
	return agent.UnitState{Load: "not-found", Active: "inactive", Sub: "dead"}
}

func (d *Driver) setState(u *unit, active, sub string) {
	d.mu.Lock()
	if u.state.Active != active {
		u.since = time.Now()
	}
	u.state.Active, u.state.Sub = active, sub
	d.mu.Unlock()
	d.changed()
}

// MainPID is the PID of the unit's main process, 0 when it is not running.
func (d *Driver) MainPID(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u := d.units[name]; u != nil && u.proc != nil {
		return u.proc.Pid
	}
	return 0
}

// Sync does nothing: the exec driver reads unit files at Load.
func (d *Driver) Sync(context.Context) error { return nil }

// Existing is empty: the exec driver's units are fleetd's children and do
// not outlive it.
func (d *Driver) Existing(context.Context) (map[string]agent.Have, error) { return nil, nil }

// Load writes the unit file and remembers the unit.
func (d *Driver) Load(ctx context.Context, name string, f *unitfile.File) error {
	if err := d.Unload(ctx, name); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.unitsDir, name), []byte(f.String()), 0o644); err != nil {
		return fmt.Errorf("write unit file: %w", err)
	}
	ni := unitfile.ParseName(name)
	u := &unit{
		name: name,
		file: f,
		spec: map[byte]string{'n': name, 'N': strings.TrimSuffix(name, ni.Suffix), 'p': ni.Prefix, 'i': ni.Instance,
			'H': d.hostname, 'm': d.machine, '%': "%"},
		state: agent.UnitState{Load: "loaded", Active: "inactive", Sub: "dead"},
	}
	d.mu.Lock()
	d.units[name] = u
	d.mu.Unlock()
	d.changed()
	return nil
}

func (d *Driver) get(name string) (*unit, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.units[name]
	if u == nil {
		return nil, fmt.Errorf("unit %s is not loaded", name)
	}
	return u, nil
}

func (u *unit) values(name string) []string {
	var out []string
	for _, v := range u.file.Values("Service", name) {
		out = append(out, expand(v, u.spec))
	}
	return out
}

func (u *unit) last(name, def string) string {
	if vs := u.values(name); len(vs) > 0 {
		return vs[len(vs)-1]
	}
	return def
}

func (u *unit) command(c command, out *os.File) *exec.Cmd {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = u.last("WorkingDirectory", "/")
	cmd.Env = os.Environ()
	for _, e := range u.values("Environment") {
		words, err := parseCommand(e)
		if err == nil {
			cmd.Env = append(cmd.Env, words.argv...)
		}
	}
	// Own process group, so stop reaches the whole tree; SIGKILL when fleetd
	// dies, so a dead machine's units die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (d *Driver) logFile(u *unit) (*os.File, error) {
	return os.OpenFile(filepath.Join(d.logsDir, u.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// Start runs ExecStartPre lines, then starts ExecStart and supervises it.
func (d *Driver) Start(ctx context.Context, name string) error {
	u, err := d.get(name)
	if err != nil {
		return err
	}
	d.mu.Lock()
	running := u.proc != nil
	u.stopping = false
	d.mu.Unlock()
	if running {
		return nil
	}
	starts := u.values("ExecStart")
	if len(starts) == 0 {
		d.setState(u, "failed", "failed")
		return fmt.Errorf("unit %s has no [Service] ExecStart; the exec driver runs only services with a command", name)
	}
	main, err := parseCommand(starts[len(starts)-1])
	if err != nil {
		d.setState(u, "failed", "failed")
		return fmt.Errorf("unit %s: ExecStart: %w", name, err)
	}
	out, err := d.logFile(u)
	if err != nil {
		return err
	}
	defer out.Close()
	d.setState(u, "activating", "start-pre")
	for _, line := range u.values("ExecStartPre") {
		c, err := parseCommand(line)
		if err == nil {
			err = u.command(c, out).Run()
		}
		if err != nil && !c.ignoreFailure {
			d.setState(u, "failed", "failed")
			return fmt.Errorf("unit %s: ExecStartPre %q: %w", name, line, err)
		}
	}
	return d.spawn(u, main)
}

func (d *Driver) spawn(u *unit, main command) error {
	out, err := d.logFile(u)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := u.command(main, out)
	if err := cmd.Start(); err != nil {
		d.setState(u, "failed", "failed")
		return fmt.Errorf("unit %s: start %s: %w", u.name, main.argv[0], err)
	}
	exited := make(chan struct{})
	d.mu.Lock()
	u.proc, u.exited = cmd.Process, exited
	d.mu.Unlock()
	d.setState(u, "active", "running")
	go d.supervise(u, cmd, main, exited)
	return nil
}

// supervise waits for the main process and applies Restart=.
func (d *Driver) supervise(u *unit, cmd *exec.Cmd, main command, exited chan struct{}) {
	err := cmd.Wait()
	d.mu.Lock()
	stopping := u.stopping
	u.proc = nil
	d.mu.Unlock()
	close(exited)
	if stopping {
		d.setState(u, "inactive", "dead")
		return
	}
	failed := err != nil && !main.ignoreFailure
	restart := u.last("Restart", "no")
	if restart == "always" || (restart == "on-failure" && failed) {
		wait, perr := time.ParseDuration(u.last("RestartSec", "100ms"))
		if perr != nil {
			if secs, serr := strconv.ParseFloat(u.last("RestartSec", "0.1"), 64); serr == nil {
				wait = time.Duration(secs * float64(time.Second))
			}
		}
		d.setState(u, "activating", "auto-restart")
		time.Sleep(wait)
		d.mu.Lock()
		stillWanted := d.units[u.name] == u && !u.stopping
		d.mu.Unlock()
		if !stillWanted {
			d.setState(u, "inactive", "dead")
			return
		}
		if err := d.spawn(u, main); err != nil {
			d.log.Error("restart failed", "unit", u.name, "err", err)
		}
		return
	}
	if failed {
		d.log.Warn("unit exited with failure", "unit", u.name, "err", err)
		d.setState(u, "failed", "failed")
		return
	}
	d.setState(u, "inactive", "dead")
}

// stopTimeout is how long a unit gets after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// Stop runs ExecStop lines, then stops the process group: SIGTERM, and
// SIGKILL after 10s.
func (d *Driver) Stop(ctx context.Context, name string) error {
	u, err := d.get(name)
	if err != nil {
		return err
	}
	d.mu.Lock()
	u.stopping = true
	proc, exited := u.proc, u.exited
	d.mu.Unlock()
	if proc == nil {
		d.setState(u, "inactive", "dead")
		return nil
	}
	d.setState(u, "deactivating", "stop")
	if out, err := d.logFile(u); err == nil {
		for _, line := range u.values("ExecStop") {
			if c, err := parseCommand(line); err == nil {
				cmd := u.command(c, out)
				cmd.Env = append(cmd.Env, "MAINPID="+strconv.Itoa(proc.Pid))
				_ = cmd.Run()
			}
		}
		out.Close()
	}
	_ = syscall.Kill(-proc.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
		<-exited
	case <-ctx.Done():
		_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
		<-exited
	}
	return nil
}

// Unload stops the unit and removes its file.
func (d *Driver) Unload(ctx context.Context, name string) error {
	if _, err := d.get(name); err != nil {
		return nil // nothing loaded: nothing to do
	}
	if err := d.Stop(ctx, name); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.units, name)
	d.mu.Unlock()
	if err := os.Remove(filepath.Join(d.unitsDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove unit file: %w", err)
	}
	d.changed()
	return nil
}
