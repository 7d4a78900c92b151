package devcluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/devcluster"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestBoxes boots two boxes side by side and checks what makes them separate
// machines: their identity, their own Consul client agents, unit cgroups of
// their own, and that killing one is a machine failure the other survives.
func TestBoxes(t *testing.T) {
	testcluster.RequireBoxes(t)
	ctx := context.Background()
	var boxes []*devcluster.Box
	var agents []*devcluster.BoxProcess
	// Registered first, so it runs last: after every box is killed.
	t.Cleanup(func() {
		for _, b := range boxes {
			checkBoxGone(t, b)
		}
		for _, p := range agents {
			if processExists(p.PID()) {
				t.Errorf("consul client (PID %d) outlived its box", p.PID())
			}
		}
	})
	step := stepTimer(t)

	for _, o := range []devcluster.BoxOptions{
		{Name: "box-1", IP: "127.0.0.11"},
		{Name: "box-2", IP: "127.0.0.12"},
	} {
		boxes = append(boxes, testcluster.StartBoxT(t, o))
	}
	step("boot two boxes")

	for _, b := range boxes {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"cat", "/etc/machine-id"}, b.MachineID},
			{[]string{"hostname"}, b.Name},
			{[]string{"systemctl", "is-system-running"}, "running"},
		} {
			out, err := b.Exec(ctx, c.args...)
			if got := strings.TrimSpace(string(out)); err != nil || got != c.want {
				t.Fatalf("%s: %s = %q (%v), want %q", b.Name, strings.Join(c.args, " "), got, err, c.want)
			}
		}
	}
	step("check identities")

	consul := testcluster.StartConsulT(t)
	consulBin, err := testcluster.ConsulBinary(ctx, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	logs := t.TempDir()
	for _, b := range boxes {
		p, err := b.StartConsulClient(consulBin, consul.SerfLANAddr, filepath.Join(logs, b.Name+"-consul.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		agents = append(agents, p)
	}
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		nodes, _, err := client.Catalog().Nodes(nil)
		if err != nil {
			return err
		}
		addrs := map[string]string{}
		for _, n := range nodes {
			addrs[n.Node] = n.Address
		}
		for _, b := range boxes {
			if addrs[b.Name] != b.IP {
				return fmt.Errorf("catalog nodes %v: want %s at %s", addrs, b.Name, b.IP)
			}
			if s := serfHealth(client, b.Name); s != api.HealthPassing {
				return fmt.Errorf("%s: serfHealth %s, want passing", b.Name, s)
			}
		}
		return nil
	})
	step("start consul and a client agent in each box")

	// The same unit name in both boxes: stopping it in one must leave the
	// other's alone, which needs a cgroup tree per box.
	for _, b := range boxes {
		if out, err := b.Exec(ctx, "systemd-run", "--unit=fleet-probe", "sleep", "300"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	if out, err := boxes[0].Exec(ctx, "systemctl", "stop", "fleet-probe"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	checkUnitState(t, boxes[0], "fleet-probe", "inactive")
	checkUnitState(t, boxes[1], "fleet-probe", "active")
	for i, want := range []bool{false, true} {
		unitCgroup := filepath.Join(boxes[i].Cgroups()[0], "payload/system.slice/fleet-probe.service")
		if _, err := os.Stat(unitCgroup); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", unitCgroup, err == nil, want)
		}
	}
	step("same unit in both boxes, stopped in one")

	pid := boxes[0].PID()
	if err := boxes[0].Kill(); err != nil {
		t.Fatal(err)
	}
	if processExists(pid) {
		t.Fatalf("box-1's PID 1 (%d) still exists after Kill", pid)
	}
	select {
	case <-agents[0].Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("box-1's consul client still runs 5s after its box was killed")
	}
	step("kill box-1")
	testcluster.Eventually(t, 15*time.Second, func() error {
		if s := serfHealth(client, boxes[0].Name); s != api.HealthCritical {
			return fmt.Errorf("box-1: serfHealth %s, want critical", s)
		}
		return nil
	})
	if s := serfHealth(client, boxes[1].Name); s != api.HealthPassing {
		t.Errorf("box-2: serfHealth %s after box-1 died, want passing", s)
	}
	checkUnitState(t, boxes[1], "fleet-probe", "active")
	step("consul sees box-1 fail, box-2 carries on")
}

// serfHealth returns the status of a node's serfHealth check, or "missing".
func serfHealth(client *api.Client, node string) string {
	checks, _, err := client.Health().Node(node, nil)
	if err != nil {
		return err.Error()
	}
	for _, c := range checks {
		if c.CheckID == "serfHealth" {
			return c.Status
		}
	}
	return "missing"
}

func checkUnitState(t *testing.T, b *devcluster.Box, unit, want string) {
	t.Helper()
	// is-active exits non-zero for anything but active; the state is the output.
	out, _ := b.Exec(context.Background(), "systemctl", "is-active", unit)
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("%s: %s is %q, want %q", b.Name, unit, got, want)
	}
}

// checkBoxGone checks that a killed box left nothing behind: no process, no
// cgroup, no mount point, no mount in the host's namespace.
func checkBoxGone(t *testing.T, b *devcluster.Box) {
	t.Helper()
	for what, pid := range map[string]int{"PID 1": b.PID(), "unshare": b.UnsharePID()} {
		if processExists(pid) {
			t.Errorf("%s: %s (PID %d) still exists", b.Name, what, pid)
		}
	}
	for _, p := range append(b.Cgroups(), b.MountPoint()) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %s still exists (%v)", b.Name, p, err)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), b.MountPoint()) {
		t.Errorf("%s: %s is mounted in the host's mount namespace", b.Name, b.MountPoint())
	}
}

func processExists(pid int) bool {
	return pid > 0 && !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// stepTimer returns a function that logs how long the step just finished took.
func stepTimer(t *testing.T) func(string) {
	last := time.Now()
	return func(what string) {
		t.Helper()
		t.Logf("%s: %s", what, time.Since(last).Round(time.Millisecond))
		last = time.Now()
	}
}

// TestStartBoxRejects checks that StartBox refuses what cannot work, saying
// what to do, before it touches anything.
func TestStartBoxRejects(t *testing.T) {
	testcluster.RequireBoxes(t)
	running := testcluster.StartBoxT(t, devcluster.BoxOptions{Name: "box-taken", IP: "127.0.0.13"})
	for _, c := range []struct {
		name string
		opts devcluster.BoxOptions
		want string
	}{
		{"name not a hostname", devcluster.BoxOptions{Name: "Box_1", IP: "127.0.0.14"}, "use lowercase letters"},
		{"machine ID not hex", devcluster.BoxOptions{Name: "box-4", IP: "127.0.0.14", MachineID: "machine-4"}, "32 lowercase hex digits"},
		{"no IP", devcluster.BoxOptions{Name: "box-4"}, "give the box its own address"},
		{"name taken", devcluster.BoxOptions{Name: running.Name, IP: "127.0.0.14"}, "a box named box-taken is running"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := devcluster.StartBox(context.Background(), c.opts)
			if err == nil {
				b.Kill()
				t.Fatalf("StartBox(%+v) succeeded", c.opts)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("StartBox(%+v) = %q, want it to say %q", c.opts, err, c.want)
			}
		})
	}
	if out, err := running.Exec(context.Background(), "systemctl", "is-system-running"); err != nil {
		t.Fatalf("box-taken after a second box of its name was refused: %v: %s", err, out)
	}
}
