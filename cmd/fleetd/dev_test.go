package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// TestDev runs "fleetd dev --machines 3" as a user would, lists its machines
// with fleetctl, kills one machine by the PID in the state file, and stops
// the cluster with SIGTERM: every process it started must be gone.
func TestDev(t *testing.T) {
	dir := t.TempDir()
	stateFile := filepath.Join(dir, "state.json")
	dev := exec.Command(testcluster.Binary(t, "fleetd"), "dev", "--machines", "3", "--state-file", stateFile, "--data-dir", filepath.Join(dir, "data"))
	var out syncBuffer
	dev.Stdout, dev.Stderr = &out, &out
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = dev.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = dev.Process.Kill()
			<-exited
		}
	})

	var st devState
	testcluster.Eventually(t, 60*time.Second, func() error {
		b, err := os.ReadFile(stateFile)
		if err != nil {
			return fmt.Errorf("no state file yet; output so far:\n%s", out.String())
		}
		return json.Unmarshal(b, &st)
	})
	if len(st.Machines) != 3 || !strings.HasPrefix(st.ConsulHTTPAddr, "http://127.0.0.1:") {
		t.Fatalf("state file: %+v", st)
	}
	for _, want := range []string{"export PATH=", "FLEETCTL_ENDPOINT=" + st.ConsulHTTPAddr, "Consul UI: " + st.ConsulUI, st.Machines[2].ID} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}

	list := func() string {
		cmd := exec.Command(testcluster.Binary(t, "fleetctl"), "list-machines", "--no-legend", "--full")
		cmd.Env = append(os.Environ(), "FLEETCTL_ENDPOINT="+st.ConsulHTTPAddr)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fleetctl list-machines: %v\n%s", err, b)
		}
		return string(b)
	}
	lm := list()
	for _, m := range st.Machines {
		if !strings.Contains(lm, m.ID) || !strings.Contains(lm, m.IP) || !strings.Contains(lm, m.Metadata) {
			t.Errorf("list-machines lacks %+v:\n%s", m, lm)
		}
	}

	// Killing a machine's PID is a machine failure: it leaves the list.
	dead := st.Machines[0]
	if err := syscall.Kill(dead.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if lm := list(); strings.Contains(lm, dead.ID) || strings.Count(lm, "\n") != 2 {
			return fmt.Errorf("list-machines after the kill:\n%s", lm)
		}
		return nil
	})

	if err := dev.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("fleetd dev exited with %v:\n%s", waitErr, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("fleetd dev did not stop within 60s of SIGTERM")
	}
	for _, pid := range []int{st.ConsulPID, st.Machines[1].PID, st.Machines[2].PID} {
		if alive(pid) {
			t.Errorf("process %d still runs after fleetd dev stopped", pid)
		}
	}
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("state file left behind: %v", err)
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
