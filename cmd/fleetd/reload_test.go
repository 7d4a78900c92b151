package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestReloadOnSIGHUP starts a machine configured by a fleet.conf, runs a
// unit on it, changes the file and sends SIGHUP: the new metadata reaches
// Consul (merged with dynamic metadata set meanwhile), an option that needs
// a restart and one fleetd does not have are logged as such, a file that
// does not parse changes nothing, and the unit runs on untouched: same PID,
// started once, still active.
func TestReloadOnSIGHUP(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(client, "")
	dir := t.TempDir()
	conf := filepath.Join(dir, "fleet.conf")
	writeConf := func(body string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("# fleet\nmetadata = \"role=web\"\nagent_ttl = 2s\n")
	m, err := testcluster.StartMachine(testcluster.MachineOptions{
		Fleetd:    testcluster.Binary(t, "fleetd"),
		ConsulURL: consul.URL(),
		IP:        "127.0.3.1",
		Dir:       filepath.Join(dir, "machine"),
		Extra:     []string{"--config", conf}, // after StartMachine's --config ""
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	machineMetadata := func() (map[string]string, error) {
		ms, err := reg.Machines(context.Background())
		if err != nil {
			return nil, err
		}
		if len(ms) != 1 {
			return nil, fmt.Errorf("%d machines published", len(ms))
		}
		return ms[0].Metadata, nil
	}
	waitMetadata := func(want map[string]string) {
		t.Helper()
		testcluster.Eventually(t, 20*time.Second, func() error {
			md, err := machineMetadata()
			if err != nil || !maps.Equal(md, want) {
				return fmt.Errorf("machine metadata %v (%v), want %v", md, err, want)
			}
			ss, _, err := client.Catalog().Service("fleet-agent", "", nil)
			if err != nil || len(ss) != 1 {
				return fmt.Errorf("fleet-agent instances: %v (%v)", ss, err)
			}
			for k, v := range want {
				if ss[0].ServiceMeta[k] != v {
					return fmt.Errorf("catalog meta %v lacks %s=%s", ss[0].ServiceMeta, k, v)
				}
			}
			return nil
		})
	}
	waitMetadata(map[string]string{"role": "web"})

	ctl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(testcluster.Binary(t, "fleetctl"), append([]string{"--endpoint", consul.URL()}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fleetctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	starts := filepath.Join(dir, "starts")
	unit := filepath.Join(dir, "web.service")
	if err := os.WriteFile(unit, []byte(fmt.Sprintf("[Service]\nExecStart=/bin/sh -c \"echo started >> %s; while true; do sleep 0.2; done\"\n\n[X-Fleet]\nMachineMetadata=role=web\n", starts)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl("start", unit)
	mainPID := func() string {
		t.Helper()
		var pid string
		testcluster.Eventually(t, 10*time.Second, func() error {
			out := ctl("status", "web.service")
			match := regexp.MustCompile(`Main PID: (\d+)`).FindStringSubmatch(out)
			if match == nil || !strings.Contains(out, "Active: active (running)") {
				return fmt.Errorf("web.service is not running:\n%s", out)
			}
			pid = match[1]
			return nil
		})
		return pid
	}
	pid := mainPID()
	ctl("machine-metadata", "set", m.ID[:8], "zone=a")
	waitMetadata(map[string]string{"role": "web", "zone": "a"})

	// A file that does not parse changes nothing.
	writeConf("metadata = \"role=db\"\nnot a pair\n")
	if err := syscall.Kill(m.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	log := func() string {
		b, _ := os.ReadFile(filepath.Join(m.Dir, "fleetd.log"))
		return string(b)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(log(), "configuration reload failed; the running configuration stays") {
			return fmt.Errorf("no reload failure logged:\n%s", log())
		}
		return nil
	})

	// Metadata and verbosity change live; agent_ttl needs a restart. The
	// unit keeps its MachineMetadata match (role=web stays).
	writeConf("metadata = \"role=web,rack=r1\"\nagent_ttl = 5s\nverbosity = 1\netcd_servers = http://127.0.0.1:2379\n")
	if err := syscall.Kill(m.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitMetadata(map[string]string{"role": "web", "rack": "r1", "zone": "a"})
	testcluster.Eventually(t, 10*time.Second, func() error {
		l := log()
		for _, want := range [][]string{
			{`msg="option reloaded"`, `option=metadata running="role=web" configured="role=web,rack=r1"`},
			{`msg="option reloaded"`, `option=verbosity running=0 configured=1`},
			{`msg="option changed; it takes effect when fleetd restarts"`, `option=agent-ttl running=2s configured=5s`},
			{`msg="configuration reloaded; units untouched"`, `applied="[metadata verbosity]" need-restart=[agent-ttl]`},
			{`msg="the configuration file sets an option fleetd does not have; ignored"`, `option=etcd_servers`},
		} {
			if !logHas(l, want...) {
				return fmt.Errorf("fleetd's log has no line with %q:\n%s", want, l)
			}
		}
		return nil
	})
	select {
	case <-m.Exited():
		t.Fatalf("fleetd exited on SIGHUP:\n%s", log())
	default:
	}
	if now := mainPID(); now != pid {
		t.Errorf("web.service's main PID went from %s to %s across SIGHUP", pid, now)
	}
	if b, _ := os.ReadFile(starts); strings.Count(string(b), "started") != 1 {
		t.Errorf("web.service started %d times, want once", strings.Count(string(b), "started"))
	}
	s, err := reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.States["web.service"][m.ID]; st == nil || st.Active != "active" || st.Sub != "running" || s.Jobs["web.service"].Target != m.ID {
		t.Errorf("web.service after SIGHUP: state %+v, target %s", st, s.Jobs["web.service"].Target)
	}
}

// logHas reports whether a line of log holds every fragment.
func logHas(log string, fragments ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		all := true
		for _, f := range fragments {
			all = all && strings.Contains(line, f)
		}
		if all {
			return true
		}
	}
	return false
}
