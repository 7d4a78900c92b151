package systemd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/internal/watch"
)

// Options configures the driver.
type Options struct {
	UnitsDir string // where unit files are written; /run/fleet/units by default
	User     bool   // drive the calling user's systemd (systemd --user) instead of the system's
	Log      *slog.Logger
}

// Driver drives systemd. It implements agent.Driver.
type Driver struct {
	opts Options
	log  *slog.Logger

	connMu sync.Mutex
	conn   *dbus.Conn

	mu      sync.Mutex
	managed map[string]bool
	states  map[string]agent.UnitState
	dirty   map[string]bool
	enabled map[string]bool // managed units enabled for their [Install] section

	// What the next Sync must reload for (needsReload).
	onDemand bool            // systemd loads a new unit file when first asked for it (245 and later)
	reload   bool            // a change since the last reload that only a reload shows systemd
	unloaded map[string]bool // units unloaded since the last reload: systemd may still hold them

	kick    chan struct{} // dirty units to refresh
	changes chan struct{}
}

// Available reports whether this host runs systemd as its init system.
func Available() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

// New connects to systemd and starts following unit state changes until ctx
// is done.
func New(ctx context.Context, opts Options) (*Driver, error) {
	if opts.UnitsDir == "" {
		opts.UnitsDir = "/run/fleet/units"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.UnitsDir, 0o755); err != nil {
		return nil, fmt.Errorf("systemd driver: %w", err)
	}
	d := &Driver{opts: opts, log: opts.Log,
		managed: map[string]bool{}, states: map[string]agent.UnitState{}, dirty: map[string]bool{},
		enabled: map[string]bool{}, unloaded: map[string]bool{},
		kick: make(chan struct{}, 1), changes: make(chan struct{}, 1)}
	if err := d.connect(ctx); err != nil {
		return nil, err
	}
	d.onDemand = loadsOnDemand(ctx, d.c())
	go d.refresher(ctx)
	go d.watchConnection(ctx)
	return d, nil
}

func (d *Driver) dial(ctx context.Context) (*dbus.Conn, error) {
	if d.opts.User {
		return dbus.NewUserConnectionContext(ctx)
	}
	return dbus.NewWithContext(ctx) // systemd's private socket as root, else the system bus
}

// connect (re)establishes the D-Bus connection and the subscription.
func (d *Driver) connect(ctx context.Context) error {
	conn, err := d.dial(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	if err := conn.Subscribe(); err != nil {
		conn.Close()
		return fmt.Errorf("subscribe to systemd signals: %w", err)
	}
	updates := make(chan *dbus.PropertiesUpdate, 1024)
	errs := make(chan error, 16)
	conn.SetPropertiesSubscriber(updates, errs)
	go d.follow(ctx, conn, updates, errs)

	d.connMu.Lock()
	old := d.conn
	d.conn = conn
	d.connMu.Unlock()
	if old != nil {
		old.Close()
	}
	d.markAllDirty()
	return nil
}

func (d *Driver) c() *dbus.Conn {
	d.connMu.Lock()
	defer d.connMu.Unlock()
	return d.conn
}

// follow turns signals about managed units into refreshes.
func (d *Driver) follow(ctx context.Context, conn *dbus.Conn, updates <-chan *dbus.PropertiesUpdate, errs <-chan error) {
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-updates:
			d.mu.Lock()
			if d.managed[u.UnitName] {
				d.dirty[u.UnitName] = true
				d.mu.Unlock()
				d.kickRefresh()
				continue
			}
			d.mu.Unlock()
		case err := <-errs:
			// The channel overflowed: a signal may be lost, so refresh all.
			d.log.Warn("systemd signal lost; refreshing all units", "err", err)
			d.markAllDirty()
		}
		if d.c() != conn {
			return // replaced by a newer connection
		}
	}
}

func (d *Driver) kickRefresh() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *Driver) markAllDirty() {
	d.mu.Lock()
	for n := range d.managed {
		d.dirty[n] = true
	}
	d.mu.Unlock()
	d.kickRefresh()
}

// refreshGather is how long the refresher lets signals come in before it
// reads the units they name. A unit's start sends several signals within
// milliseconds, and a batch of jobs many more: reading once they are in
// asks systemd for the states of many units in one call, not of a few in
// each of many.
const refreshGather = 20 * time.Millisecond

// refresher reads the state of dirty units, in one call per batch.
func (d *Driver) refresher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		if watch.Sleep(ctx, refreshGather); ctx.Err() != nil {
			return
		}
		d.mu.Lock()
		names := make([]string, 0, len(d.dirty))
		for n := range d.dirty {
			names = append(names, n)
		}
		d.dirty = map[string]bool{}
		d.mu.Unlock()
		if len(names) == 0 {
			continue
		}
		if err := d.refresh(ctx, names); err != nil {
			d.log.Warn("reading unit states failed", "err", err)
			d.mu.Lock()
			for _, n := range names {
				d.dirty[n] = true
			}
			d.mu.Unlock()
			time.Sleep(time.Second)
			d.kickRefresh()
		}
	}
}

func (d *Driver) refresh(ctx context.Context, names []string) error {
	sts, err := d.c().ListUnitsByNamesContext(ctx, names)
	if err != nil {
		return err
	}
	changed := false
	d.mu.Lock()
	for _, st := range sts {
		if !d.managed[st.Name] {
			continue
		}
		ns := agent.UnitState{Load: st.LoadState, Active: st.ActiveState, Sub: st.SubState}
		if ns.Load != "loaded" && ns.Load != "" {
			ns.Error = d.loadError(ctx, st.Name)
		}
		if d.states[st.Name] != ns {
			d.states[st.Name] = ns
			changed = true
		}
	}
	d.mu.Unlock()
	if changed {
		select {
		case d.changes <- struct{}{}:
		default:
		}
	}
	return nil
}

// loadError is systemd's reason a unit did not load (LoadError).
func (d *Driver) loadError(ctx context.Context, name string) string {
	p, err := d.c().GetUnitPropertyContext(ctx, name, "LoadError")
	if err != nil {
		return ""
	}
	if v, ok := p.Value.Value().([]any); ok && len(v) == 2 {
		if msg, ok := v[1].(string); ok {
			return msg
		}
	}
	return p.Value.String()
}

// watchConnection reconnects when systemd re-executes or D-Bus drops.
func (d *Driver) watchConnection(ctx context.Context) {
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			d.c().Close()
			return
		case <-time.After(2 * time.Second):
		}
		if d.c().Connected() {
			continue
		}
		d.log.Warn("lost the D-Bus connection to systemd; reconnecting")
		for ctx.Err() == nil {
			if err := d.connect(ctx); err != nil {
				d.log.Warn("reconnecting to systemd failed", "err", err, "retry in", backoff)
				time.Sleep(backoff)
				backoff = min(2*backoff, 30*time.Second)
				continue
			}
			backoff = time.Second
			d.log.Info("reconnected to systemd")
			break
		}
	}
}

// Changes fires when a managed unit's state changed.
func (d *Driver) Changes() <-chan struct{} { return d.changes }

// State is the last state systemd reported for the unit.
func (d *Driver) State(name string) agent.UnitState {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.states[name]; ok {
		return st
	}
	return agent.UnitState{Load: "not-found", Active: "inactive", Sub: "dead"}
}

// path returns where name's file lives, refusing names that would leave the
// units directory.
func (d *Driver) path(name string) (string, error) {
	if err := unitfile.ValidateName(name); err != nil || filepath.Base(name) != name {
		return "", fmt.Errorf("refusing unit name %q: it must be a plain unit name inside the units directory", name)
	}
	return filepath.Join(d.opts.UnitsDir, name), nil
}

func (d *Driver) manage(name string) {
	d.mu.Lock()
	d.managed[name] = true
	d.dirty[name] = true
	d.mu.Unlock()
	d.kickRefresh()
}

// Load writes the unit file and links it as a runtime unit, as
// "systemctl link --runtime" does, and enables it (over D-Bus) when it has
// an [Install] section. Sync makes systemd read it where it must.
func (d *Driver) Load(ctx context.Context, name string, f *unitfile.File) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte(f.String()), 0o644); err != nil {
		return fmt.Errorf("write unit file: %w", err)
	}
	if err := d.link(name, p); err != nil {
		_ = os.Remove(p)
		return fmt.Errorf("link %s into systemd: %w", name, err)
	}
	install := f.HasSection("Install")
	if install {
		if _, _, err := d.c().EnableUnitFilesContext(ctx, []string{p}, true, true); err != nil {
			d.removeFile(ctx, name, p)
			return fmt.Errorf("enable %s (it has an [Install] section): %w", name, err)
		}
	}
	d.mu.Lock()
	d.enabled[name] = install
	// A unit systemd holds (loaded before, or unloaded but not yet
	// forgotten) keeps its old file until a reload; so do the
	// dependencies an enable adds.
	if st, held := d.states[name]; install || d.unloaded[name] || (held && st.Load != "not-found") {
		d.reload = true
	}
	d.mu.Unlock()
	d.manage(name)
	return nil
}

// link puts a symlink to the unit file p in systemd's runtime unit
// directory, replacing one of the same name.
func (d *Driver) link(name, p string) error {
	link := filepath.Join(d.runtimeDir(), name)
	if target, err := os.Readlink(link); err == nil && target == p {
		return nil
	}
	if err := os.MkdirAll(d.runtimeDir(), 0o755); err != nil {
		return err
	}
	tmp := link + ".fleet-tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(p, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// Sync makes systemd see the loads and unloads since the last Sync: one
// daemon-reload, unless every change was a unit systemd has never loaded,
// which systemd 245 and later read from disk when first asked for them (a
// reload reads every unit again, about 1.6 s with 1,000 units), and units
// unloaded, which systemd forgets once they are stopped and their files
// gone.
func (d *Driver) Sync(ctx context.Context) error {
	if !d.needsReload() {
		return nil
	}
	if err := d.c().ReloadContext(ctx); err != nil {
		d.mu.Lock()
		d.reload = true
		d.mu.Unlock()
		return fmt.Errorf("systemd daemon-reload: %w", err)
	}
	d.markAllDirty()
	return nil
}

// needsReload reports whether the changes since the last reload need one,
// and starts counting anew when they do.
func (d *Driver) needsReload() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.reload && d.onDemand {
		return false
	}
	d.reload = false
	clear(d.unloaded)
	return true
}

// loadsOnDemand reports whether systemd loads a unit file that appeared
// after it last looked when a job first asks for the unit: systemd 245 and
// later notice that the unit directories changed (their unit cache).
func loadsOnDemand(ctx context.Context, c *dbus.Conn) bool {
	v, err := c.GetManagerProperty("Version")
	if err != nil {
		return false
	}
	v = strings.Trim(v, `"`)
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	n, err := strconv.Atoi(v[:end])
	return err == nil && n >= 245
}

// job runs a start or stop job and waits for its result.
func (d *Driver) job(ctx context.Context, verb, name string,
	run func(context.Context, string, string, chan<- string) (int, error)) error {
	ch := make(chan string, 1)
	if _, err := run(ctx, name, "replace", ch); err != nil {
		d.manage(name)
		return fmt.Errorf("systemd refused to %s %s: %w", verb, name, err)
	}
	select {
	case res := <-ch:
		d.manage(name)
		if res != "done" {
			return fmt.Errorf("systemd %s job for %s finished %q (see fleetctl list-units and the unit's journal)", verb, name, res)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start starts the unit (mode replace) and waits for the job.
func (d *Driver) Start(ctx context.Context, name string) error {
	if _, err := d.path(name); err != nil {
		return err
	}
	return d.job(ctx, "start", name, d.c().StartUnitContext)
}

// Stop stops the unit (mode replace) and waits for the job.
func (d *Driver) Stop(ctx context.Context, name string) error {
	if _, err := d.path(name); err != nil {
		return err
	}
	return d.job(ctx, "stop", name, d.c().StopUnitContext)
}

// Unload stops the unit, and only if that worked disables it, resets its
// failed state and removes its file (fleet #1216: removing the file of a
// unit that did not stop can hang systemd).
func (d *Driver) Unload(ctx context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := d.Stop(ctx, name); err != nil {
		return err
	}
	d.removeFile(ctx, name, p)
	d.mu.Lock()
	delete(d.managed, name)
	delete(d.states, name)
	delete(d.dirty, name)
	delete(d.enabled, name)
	d.unloaded[name] = true
	d.mu.Unlock()
	return nil
}

func (d *Driver) removeFile(ctx context.Context, name, p string) {
	d.mu.Lock()
	enabled, failed := d.enabled[name], d.states[name].Active == "failed"
	d.mu.Unlock()
	if enabled {
		if _, err := d.c().DisableUnitFilesContext(ctx, []string{name}, true); err != nil {
			d.log.Warn("disable unit", "unit", name, "err", err)
		}
		d.mu.Lock()
		d.reload = true // its dependencies go with a reload
		d.mu.Unlock()
	}
	if failed {
		_ = d.c().ResetFailedUnitContext(ctx, name)
	}
	// link --runtime put a symlink in systemd's runtime directory; disable
	// does not always remove it.
	link := filepath.Join(d.runtimeDir(), name)
	if target, err := os.Readlink(link); err == nil && target == p {
		_ = os.Remove(link)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("remove unit file", "unit", name, "err", err)
	}
}

func (d *Driver) runtimeDir() string {
	if d.opts.User {
		if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
			return filepath.Join(x, "systemd", "user")
		}
	}
	return "/run/systemd/system"
}

// Existing reads the unit files a previous fleetd left in the units
// directory and how far systemd has them, so the agent adopts them.
func (d *Driver) Existing(ctx context.Context) (map[string]agent.Have, error) {
	entries, err := os.ReadDir(d.opts.UnitsDir)
	if err != nil {
		return nil, fmt.Errorf("read units directory: %w", err)
	}
	have := map[string]agent.Have{}
	var names []string
	for _, e := range entries {
		if e.IsDir() || unitfile.ValidateName(e.Name()) != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.opts.UnitsDir, e.Name()))
		if err != nil {
			continue
		}
		f, err := unitfile.Parse(string(b))
		if err != nil {
			continue
		}
		have[e.Name()] = agent.Have{Hash: f.Hash()}
		names = append(names, e.Name())
		d.mu.Lock()
		d.enabled[e.Name()] = f.HasSection("Install")
		d.mu.Unlock()
		d.manage(e.Name())
	}
	if len(names) == 0 {
		return have, nil
	}
	sts, err := d.c().ListUnitsByNamesContext(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("read states of installed units: %w", err)
	}
	for _, st := range sts {
		h, ok := have[st.Name]
		if !ok {
			continue
		}
		switch st.ActiveState {
		case "active", "activating", "reloading":
			h.Launched = true
		}
		have[st.Name] = h
	}
	return have, nil
}

// tool runs a systemctl-family tool against the same manager the driver
// drives (--user for systemd --user).
func (d *Driver) tool(ctx context.Context, tool string, args ...string) *exec.Cmd {
	if d.opts.User {
		args = append([]string{"--user"}, args...)
	}
	return exec.CommandContext(ctx, tool, args...)
}

// Status writes "systemctl status" of the unit.
func (d *Driver) Status(ctx context.Context, name string, w io.Writer) error {
	if _, err := d.path(name); err != nil {
		return err
	}
	cmd := d.tool(ctx, "systemctl", "status", "--full", "--no-pager", "--lines=10", name)
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() <= 4 {
		return nil // systemctl status exits 1-4 for units that are not active: not an error here
	}
	return err
}

// Journal writes the unit's journal, following it with follow.
func (d *Driver) Journal(ctx context.Context, name string, q agent.JournalQuery, w io.Writer) error {
	if _, err := d.path(name); err != nil {
		return err
	}
	unitFlag := "--unit"
	if d.opts.User {
		unitFlag = "--user-unit"
	}
	output := q.Output
	if output == "" {
		output = "short"
	}
	args := []string{unitFlag, name, "--no-pager", "--lines", strconv.Itoa(q.Lines), "--output", output}
	if q.Follow {
		args = append(args, "--follow")
	}
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("journalctl: %w", err)
	}
	return nil
}
