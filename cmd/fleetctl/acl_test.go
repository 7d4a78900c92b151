package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// aclRules reads a role's policy from contrib/acl, as docs/acl.md tells an
// operator to, with the machine's ID and Consul node filled in.
func aclRules(t *testing.T, role, machine, node string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "acl", role+".hcl"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("MACHINE_ID", machine, "NODE_NAME", node).Replace(string(b))
}

// TestACLRoles: with ACLs on and default deny, each role of contrib/acl
// can do its job (a cluster whose machines hold only agent and leader
// tokens places and runs what an operator starts; a viewer lists; a
// publisher uploads a policy) and nothing more (each role's token is refused
// every write outside its job, at Consul), and fleetctl names the missing
// permission and the role that has it.
func TestACLRoles(t *testing.T) {
	const root = "root-token"
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{ACLToken: root})
	admin, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ep := consul.URL()
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	t.Setenv("FLEETCTL_TOKEN", "")

	// token creates a token holding the given roles' policies; desc names
	// it for the reader.
	token := func(desc string, roles ...string) string {
		t.Helper()
		return testcluster.Token(t, admin, roles...)
	}
	node := consul.NodeName
	m1, m2 := testcluster.NewMachineID(), testcluster.NewMachineID()
	m1Token := token("machine 1: agent and leader", aclRules(t, "agent", m1, node), aclRules(t, "leader", m1, node))
	m2Token := token("machine 2: agent only", aclRules(t, "agent", m2, node))
	leaderOnly := token("leader role alone", aclRules(t, "leader", m1, node))
	operator := token("operator", aclRules(t, "operator", "", node))
	viewer := token("viewer", aclRules(t, "viewer", "", node))
	publisher := token("publisher", aclRules(t, "publisher", "", node))

	dir := t.TempDir()
	var machines []*testcluster.Machine
	for i, m := range []struct {
		id, token string
		extra     []string
	}{{m1, m1Token, nil}, {m2, m2Token, []string{"--disable-engine"}}} {
		mach, err := testcluster.StartMachine(testcluster.MachineOptions{
			Fleetd: testcluster.Binary(t, "fleetd"), ConsulURL: ep, ID: m.id,
			IP: fmt.Sprintf("127.0.2.%d", i+1), Metadata: fmt.Sprintf("hostname=machine-%d", i+1),
			Dir: filepath.Join(dir, fmt.Sprintf("machine-%d", i+1)), TTL: 2 * time.Second,
			Extra: append([]string{"--token", m.token}, m.extra...),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(mach.Stop)
		t.Cleanup(func() {
			if t.Failed() {
				b, _ := os.ReadFile(filepath.Join(mach.Dir, "fleetd.log"))
				t.Logf("fleetd.log of machine %d:\n%s", i+1, b)
			}
		})
		machines = append(machines, mach)
	}
	as := func(tok string, args ...string) (string, string, int) {
		t.Helper()
		return ctl(t, ep, append([]string{"--token", tok}, args...)...)
	}
	mustAs := func(tok string, args ...string) string {
		t.Helper()
		out, errOut, code := as(tok, args...)
		if code != 0 {
			t.Fatalf("fleetctl %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if out, errOut, code := as(viewer, "list-machines"); code != 0 || len(testcluster.Rows(out)) != 2 {
			return fmt.Errorf("the viewer lists machines: exit %d\n%s%s", code, out, errOut)
		}
		return nil
	})

	// The operator starts two units, one pinned to the agent-only machine:
	// the leader (agent and leader roles) places them and both agents run
	// them.
	pinned := testcluster.WriteUnit(t, dir, "pinned.service", testcluster.HelloService+"\n[X-Fleet]\nMachineID="+m2+"\n")
	free := testcluster.WriteUnit(t, dir, "free.service", testcluster.HelloService+"\n[X-Fleet]\nMachineID="+m1+"\n")
	mustAs(operator, "start", "--no-block", pinned, free)
	testcluster.Eventually(t, 30*time.Second, func() error {
		out := mustAs(viewer, "list-units", "--full", "--fields", "unit,machine,active")
		for _, want := range [][]string{{"free.service", m1, "active"}, {"pinned.service", m2, "active"}} {
			found := false
			for _, r := range testcluster.Rows(out) {
				found = found || len(r) == 3 && r[0] == want[0] && strings.HasPrefix(r[1], want[1]) && r[2] == want[2]
			}
			if !found {
				return fmt.Errorf("want %v in list-units:\n%s", want, out)
			}
		}
		return nil
	})
	if out := mustAs(viewer, "cat", "pinned.service"); !strings.Contains(out, "MachineID="+m2) {
		t.Errorf("the viewer's cat:\n%s", out)
	}
	mustAs(viewer, "list-unit-files")
	if out := mustAs(viewer, "status", "pinned.service"); !strings.Contains(out, "pinned.service") {
		t.Errorf("the viewer's status:\n%s", out)
	}
	mustAs(operator, "stop", "free.service")
	if p, _, err := admin.KV().Get("fleet/placement/free.service", nil); err != nil || p == nil || !strings.Contains(string(p.Value), m1) {
		t.Fatalf("placement of free.service: %v %v; want machine %s", p, err, m1)
	}
	mustAs(operator, "destroy", "free.service")
	// The operator may not touch the placement; the leader removes it.
	testcluster.Eventually(t, 10*time.Second, func() error {
		if p, _, err := admin.KV().Get("fleet/placement/free.service", nil); err != nil || p != nil {
			return fmt.Errorf("placement of the destroyed unit still there (%v)", err)
		}
		return nil
	})
	mustAs(operator, "machine-metadata", "set", m2, "zone=a")

	// The publisher uploads a policy and makes it the default; the operator
	// cannot.
	spread := buildExample(t, "spread")
	if _, errOut, code := as(operator, "policy", "upload", "spread", spread); code == 0 || !strings.Contains(errOut, `lacks permission "key:write" on "fleet-chunks/`) || !strings.Contains(errOut, "publisher role") {
		t.Errorf("the operator uploads a policy: exit %d %q; want refused, naming the permission and the publisher role", code, errOut)
	}
	mustAs(publisher, "policy", "upload", "spread", spread)
	mustAs(publisher, "policy", "default", "spread")
	mustAs(publisher, "policy", "default", "default")

	// The viewer and the publisher cannot change units; fleetctl says which
	// permission their token lacks, on which key, and which role has it.
	for who, tok := range map[string]string{"viewer": viewer, "publisher": publisher} {
		_, errOut, code := as(tok, "submit", testcluster.WriteUnit(t, dir, "denied.service", testcluster.HelloService))
		if code == 0 || !strings.Contains(errOut, `lacks permission "key:write" on "fleet/`) || !strings.Contains(errOut, "operator role") {
			t.Errorf("the %s submits: exit %d %q; want the missing key:write and the operator role", who, code, errOut)
		}
		_, errOut, code = as(tok, "stop", "pinned.service")
		if code == 0 || !strings.Contains(errOut, "key:write") {
			t.Errorf("the %s stops a unit: exit %d %q", who, code, errOut)
		}
	}
	if _, errOut, code := as("not-a-token", "list-units"); code == 0 || !strings.Contains(errOut, "ACL not found") || !strings.Contains(errOut, "CONSUL_HTTP_TOKEN") {
		t.Errorf("an unknown token: exit %d %q", code, errOut)
	}

	// Nothing more: at Consul, each role's token is refused every write
	// outside its job (a machine cannot write the schedule, another
	// machine's keys or the lock; an operator cannot place, pose as a
	// machine or publish; a leader cannot submit, change a unit or publish).
	const p = "fleet/"
	denied := map[string][]string{
		"machine 2 (agent)": {m2Token, p + "schedule/" + m2 + "/x.service", p + "states/" + m1 + "/x.service", p + "machines/" + m1,
			p + "placement/x.service", p + "units/x", p + "leader", p + "policies/x", p + "machine-metadata/" + m2 + "/zone", "fleet-chunks/x"},
		"leader role":         {leaderOnly, p + "units/x", p + "jobs/x.service", p + "policies/x", p + "policy-default", p + "machines/" + m2, p + "states/" + m2 + "/x.service", "fleet-chunks/x"},
		"operator":            {operator, p + "placement/x.service", p + "schedule/" + m1 + "/x.service", p + "leader", p + "machines/x", p + "states/" + m1 + "/x.service", p + "policies/x", p + "policy-default", "fleet-chunks/x"},
		"viewer":              {viewer, p + "units/x", p + "jobs/x.service", p + "schedule/" + m1 + "/x.service", p + "leader", p + "policies/x", p + "machine-metadata/" + m1 + "/zone"},
		"publisher":           {publisher, p + "units/x", p + "jobs/x.service", p + "schedule/" + m1 + "/x.service", p + "leader", p + "machines/x"},
		"machine 1 (+leader)": {m1Token, p + "units/x", p + "policies/x", p + "machines/" + m2, p + "states/" + m2 + "/x.service"},
	}
	for who, keys := range denied {
		c, err := api.NewClient(&api.Config{Address: consul.HTTPAddr, Token: keys[0]})
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range keys[1:] {
			if _, err := c.KV().Put(&api.KVPair{Key: key, Value: []byte("x")}, nil); err == nil || !strings.Contains(err.Error(), "Permission denied") {
				t.Errorf("%s writes %s: %v; want Permission denied", who, key, err)
			}
		}
	}
	// An agent reads its own schedule, not another machine's.
	c2, err := api.NewClient(&api.Config{Address: consul.HTTPAddr, Token: m2Token})
	if err != nil {
		t.Fatal(err)
	}
	if own, _, err := c2.KV().List(p+"schedule/"+m2+"/", nil); err != nil || len(own) < 2 {
		t.Errorf("machine 2 reads its schedule: %d keys, %v", len(own), err)
	}
	if other, _, err := c2.KV().List(p+"schedule/"+m1+"/", nil); err != nil || len(other) != 0 {
		t.Errorf("machine 2 reads machine 1's schedule: %d keys, %v; want none", len(other), err)
	}

	// A machine writes its own catalog node, not another's.
	if ok, _, _, err := c2.Txn().Txn(api.TxnOps{registry.NodeOp(&registry.Machine{ID: m1, IP: "127.0.0.1"}, nil)}, nil); ok {
		t.Errorf("machine 2 wrote machine 1's catalog node (%v)", err)
	}
	if node, _, err := admin.Catalog().Node(registry.CatalogNode(m2), nil); err != nil || node == nil || len(node.Services) == 0 {
		t.Fatalf("machine 2's units are not on its catalog node: %+v %v", node, err)
	}
	// Machine 2 dies: the leader, with its leader role, removes its node.
	machines[1].Kill()
	testcluster.Eventually(t, 30*time.Second, func() error {
		if node, _, err := admin.Catalog().Node(registry.CatalogNode(m2), nil); err != nil || node != nil {
			return fmt.Errorf("machine 2's node is still in the catalog (%v)", err)
		}
		return nil
	})

	// And every fleetd did its job without one refusal.
	for _, m := range machines {
		b, err := os.ReadFile(filepath.Join(m.Dir, "fleetd.log"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "Permission denied") || strings.Contains(string(b), "lacks permission") {
			t.Errorf("machine %s was refused by Consul:\n%s", registry.ShortID(m.ID), b)
		}
	}
}

// TestACLPoliciesBeforeSchemaVersions: a machine whose token holds the
// agent and leader policies of a release before key schema versions (no
// rule for fleet/schema) still joins, leads and runs what an operator
// starts: it cannot check or stamp the schema version, and says so, but an
// upgrade of fleetd before its policies costs no machine its units.
func TestACLPoliciesBeforeSchemaVersions(t *testing.T) {
	const root = "root-token"
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{ACLToken: root})
	admin, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSUL_HTTP_TOKEN", "")
	t.Setenv("FLEETCTL_TOKEN", "")
	earlier := func(role, machine string) string {
		var kept []string
		for _, line := range strings.Split(aclRules(t, role, machine, consul.NodeName), "\n") {
			if !strings.Contains(line, `"fleet/schema"`) {
				kept = append(kept, line)
			}
		}
		return strings.Join(kept, "\n")
	}
	token := func(rules ...string) string {
		t.Helper()
		return testcluster.Token(t, admin, rules...)
	}
	dir := t.TempDir()
	var machines []*testcluster.Machine
	for i, roles := range [][]string{{"agent", "leader"}, {"agent"}} {
		id := testcluster.NewMachineID()
		var rules []string
		for _, r := range roles {
			rules = append(rules, earlier(r, id))
		}
		extra := []string{"--token", token(rules...)}
		if len(roles) == 1 {
			extra = append(extra, "--disable-engine")
		}
		m, err := testcluster.StartMachine(testcluster.MachineOptions{Fleetd: testcluster.Binary(t, "fleetd"), ConsulURL: consul.URL(),
			ID: id, IP: fmt.Sprintf("127.0.2.%d", 8+i), Dir: filepath.Join(dir, fmt.Sprintf("machine-%d", i+1)), TTL: 2 * time.Second, Extra: extra})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		machines = append(machines, m)
	}
	operator := token(aclRules(t, "operator", "", consul.NodeName))
	// One unit on each machine: the agent-only one joined too.
	for i, m := range machines {
		unit := testcluster.WriteUnit(t, dir, fmt.Sprintf("hello%d.service", i), testcluster.HelloService+"\n[X-Fleet]\nMachineID="+m.ID+"\n")
		testcluster.Eventually(t, 30*time.Second, func() error {
			if out, errOut, code := ctl(t, consul.URL(), "--token", operator, "start", "--no-block", unit); code != 0 {
				return fmt.Errorf("start: exit %d\n%s%s", code, out, errOut)
			}
			return m.CheckRunning(filepath.Base(unit))
		})
	}
	log, _ := os.ReadFile(filepath.Join(machines[0].Dir, "fleetd.log"))
	if !strings.Contains(string(log), "key schema version not stamped") {
		t.Errorf("the leader's fleetd.log does not say it could not stamp the schema version:\n%s", log)
	}
}
