package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

// devCluster is a running "fleetd dev" started by a test.
type devCluster struct {
	t         *testing.T
	cmd       *exec.Cmd
	out       *syncBuffer
	exited    chan struct{}
	waitErr   error
	stateFile string
	st        devState
}

// startDev runs "fleetd dev" with args as a user would and waits for its
// state file. The test's cleanup kills it if the test did not stop it.
func startDev(t *testing.T, args ...string) *devCluster {
	t.Helper()
	dir := t.TempDir()
	d := &devCluster{t: t, out: &syncBuffer{}, exited: make(chan struct{}), stateFile: filepath.Join(dir, "state.json")}
	args = append([]string{"dev", "--state-file", d.stateFile, "--data-dir", filepath.Join(dir, "data")}, args...)
	d.cmd = exec.Command(testcluster.Binary(t, "fleetd"), args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.waitErr = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	})
	testcluster.Eventually(t, 90*time.Second, func() error {
		select {
		case <-d.exited:
			t.Fatalf("fleetd dev exited: %v\n%s", d.waitErr, d.out.String())
		default:
		}
		b, err := os.ReadFile(d.stateFile)
		if err != nil {
			return fmt.Errorf("no state file yet; output so far:\n%s", d.out.String())
		}
		return json.Unmarshal(b, &d.st)
	})
	return d
}

// list runs fleetctl list-machines against the dev cluster.
func (d *devCluster) list() string {
	d.t.Helper()
	cmd := exec.Command(testcluster.Binary(d.t, "fleetctl"), "list-machines", "--no-legend", "--full")
	cmd.Env = append(os.Environ(), "FLEETCTL_ENDPOINT="+d.st.ConsulHTTPAddr)
	b, err := cmd.CombinedOutput()
	if err != nil {
		d.t.Fatalf("fleetctl list-machines: %v\n%s", err, b)
	}
	return string(b)
}

// killMachine kills a machine by the PID in the state file and waits until
// it leaves list-machines.
func (d *devCluster) killMachine(m devStateMachine) {
	d.t.Helper()
	if err := syscall.Kill(m.PID, syscall.SIGKILL); err != nil {
		d.t.Fatal(err)
	}
	want := len(d.st.Machines) - 1
	testcluster.Eventually(d.t, 30*time.Second, func() error {
		if lm := d.list(); strings.Contains(lm, m.ID) || strings.Count(lm, "\n") != want {
			return fmt.Errorf("list-machines after the kill:\n%s", lm)
		}
		return nil
	})
}

// stop sends SIGTERM and checks every process in the state file is gone.
func (d *devCluster) stop(pids ...int) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.exited:
		if d.waitErr != nil {
			d.t.Fatalf("fleetd dev exited with %v:\n%s", d.waitErr, d.out.String())
		}
	case <-time.After(60 * time.Second):
		d.t.Fatal("fleetd dev did not stop within 60s of SIGTERM")
	}
	for _, pid := range pids {
		if alive(pid) {
			d.t.Errorf("process %d still runs after fleetd dev stopped", pid)
		}
	}
	if _, err := os.Stat(d.stateFile); !os.IsNotExist(err) {
		d.t.Errorf("state file left behind: %v", err)
	}
}

// TestDev runs "fleetd dev --machines 3" as a user would, lists its machines
// with fleetctl, kills one machine by the PID in the state file, and stops
// the cluster with SIGTERM: every process it started must be gone.
func TestDev(t *testing.T) {
	d := startDev(t, "--machines", "3")
	st := d.st
	if len(st.Machines) != 3 || !strings.HasPrefix(st.ConsulHTTPAddr, "http://127.0.0.1:") {
		t.Fatalf("state file: %+v", st)
	}
	for _, want := range []string{"export PATH=", "FLEETCTL_ENDPOINT=" + st.ConsulHTTPAddr, "Consul UI: " + st.ConsulUI, st.Machines[2].ID} {
		if !strings.Contains(d.out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, d.out.String())
		}
	}
	lm := d.list()
	for _, m := range st.Machines {
		if !strings.Contains(lm, m.ID) || !strings.Contains(lm, m.IP) || !strings.Contains(lm, m.Metadata) {
			t.Errorf("list-machines lacks %+v:\n%s", m, lm)
		}
	}
	for _, m := range st.Machines {
		sock := strings.TrimPrefix(m.FleetAPI, "unix://")
		if !strings.HasPrefix(sock, st.DataDir+"/") {
			t.Errorf("machine %s: fleet_api %q is not under the data directory %s", m.ID, m.FleetAPI, st.DataDir)
		}
		if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("machine %s: %s is not a socket of mode 0600: %v %v", m.ID, sock, fi, err)
		}
		checkFleetAPI(t, m.FleetAPI, st.Machines)
	}
	d.killMachine(st.Machines[0])
	d.stop(st.ConsulPID, st.Machines[1].PID, st.Machines[2].PID)
	for _, m := range st.Machines[1:] {
		if _, err := os.Stat(strings.TrimPrefix(m.FleetAPI, "unix://")); !os.IsNotExist(err) {
			t.Errorf("machine %s left its socket behind: %v", m.ID, err)
		}
	}
}

// checkFleetAPI lists the machines on a fleet API endpoint (unix://...)
// and checks they are the cluster's.
func checkFleetAPI(t *testing.T, endpoint string, machines []devStateMachine) {
	t.Helper()
	var page struct {
		Machines []struct{ ID string } `json:"machines"`
	}
	c := testcluster.FleetAPIClient(endpoint)
	resp, err := c.Get("http://domain-sock/fleet/v1/machines")
	if err == nil {
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
	}
	if err != nil || len(page.Machines) != len(machines) {
		t.Errorf("GET %s/fleet/v1/machines: %+v %v; want %d machines", endpoint, page, err, len(machines))
	}
}

// TestDevSystemd is the same with --systemd: each machine is a systemd
// container whose PID 1 the state file gives.
func TestDevSystemd(t *testing.T) {
	testcluster.RequireBoxes(t)
	d := startDev(t, "--systemd", "--machines", "2")
	st := d.st
	if len(st.Machines) != 2 {
		t.Fatalf("state file: %+v", st)
	}
	for _, m := range st.Machines {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", m.PID))
		if strings.TrimSpace(string(comm)) != "systemd" {
			t.Errorf("machine %s: PID %d is %q, want the container's systemd", m.ID, m.PID, comm)
		}
		// What %H expands to in the machine is the hostname it publishes.
		host, err := exec.Command("nsenter", "--target", strconv.Itoa(m.PID), "--uts", "hostname").Output()
		if err != nil || "hostname="+strings.TrimSpace(string(host)) != m.Metadata {
			t.Errorf("machine %s: hostname %q (%v), metadata %q: want them to agree", m.ID, host, err, m.Metadata)
		}
		checkFleetAPI(t, m.FleetAPI, st.Machines)
	}
	d.killMachine(st.Machines[0])
	d.stop(st.ConsulPID, st.Machines[1].PID)
}

// TestDevWithoutConsul runs "fleetd dev" where there is no consul at all:
// it must fail at once with one line saying how to get one (fleetd never
// builds Consul itself).
func TestDevWithoutConsul(t *testing.T) {
	empty := t.TempDir()
	cmd := exec.Command(testcluster.Binary(t, "fleetd"), "dev", "--machines", "1")
	var env []string
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); k != "CONSUL_BIN" && k != "PATH" && k != "HOME" && k != "XDG_CACHE_HOME" {
			env = append(env, e)
		}
	}
	// No consul on PATH, and a user cache without one.
	cmd.Env = append(env, "PATH="+empty, "HOME="+empty, "XDG_CACHE_HOME="+filepath.Join(empty, "cache"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("fleetd dev without consul: %v, want it to fail\n%s", err, out)
	}
	msg := strings.TrimSuffix(string(out), "\n")
	if strings.Contains(msg, "\n") {
		t.Errorf("fleetd dev without consul printed more than one line:\n%s", out)
	}
	for _, want := range []string{"no consul binary", filepath.Join(empty, "cache", "fleet"), `"make consul"`, "CONSUL_BIN"} {
		if !strings.Contains(msg, want) {
			t.Errorf("fleetd dev without consul said %q; want it to mention %s", msg, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
