package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestListenUnix checks the socket of fleet's HTTP API: its modes, a stale
// socket replaced, and a socket in use or a file that is none refused.
func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.sock")
	mode := func() os.FileMode {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}

	l, err := listenUnix(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 0o600 {
		t.Errorf("mode %o, want 600", m)
	}
	if _, err := listenUnix(path, ""); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second listener on a socket in use: %v", err)
	}
	// A fleetd that died leaves its socket; nothing answers on it.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	gid := strconv.Itoa(os.Getgid())
	l, err = listenUnix(path, gid)
	if err != nil {
		t.Fatalf("replace a stale socket: %v", err)
	}
	fi, _ := os.Stat(path)
	if m := mode(); m != 0o660 || strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Gid)) != gid {
		t.Errorf("with group %s: mode %o, owner %+v; want 660 and the group", gid, m, fi.Sys())
	}
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the socket outlives its listener: %v", err)
	}

	if _, err := listenUnix(path, "no-such-group-here"); err == nil || !strings.Contains(err.Error(), "no group") {
		t.Errorf("an unknown group: %v", err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := listenUnix(path, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a regular file in the way: %v", err)
	}
}

// TestFleetAPIListeners starts fleetd as systemd does for fleet.socket,
// with the API's socket passed as descriptor 3, and reaches the API on it;
// fleetd creates no socket of its own then. Its --fleet-api-addr answers
// only requests with a token.
func TestFleetAPIListeners(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	dir := t.TempDir()
	sock, own := filepath.Join(dir, "activated.sock"), filepath.Join(dir, "own.sock")
	ports, err := testcluster.FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	tcp := fmt.Sprintf("127.0.0.1:%d", ports[0])
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// sh sets LISTEN_PID to its own PID, which fleetd keeps through exec.
	cmd := exec.Command("sh", "-c", `export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@"`, testcluster.Binary(t, "fleetd"), "agent",
		"--endpoint", consul.URL(), "--machine-id", testcluster.NewMachineID(), "--public-ip", "127.0.0.1",
		"--driver", "exec", "--units-dir", filepath.Join(dir, "units"), "--logs-dir", filepath.Join(dir, "logs"),
		"--config", "", "--api-addr", "127.0.0.1:0", "--metrics-addr", "", "--fleet-api-socket", own,
		"--fleet-api-addr", tcp)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = log, log, []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	testcluster.Eventually(t, time.Minute, func() error {
		c := testcluster.FleetAPIClient("unix://" + sock)
		c.Timeout = 10 * time.Second // a socket nobody accepts on holds a request forever
		resp, err := c.Get("http://domain-sock/fleet/v1/machines")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var page struct{ Machines []struct{ ID string } }
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Machines) != 1 {
			return fmt.Errorf("machines %+v %v; fleetd's log:\n%s", page, err, log.String())
		}
		return nil
	})
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("fleetd created --fleet-api-socket beside the activated socket: %v", err)
	}
	// This Consul has no ACLs, so any token reads; none is refused.
	for token, want := range map[string]int{"": 401, "any": 200} {
		req, _ := http.NewRequest("GET", "http://"+tcp+"/fleet/v1/machines", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("--fleet-api-addr with token %q: %d, want %d", token, resp.StatusCode, want)
		}
	}
}
