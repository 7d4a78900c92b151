package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
