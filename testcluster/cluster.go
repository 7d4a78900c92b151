package testcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/devcluster"
	"github.com/wasmfleet/fleet/internal/registry"
)

// binDir holds the fleetd and fleetctl binaries Main built for this test
// process.
var binDir string

// Main builds fleetd and fleetctl once for a test package, runs its tests,
// and removes the binaries. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { testcluster.Main(m) }
func Main(m *testing.M) {
	// Not under /tmp: systemd boxes see a fresh tmpfs there, and must run
	// these binaries.
	cache, err := os.UserCacheDir()
	if err == nil {
		err = os.MkdirAll(filepath.Join(cache, "fleet"), 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		os.Exit(2)
	}
	dir, err := os.MkdirTemp(filepath.Join(cache, "fleet"), "test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		os.Exit(2)
	}
	if err := BuildBinaries(dir); err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		os.Exit(2)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// BuildBinaries builds fleetd and fleetctl from the fleet module the
// current directory is in into dir (go build's cache makes a rebuild cheap).
func BuildBinaries(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("find the fleet module: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	for _, name := range []string{"fleetd", "fleetctl"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", name, err, out)
		}
	}
	return nil
}

// Binary returns the path of fleetd or fleetctl as built by Main.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if binDir == "" {
		t.Fatal("testcluster: binaries not built; call testcluster.Main(m) from TestMain")
	}
	return filepath.Join(binDir, name)
}

// Cluster is a real Consul server and fleetd machines, for one test.
type Cluster struct {
	Consul   *Consul
	Machines []*Machine
	Dir      string
	TTL      time.Duration
	t        testing.TB
	regOnce  sync.Once
	reg      *registry.Registry
}

// StartConsulT starts a Consul server stopped when the test ends.
func StartConsulT(t testing.TB) *Consul {
	t.Helper()
	return StartConsulWith(t, ConsulOptions{})
}

// StartConsulWith starts a Consul server with opts (ACLs, TLS, ...), its log
// in the test's temporary directory, stopped when the test ends.
func StartConsulWith(t testing.TB, opts ConsulOptions) *Consul {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "consul.log"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Log = logf
	c, err := StartConsul(context.Background(), opts)
	if err != nil {
		t.Fatalf("start consul: %v", err)
	}
	t.Cleanup(func() { c.Stop(); logf.Close() })
	return c
}

// StartConsulServersT starts n Consul servers forming one cluster
// (devcluster.StartConsulServers; opts.DataDir is required), their logs in
// the test's temporary directory, stopped when the test ends.
func StartConsulServersT(t testing.TB, opts ConsulOptions, n int) []*Consul {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "consul-servers.log"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Log = logf
	if err := ensureBinary(context.Background(), &opts.Binary); err != nil {
		t.Fatal(err)
	}
	servers, err := devcluster.StartConsulServers(context.Background(), opts, n)
	if err != nil {
		t.Fatalf("start %d consul servers: %v", n, err)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Stop()
		}
		logf.Close()
	})
	return servers
}

// Start starts Consul and n machines with metadata hostname=machine-N and
// waits until all n are published. Everything stops when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{Consul: StartConsulT(t), Dir: t.TempDir(), TTL: 2 * time.Second, t: t}
	for i := 1; i <= n; i++ {
		c.AddMachine(fmt.Sprintf("hostname=machine-%d", i))
	}
	c.WaitMachines(n)
	return c
}

// AddMachine starts one more machine with the given metadata.
func (c *Cluster) AddMachine(metadata string) *Machine {
	c.t.Helper()
	return c.AddMachineAs("", metadata)
}

// AddMachineAs starts one more machine with the given ID (random when
// empty) and metadata. An ID used before is a machine coming back.
func (c *Cluster) AddMachineAs(id, metadata string) *Machine {
	c.t.Helper()
	i := len(c.Machines) + 1
	m, err := StartMachine(MachineOptions{
		Fleetd:    Binary(c.t, "fleetd"),
		ConsulURL: c.Consul.URL(),
		ID:        id,
		IP:        fmt.Sprintf("127.0.2.%d", i),
		Metadata:  metadata,
		Dir:       filepath.Join(c.Dir, fmt.Sprintf("machine-%d", i)),
		TTL:       c.TTL,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(m.Stop)
	c.t.Cleanup(func() { // before it stops: a failed test shows what its fleetd did
		if c.t.Failed() {
			c.t.Logf("machine %d (%s), the end of its fleetd log:\n%s", i, m.ID, logTail(filepath.Join(m.Dir, "fleetd.log"), machineLogLines))
		}
	})
	c.Machines = append(c.Machines, m)
	return m
}

// machineLogLines is how much of each machine's log a failed test shows.
const machineLogLines = 60

// logTail is the last n lines of the file at path, or why it cannot be
// read.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Registry returns the cluster's registry client, one for the cluster's
// life (SystemdCluster.Registry says why).
func (c *Cluster) Registry() *registry.Registry {
	c.regOnce.Do(func() {
		client, err := c.Consul.Client()
		if err != nil {
			c.t.Fatal(err)
		}
		c.reg = registry.New(client, "")
	})
	return c.reg
}

// WaitMachines waits until exactly n machines are published.
func (c *Cluster) WaitMachines(n int) {
	c.t.Helper()
	waitMachines(c.t, c.Registry(), n)
}

func waitMachines(t testing.TB, reg *registry.Registry, n int) {
	t.Helper()
	Eventually(t, 30*time.Second, func() error {
		ms, err := reg.Machines(context.Background())
		if err != nil {
			return err
		}
		if len(ms) != n {
			return fmt.Errorf("%d machines published, want %d", len(ms), n)
		}
		return nil
	})
}

// Machine returns the machine with the given ID (the latest started, when
// an ID came back).
func (c *Cluster) Machine(id string) *Machine {
	for _, m := range slices.Backward(c.Machines) {
		if m.ID == id {
			return m
		}
	}
	c.t.Fatalf("no machine %s in the cluster", id)
	return nil
}

// Eventually retries f until it returns nil or limit passes, then fails the
// test with f's last error.
func Eventually(t testing.TB, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ClearConsulEnv unsets, for the rest of the test, every variable by
// which the consul CLI (and so fleetd and fleetctl) is told where Consul is
// and how to reach it, so that only what the test sets counts and nothing
// from the tester's shell.
func ClearConsulEnv(t testing.TB) {
	for _, k := range []string{"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_SSL",
		"CONSUL_HTTP_SSL_VERIFY", "CONSUL_CACERT", "CONSUL_CAPATH", "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY",
		"CONSUL_TLS_SERVER_NAME"} {
		t.Setenv(k, "")
	}
}
