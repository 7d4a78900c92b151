package devcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A box is a real systemd machine on this host: systemd-nspawn booting an
// overlay of the host's root, so one host runs several machines, each with its
// own systemd (PID 1 of its own PID namespace), hostname, machine-id, /run
// and journal, while sharing the host's network and binaries. Everything
// the box writes or deletes lands in a tmpfs layer over the host's root: a
// systemd booted on the host's root itself would run systemd-tmpfiles there,
// which empties the host's /tmp.

// BoxOptions configures one box.
type BoxOptions struct {
	Name      string    // hostname and node name: lowercase letters, digits and '-'; unique on the host
	MachineID string    // 32 hex digits for /etc/machine-id; NewMachineID when empty
	IP        string    // the box's own address, e.g. 127.0.0.11 (all of 127/8 is local on Linux)
	Log       io.Writer // the container's console output; discarded when nil
}

// Box is a booted systemd machine. Kill it when done.
//
// The box shares the host's network namespace, so IP is an address the box's
// processes bind, not an interface of its own.
type Box struct {
	Name, MachineID, IP string

	cmd     *exec.Cmd // unshare -> bash (boxScript) -> systemd-nspawn -> systemd
	exited  chan struct{}
	log     io.Writer   // BoxOptions.Log
	console *tailWriter // the console's tail, for errors
	pid     int         // the container's PID 1 as seen from the host
	dir     string      // host directory the box's tmpfs is mounted on, in its own mount namespace
	cgroups []string    // fleet-box-NAME in every cgroup hierarchy systemd uses

	killOnce sync.Once
	killErr  error
}

// boxTarget is the unit a box boots: sysinit, the journal and D-Bus, and
// nothing of the host's default target (which started the host's services,
// on the shared network).
const boxTarget = "fleet-box.target"

const boxTargetUnit = `[Unit]
Description=fleet box
Requires=dbus.socket systemd-journald.socket
After=dbus.socket systemd-journald.socket
AllowIsolate=yes
`

// boxScript runs under unshare in a private mount namespace, so its mounts
// exist only for the box and vanish with it, and as PID 1 of a PID namespace
// of its own (see boxUnshare). Arguments: NAME DIR MACHINEID CGROUPDIR...
const boxScript = `set -eu
name=$1 dir=$2 id=$3
shift 3
for cg in "$@"; do echo $$ > "$cg/cgroup.procs"; done
mount -t tmpfs tmpfs "$dir"
mkdir "$dir/upper" "$dir/work" "$dir/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
# nspawn keeps locks and propagation mounts in /run/systemd/nspawn; on a host
# whose /run is not a tmpfs they would stay on its disk.
mkdir -p /run/systemd/nspawn
mount -t tmpfs tmpfs /run/systemd/nspawn
echo "$id" > "$dir/root/etc/machine-id"
echo "$name" > "$dir/root/etc/hostname"
mkdir -p "$dir/root/etc/systemd/system"
cat > "$dir/root/etc/systemd/system/` + boxTarget + `" <<'EOF'
` + boxTargetUnit + `EOF
# Not exec: the script stays PID 1 of this namespace and nspawn runs as the
# ordinary process it is written to be (systemd's code acts as init as PID 1).
systemd-nspawn -q -D "$dir/root" -b --register=no --keep-unit --machine="$name" \
	-E container=systemd-nspawn -- --unit=` + boxTarget + ` || exit $?
`

// boxUnshare are unshare's flags. The PID namespace is there so that nothing
// outlives the process that started the box (a test, fleetd dev): the
// container survives a SIGKILL to nspawn, but not the end of the namespace
// it lives in. When that process dies, Pdeathsig kills unshare,
// --kill-child kills the script, PID 1 of this namespace, and the kernel
// kills everything below it.
var boxUnshare = []string{"--mount", "--propagation", "private",
	"--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc"}

// boxBootLimit is how long a box may take to boot; it takes well under a
// second here.
const boxBootLimit = 30 * time.Second

var (
	boxNameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$`)
	machineIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// BoxSupport says why this host cannot run systemd boxes, or nil when it can.
func BoxSupport() error {
	if os.Geteuid() != 0 {
		return errors.New("systemd machines need root")
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		return errors.New("systemd-nspawn not found: install Debian's systemd-container: apt-get install -y systemd-container")
	}
	for _, tool := range []string{"unshare", "nsenter", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: install util-linux and bash", tool)
		}
	}
	return nil
}

// StartBox boots a box and waits until its systemd has finished booting.
//
// # Notes
//
// Booted means "systemctl is-system-running" inside says running or degraded:
// both mean the boot is over and no jobs are pending. degraded (some unit
// failed) is accepted because a unit of the host's that cannot work in a
// container should not fail every test; a test that cares checks
// "systemctl --failed" itself.
//
// # Errors
//
// StartBox fails when not run as root, when systemd-nspawn is missing, when a
// box with the same name is still running, and when the box does not boot
// within 30 seconds; the error then ends with the console's last lines.
func StartBox(ctx context.Context, opts BoxOptions) (*Box, error) {
	if err := BoxSupport(); err != nil {
		return nil, err
	}
	if !boxNameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("box name %q: use lowercase letters, digits and '-' (a hostname)", opts.Name)
	}
	if opts.MachineID == "" {
		opts.MachineID = NewMachineID()
	}
	if !machineIDRE.MatchString(opts.MachineID) {
		return nil, fmt.Errorf("box %s: machine ID %q: use 32 lowercase hex digits (NewMachineID makes one)", opts.Name, opts.MachineID)
	}
	if net.ParseIP(opts.IP) == nil {
		return nil, fmt.Errorf("box %s: IP %q: give the box its own address, such as 127.0.0.11", opts.Name, opts.IP)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	cgroups, err := makeBoxCgroups(opts.Name)
	if err != nil {
		return nil, err
	}
	undo := func(err error) error { return errors.Join(err, removeCgroups(cgroups)) }
	// The mount point, empty on the host: the box's tmpfs is mounted on it in
	// the box's mount namespace only. One that is there already is the
	// leftover of a box whose starting process died (a live box holds its cgroup).
	dir := filepath.Join(os.TempDir(), "fleet-box-"+opts.Name)
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, undo(fmt.Errorf("box %s: remove the leftover mount point: %w", opts.Name, err))
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, undo(fmt.Errorf("box %s: make its mount point: %w", opts.Name, err))
	}
	b := &Box{Name: opts.Name, MachineID: opts.MachineID, IP: opts.IP,
		exited: make(chan struct{}), log: opts.Log, console: &tailWriter{max: 4096}, dir: dir, cgroups: cgroups}
	args := slices.Concat(boxUnshare, []string{"bash", "-c", boxScript, "fleet-box", opts.Name, dir, opts.MachineID}, cgroups)
	b.cmd = exec.Command("unshare", args...)
	b.cmd.Stdout = io.MultiWriter(opts.Log, b.console)
	b.cmd.Stderr = b.cmd.Stdout
	b.cmd.WaitDelay = 5 * time.Second
	// SIGKILL if this process dies: the box goes with it (boxUnshare).
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		return nil, undo(errors.Join(fmt.Errorf("start box %s: %w", opts.Name, err), os.Remove(dir)))
	}
	go func() { _ = b.cmd.Wait(); close(b.exited) }()
	if err := b.waitBooted(ctx); err != nil {
		if kerr := b.Kill(); kerr != nil {
			err = fmt.Errorf("%w; and cleaning up: %v", err, kerr)
		}
		return nil, err
	}
	return b, nil
}

// waitBooted finds the container's PID 1 and waits until its systemd says
// the boot is over.
func (b *Box) waitBooted(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, boxBootLimit)
	defer cancel()
	state := "not started"
	for {
		if b.pid == 0 {
			b.pid = containerInit(b.cmd.Process.Pid)
		}
		if b.pid != 0 {
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			out, _ := b.Exec(qctx, "systemctl", "is-system-running")
			qcancel()
			if s := strings.TrimSpace(string(out)); s != "" {
				state = s
			}
			switch state {
			case "running":
				return nil
			case "degraded":
				failed, _ := b.Exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
				fmt.Fprintf(b.log, "devcluster: box %s booted degraded; failed units:\n%s", b.Name, failed)
				return nil
			}
		}
		select {
		case <-b.exited:
			return fmt.Errorf("box %s exited while booting (%s); console:\n%s", b.Name, b.cmd.ProcessState, b.console)
		case <-ctx.Done():
			return fmt.Errorf("box %s did not boot within %s (is-system-running: %s); console:\n%s", b.Name, boxBootLimit, state, b.console)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PID is the box's PID 1 (its systemd) as seen from the host. SIGKILL to it
// takes the whole machine down at once.
func (b *Box) PID() int { return b.pid }

// ConsulURL is where the box's Consul client agent (StartConsulClient)
// answers, in the form fleetd's --endpoint and CONSUL_HTTP_ADDR take.
func (b *Box) ConsulURL() string { return "http://" + net.JoinHostPort(b.IP, "8500") }

// FleetdArgs is the command line that runs fleetd (the binary at fleetd,
// which the box sees at the same path) as this box's machine: the systemd
// driver, the box's own Consul client agent (StartConsulClient), its
// machine ID and IP, heartbeat TTL ttl, its API and metrics on free ports
// of its IP, and no configuration file. Pass it to Start, after any
// "env K=V" prefix, with more flags appended.
func (b *Box) FleetdArgs(fleetd, metadata string, ttl time.Duration) []string {
	return []string{fleetd, "agent",
		"--endpoint", b.ConsulURL(),
		"--machine-id", b.MachineID,
		"--public-ip", b.IP,
		"--metadata", metadata,
		"--driver", "systemd",
		"--agent-ttl", ttl.String(),
		"--api-addr", b.IP + ":0",
		"--metrics-addr", b.IP + ":0", "--pprof",
		"--config", "",
	}
}

// Exec runs a command inside the box, as a process of the box (its
// namespaces, root and PID namespace, so systemctl talks to the box's
// systemd), and returns its combined output. The environment is a minimal
// one (PATH and HOME); use "env K=V cmd" for more.
func (b *Box) Exec(ctx context.Context, args ...string) ([]byte, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("box %s: Exec needs a command", b.Name)
	}
	out, err := b.command(ctx, args).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return out, fmt.Errorf("run %q in box %s: %w", strings.Join(args, " "), b.Name, err)
	}
	return out, nil
}

// command is nsenter into every namespace of the box's PID 1. nsenter forks:
// the program is its child, inside the box's PID namespace. Their own
// process group lets one signal reach nsenter and the program together.
func (b *Box) command(ctx context.Context, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(b.pid), "-a", "--"}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// BoxProcess is a long-running program inside a box, started by Box.Start.
type BoxProcess struct {
	cmd    *exec.Cmd // nsenter, which waits for the program
	pid    int       // the program, as seen from the host
	exited chan struct{}
}

// Start starts a long-running program inside the box (see Exec for how),
// with its output appended to logPath on the host. It dies with the box.
func (b *Box) Start(logPath string, args ...string) (*BoxProcess, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("box %s: Start needs a command", b.Name)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("box %s: open the log for %s: %w", b.Name, args[0], err)
	}
	defer logf.Close()
	cmd := b.command(context.Background(), args)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in box %s: %w", args[0], b.Name, err)
	}
	p := &BoxProcess{cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	// nsenter forks the program right after entering the namespaces; signals
	// go to the program, and nsenter exits with it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if kids := childPIDs(cmd.Process.Pid); len(kids) > 0 {
			p.pid = kids[0]
			break
		}
		select {
		case <-p.exited:
			return p, nil
		case <-time.After(5 * time.Millisecond):
		}
	}
	return p, nil
}

// PID is the program's process ID as seen from the host (nsenter's, if the
// program could not be found).
func (p *BoxProcess) PID() int { return p.pid }

// Exited is closed when the program has exited.
func (p *BoxProcess) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM to the program, SIGKILL after 10s, and waits for it.
func (p *BoxProcess) Stop() {
	prog, err := os.FindProcess(p.pid)
	if err != nil {
		p.Kill()
		return
	}
	defer prog.Release()
	stopProcess(prog, p.exited, 10*time.Second)
}

// Freeze stops the program (SIGSTOP), as a hung process or a paused VM
// would be; Thaw lets it go on.
func (p *BoxProcess) Freeze() error { return syscall.Kill(p.pid, syscall.SIGSTOP) }

// Thaw continues a frozen program. nsenter stops itself when its child
// stops (to pass job control on), so it is continued too: a stopped
// nsenter never reaps the program, and the box could not be taken down.
func (p *BoxProcess) Thaw() error {
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGCONT)
	return syscall.Kill(p.pid, syscall.SIGCONT)
}

// Kill kills the program and nsenter at once (SIGKILL) and waits for them.
func (p *BoxProcess) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// StartConsulClient runs a Consul client agent inside the box and waits until
// it has joined the cluster at joinAddr (a server's serf LAN address, as
// Consul.SerfLANAddr). The agent's node name is the box's name, it binds the
// box's IP with Consul's default ports (HTTP at ConsulURL) and no DNS, gRPC or
// WAN ports, keeps its data in /var/lib/fleet-consul inside the box and logs
// warnings and errors to logPath on the host.
func (b *Box) StartConsulClient(consulBin, joinAddr, logPath string, hcl ...string) (*BoxProcess, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const dataDir = "/var/lib/fleet-consul"
	if out, err := b.Exec(ctx, "mkdir", "-p", dataDir); err != nil {
		return nil, fmt.Errorf("%w: %s", err, out)
	}
	args := []string{consulBin, "agent",
		"-node", b.Name, "-bind", b.IP, "-client", b.IP, "-data-dir", dataDir,
		"-retry-join", joinAddr, "-log-level", "warn",
		"-hcl", "ports { dns = -1, grpc = -1, grpc_tls = -1, serf_wan = -1 }"}
	for _, h := range hcl {
		if h != "" {
			args = append(args, "-hcl", h)
		}
	}
	p, err := b.Start(logPath, args...)
	if err != nil {
		return nil, err
	}
	leaderURL := b.ConsulURL() + "/v1/status/leader"
	for {
		// The box shares the host's network, so the host asks the agent directly.
		if leader, err := httpGet(ctx, leaderURL); err == nil && strings.Trim(leader, "\"\n") != "" {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("consul client in box %s exited (is %s:8500 or :8301 taken?); see %s", b.Name, b.IP, logPath)
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("consul client in box %s did not join %s within 30s; see %s", b.Name, joinAddr, logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill kills the box at once (SIGKILL to its PID 1: a machine failure),
// waits for systemd-nspawn to exit and removes the box's cgroups and
// directory. It is safe to call more than once; later calls return the
// first call's error.
func (b *Box) Kill() error {
	b.killOnce.Do(func() { b.killErr = b.kill() })
	return b.killErr
}

func (b *Box) kill() error {
	if b.pid == 0 {
		b.pid = containerInit(b.cmd.Process.Pid)
	}
	if b.pid != 0 {
		_ = syscall.Kill(b.pid, syscall.SIGKILL)
	} else {
		_ = b.cmd.Process.Kill() // no container yet: unshare takes its namespace down
	}
	var errs []error
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
		errs = append(errs, fmt.Errorf("box %s: systemd-nspawn outlived its container by 10s; killed its namespace", b.Name))
	}
	if err := removeCgroups(b.cgroups); err != nil {
		errs = append(errs, fmt.Errorf("box %s: %w", b.Name, err))
	}
	if err := os.Remove(b.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("box %s: remove its mount point: %w", b.Name, err))
	}
	return errors.Join(errs...)
}

// boxCgroupRoots are the cgroup hierarchies systemd uses: the unified one and
// the named systemd one on a hybrid host, or /sys/fs/cgroup alone when the
// host runs cgroup v2 only.
func boxCgroupRoots() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	var roots []string
	for _, r := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"} {
		if _, err := os.Stat(filepath.Join(r, "cgroup.procs")); err == nil {
			roots = append(roots, r)
		}
	}
	return roots
}

// makeBoxCgroups makes fleet-box-NAME in every hierarchy. Without a host
// systemd, nspawn --keep-unit boots the container in the current cgroup, so
// boxes started from one cgroup would share their units' cgroups: the same
// unit name on two boxes would be one cgroup, and stopping it on one box
// could kill it on the other.
func makeBoxCgroups(name string) ([]string, error) {
	roots := boxCgroupRoots()
	if len(roots) == 0 {
		return nil, errors.New("no cgroup hierarchy found under /sys/fs/cgroup: mount cgroup2 there (boxes need one)")
	}
	var dirs []string
	for _, root := range roots {
		dir := filepath.Join(root, "fleet-box-"+name)
		if _, err := os.Stat(dir); err == nil {
			// A live box's tree is left alone; the leftover of a box whose
			// starting process died goes quietly.
			if procs := cgroupProcs(dir); len(procs) > 0 {
				removeCgroups(dirs)
				return nil, fmt.Errorf("a box named %s is running (processes %s in %s): kill it or pick another name", name, procs, dir)
			}
			if err := rmdirTrees([]string{dir}); err != nil {
				removeCgroups(dirs)
				return nil, err
			}
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			removeCgroups(dirs)
			return nil, fmt.Errorf("make the cgroup of box %s: %w", name, err)
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// removeCgroups removes the cgroup directories under each of dirs, deepest
// first, with rmdir only: a cgroup with processes in it stays, and after a
// few seconds of retrying that is an error naming them.
func removeCgroups(dirs []string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := rmdirTrees(dirs)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func rmdirTrees(roots []string) error {
	dirs := cgroupDirs(roots...)
	sort.Slice(dirs, func(i, j int) bool {
		return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/")
	})
	for _, d := range dirs {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("remove cgroup %s (processes %s): %w", d, cgroupProcs(d), err)
		}
	}
	return nil
}

// cgroupDirs returns the cgroup directories under roots, roots included.
func cgroupDirs(roots ...string) []string {
	var dirs []string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	return dirs
}

// cgroupProcs returns the processes in the cgroup tree at root.
func cgroupProcs(root string) []string {
	var procs []string
	for _, d := range cgroupDirs(root) {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		procs = append(procs, strings.Fields(string(b))...)
	}
	return procs
}

// containerInit returns the host PID of the container's PID 1 (its systemd)
// among the descendants of root, or 0 if there is none yet: the child of
// systemd-nspawn that is PID 1 of its own PID namespace.
func containerInit(root int) int {
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		status := procStatus(pid)
		for _, kid := range childPIDs(pid) {
			if len(status["Name"]) == 1 && status["Name"][0] == "systemd-nspawn" {
				if ns := procStatus(kid)["NSpid"]; len(ns) > 1 && ns[len(ns)-1] == "1" {
					return kid
				}
			}
			queue = append(queue, kid)
		}
	}
	return 0
}

// childPIDs returns the children of pid, found by their PPid in /proc (this
// kernel has no /proc/PID/task/TID/children).
func childPIDs(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := strconv.Itoa(pid)
	var kids []int
	for _, e := range entries {
		kid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid := procStatus(kid)["PPid"]; len(ppid) == 1 && ppid[0] == want {
			kids = append(kids, kid)
		}
	}
	return kids
}

// procStatus returns the fields of /proc/PID/status, each split on white
// space; nil if the process is gone.
func procStatus(pid int) map[string][]string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	fields := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			fields[k] = strings.Fields(v)
		}
	}
	return fields
}

// tailWriter keeps the last max bytes written to it, for error messages.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = w.buf[len(w.buf)-w.max:]
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// httpGet returns the body of a 200 response from url.
func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}
