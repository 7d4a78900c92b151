package main

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

func TestParseMetadataPairs(t *testing.T) {
	md, err := parseMetadataPairs([]string{"role=db", "url=a=b", "role=web"})
	if err != nil || !maps.Equal(md, map[string]string{"role": "web", "url": "a=b"}) {
		t.Errorf("parseMetadataPairs = %v, %v", md, err)
	}
	for _, bad := range []string{"role", "=db", "role=", "ro le=db", "a/b=c", "role=a,b"} {
		if _, err := parseMetadataPairs([]string{bad}); err == nil || !strings.Contains(err.Error(), "malformed metadata") {
			t.Errorf("parseMetadataPairs(%q) = %v, want a malformed-metadata error", bad, err)
		}
	}
}

// TestMachineMetadata sets dynamic metadata on a machine named by an ID
// prefix and sees a unit that asks for it placed there, and a global unit
// run there; removes it and sees both leave and a new such unit stay
// unplaced.
func TestMachineMetadata(t *testing.T) {
	c := testcluster.Start(t, 0)
	c.AddMachineAs("abc1"+testcluster.NewMachineID()[4:], "hostname=machine-1")
	m2 := c.AddMachineAs("abc2"+testcluster.NewMachineID()[4:], "hostname=machine-2")
	c.WaitMachines(2)
	ep, reg, dir := c.Consul.URL(), c.Registry(), t.TempDir()
	ctx := context.Background()

	// Bad input: a clear error, exit 1, nothing written.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "abc2"}, "name a machine and one KEY=VALUE or more"},
		{[]string{"set", "ffff", "role=db"}, `no live machine "ffff"`},
		{[]string{"set", "abc", "role=db"}, `"abc" matches 2 machines`},
		{[]string{"set", "abc2", "role"}, `malformed metadata "role": want KEY=VALUE`},
		{[]string{"set", "abc2", "ro/le=db"}, `malformed metadata "ro/le=db"`},
		{[]string{"rm", "abc2", "role"}, "has no metadata role"},
		{[]string{"rm", "abc2", "hostname"}, "hostname=machine-2 from its fleetd configuration"},
	} {
		out, errOut, code := ctl(t, ep, append([]string{"machine-metadata"}, bad.args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, bad.want) {
			t.Errorf("machine-metadata %v: exit %d, stdout %q, stderr %q; want exit 1 and %q", bad.args, code, out, errOut, bad.want)
		}
	}
	if ms, _ := reg.Machines(ctx); ms[0].Dynamic != nil || ms[1].Dynamic != nil {
		t.Fatalf("bad input wrote metadata: %v, %v", ms[0].Dynamic, ms[1].Dynamic)
	}

	out := mustCtl(t, ep, "machine-metadata", "set", registry.ShortID(m2.ID)+"...", "role=db", "disk=ssd")
	if want := registry.ShortID(m2.ID) + "...\tdisk=ssd,hostname=machine-2,role=db\n"; out != want {
		t.Errorf("set printed %q, want %q", out, want)
	}
	lm := mustCtl(t, ep, "list-machines", "--full")
	if !contains(testcluster.Rows(lm), []string{m2.ID, m2.IP, "disk=ssd,hostname=machine-2,role=db"}) {
		t.Errorf("list-machines does not show the dynamic metadata:\n%s", lm)
	}

	mustCtl(t, ep, "start", testcluster.WriteUnit(t, dir, "db.service", testcluster.HelloService+"\n[X-Fleet]\nMachineMetadata=role=db\n"))
	if on := testcluster.ScheduledOn(t, reg, "db.service"); on != m2.ID {
		t.Fatalf("db.service placed on %q, want %s (the machine with role=db)", on, m2.ID)
	}
	mustCtl(t, ep, "start", testcluster.WriteUnit(t, dir, "dbagent.service", testcluster.HelloService+"\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=db\n"))
	runsOn := func(unit string) ([]string, error) {
		s, err := reg.Snapshot(ctx, 0, 0)
		if err != nil {
			return nil, err
		}
		var on []string
		for id, st := range s.States[unit] {
			if st.Active == "active" {
				on = append(on, id)
			}
		}
		return on, nil
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		on, err := runsOn("dbagent.service")
		if err != nil || len(on) != 1 || on[0] != m2.ID {
			return fmt.Errorf("global dbagent.service active on %v (%v), want only %s", on, err, m2.ID)
		}
		return m2.CheckRunning("dbagent.service")
	})
	// The units column counts db.service and the global dbagent.service;
	// without it, list-machines reads the machines alone.
	if lm := mustCtl(t, ep, "list-machines", "--full", "--fields", "machine,units"); !contains(testcluster.Rows(lm), []string{m2.ID, "2"}) {
		t.Errorf("list-machines --fields machine,units does not count m2's two units:\n%s", lm)
	}
	_, errOut, code := ctl(t, ep, "--debug", "list-machines")
	for _, line := range strings.Split(errOut, "\n") {
		if strings.HasPrefix(line, "DEBUG consul") && !strings.Contains(line, "/v1/kv/fleet/machines/") && !strings.Contains(line, "/v1/kv/fleet/machine-metadata/") {
			t.Errorf("list-machines read more than the machines: %s", line)
		}
	}
	if code != 0 || !strings.Contains(errOut, "/v1/kv/fleet/machine-metadata/") {
		t.Errorf("list-machines --debug: exit %d, no read of the dynamic metadata:\n%s", code, errOut)
	}

	out = mustCtl(t, ep, "machine-metadata", "rm", m2.ID, "role")
	if want := registry.ShortID(m2.ID) + "...\tdisk=ssd,hostname=machine-2\n"; out != want {
		t.Errorf("rm printed %q, want %q", out, want)
	}
	mustCtl(t, ep, "start", "--no-block", testcluster.WriteUnit(t, dir, "db2.service", testcluster.HelloService+"\n[X-Fleet]\nMachineMetadata=role=db\n"))
	testcluster.Eventually(t, 20*time.Second, func() error {
		s, err := reg.Snapshot(ctx, 0, 0)
		if err != nil {
			return err
		}
		for _, name := range []string{"db.service", "db2.service"} {
			j := s.Jobs[name]
			if j.Target != "" || !strings.Contains(j.Unplaced, "metadata does not match MachineMetadata role=db") {
				return fmt.Errorf("%s: target %q, unplaced %q; want no machine, for want of role=db", name, j.Target, j.Unplaced)
			}
		}
		if on, err := runsOn("dbagent.service"); err != nil || len(on) != 0 {
			return fmt.Errorf("global dbagent.service still active on %v (%v)", on, err)
		}
		return nil
	})
	if on := testcluster.ScheduledOn(t, reg, "db2.service"); on != "" {
		t.Errorf("db2.service placed on %s", on)
	}
}
