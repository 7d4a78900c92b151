package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestFleetdRefusesNewerSchema: a fleetd started on a cluster whose keys
// are in a newer schema than it knows exits, says why and what to do, and
// writes nothing: no session, no machine, no key.
func TestFleetdRefusesNewerSchema(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.KV().Put(&api.KVPair{Key: "fleet/schema", Value: []byte(`{"version":99}`)}, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := testcluster.StartMachine(testcluster.MachineOptions{
		Fleetd: testcluster.Binary(t, "fleetd"), ConsulURL: consul.URL(), IP: "127.0.3.21", Dir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	select {
	case <-m.Exited():
	case <-time.After(2 * time.Minute):
		t.Fatal("fleetd kept running on keys in schema version 99")
	}
	log, _ := os.ReadFile(filepath.Join(dir, "fleetd.log"))
	for _, want := range []string{"schema version 99", fmt.Sprintf("knows versions up to %d", registry.SchemaVersion), "install the fleet release the cluster's other machines run"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("fleetd's log does not say %q:\n%s", want, log)
		}
	}
	keys, _, err := client.KV().Keys("", "", nil)
	if err != nil || len(keys) != 1 {
		t.Errorf("keys after fleetd refused: %v (%v), want only fleet/schema", keys, err)
	}
	sessions, _, err := client.Session().List(nil)
	if err != nil || len(sessions) != 0 {
		t.Errorf("sessions after fleetd refused: %d (%v), want none", len(sessions), err)
	}
}

// TestLeaderMigratesOnceMachinesKnow runs a fleetd on a cluster of schema
// version 1 beside a machine whose earlier fleetd publishes no schema: the
// new fleetd runs what it is scheduled but does not compete for the leader
// lock, and says why. Once that machine is gone it leads, moves the units
// to the current layout, and leaves them where they run: their schedule
// entries are not rewritten.
func TestLeaderMigratesOnceMachinesKnow(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := registry.New(client, "")
	id := testcluster.NewMachineID()
	hello, err := unitfile.Parse(testcluster.HelloService)
	if err != nil {
		t.Fatal(err)
	}
	h := hello.Hash().String()
	kv := func(k, v string) *api.KVPair { return &api.KVPair{Key: "fleet/" + k, Value: []byte(v)} }
	for _, p := range []*api.KVPair{
		kv("units/"+h, hello.String()),
		kv("jobs/hello.service/object", `{"name":"hello.service","hash":"`+h+`"}`),
		kv("jobs/hello.service/desired", "launched"),
		kv("jobs/hello.service/target", id),
		kv("schedule/"+id+"/hello.service", `{"hash":"`+h+`","desired":"launched"}`),
	} {
		if _, err := client.KV().Put(p, nil); err != nil {
			t.Fatal(err)
		}
	}
	earlier := earlierMachine(t, client, 0)

	m, notLeading := startBesideEarlier(t, consul, id, "127.0.3.22")
	testcluster.Eventually(t, time.Minute, func() error {
		if err := m.CheckRunning("hello.service"); err != nil {
			return err
		}
		return notLeading()
	})
	entry, _, err := client.KV().Get("fleet/schedule/"+id+"/hello.service", nil)
	if err != nil || entry == nil {
		t.Fatalf("schedule entry: %v %v", entry, err)
	}
	if holder, _, err := reg.Leader(ctx, 0); err != nil || holder != "" {
		t.Fatalf("leader %q (%v) while a machine cannot read the new schema", holder, err)
	}
	if _, err := client.Session().Destroy(earlier, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, time.Minute, func() error {
		s, err := reg.Snapshot(ctx, 0, 0)
		if err != nil {
			return err
		}
		if !s.Schema.Stamped || s.Schema.Version != registry.SchemaVersion {
			return fmt.Errorf("schema %+v", s.Schema)
		}
		if j := s.Jobs["hello.service"]; j == nil || j.Target != id || j.Desired != registry.Launched {
			return fmt.Errorf("hello.service after migration: %+v", j)
		}
		return nil
	})
	after, _, err := client.KV().Get("fleet/schedule/"+id+"/hello.service", nil)
	if err != nil || after == nil || after.ModifyIndex != entry.ModifyIndex {
		t.Errorf("the migration rewrote hello.service's schedule entry: %+v, was %+v (%v)", after, entry, err)
	}
	if err := m.CheckRunning("hello.service"); err != nil {
		t.Error(err)
	}
	if keys, _, _ := client.KV().Keys("fleet/jobs/hello.service/", "", nil); len(keys) != 0 {
		t.Errorf("four-key layout keys left: %v", keys)
	}
}

// startBesideEarlier starts the tree's fleetd as machine id beside an
// earlier machine (earlierMachine), and returns it with a check that its
// log says why it does not compete for the leader lock.
func startBesideEarlier(t *testing.T, consul *testcluster.Consul, id, ip string) (*testcluster.Machine, func() error) {
	t.Helper()
	dir := t.TempDir()
	m, err := testcluster.StartMachine(testcluster.MachineOptions{
		Fleetd: testcluster.Binary(t, "fleetd"), ConsulURL: consul.URL(), ID: id, IP: ip, Dir: dir, TTL: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m, func() error {
		log, _ := os.ReadFile(filepath.Join(dir, "fleetd.log"))
		if !strings.Contains(string(log), "not competing for the leader lock") || !strings.Contains(string(log), fmt.Sprintf("cannot read version %d", registry.SchemaVersion)) {
			return fmt.Errorf("fleetd has not said why it does not lead")
		}
		return nil
	}
}

// earlierMachine publishes a machine as an earlier fleetd did, knowing
// schema version schema (0: from before schema versions, no schema field),
// held by a session of its own, whose ID it returns.
func earlierMachine(t *testing.T, client *api.Client, schema int) string {
	t.Helper()
	session, _, err := client.Session().Create(&api.SessionEntry{Behavior: api.SessionBehaviorDelete, LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = client.Session().Destroy(session, nil) })
	m := map[string]any{"id": "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e", "ip": "127.0.3.23", "version": "0.1.0-dev"}
	if schema > 0 {
		m["schema"] = schema
	}
	b, _ := json.Marshal(m)
	ok, _, err := client.KV().Acquire(&api.KVPair{Key: "fleet/machines/0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e", Value: b, Session: session}, nil)
	if err != nil || !ok {
		t.Fatalf("publish the earlier machine: %v %v", ok, err)
	}
	return session
}

// TestMachineKeysOnceMachinesKnow runs a fleetd on a cluster of schema
// version 2 beside a machine whose fleetd knows version 2 only: the new
// fleetd runs its unit and reports its state in a key of the unit's own,
// which the earlier fleetd reads, and does not lead. Once that machine is
// gone it leads, stamps version 3, and moves the state into its machine key.
func TestMachineKeysOnceMachinesKnow(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := registry.New(client, "")
	id := testcluster.NewMachineID()
	hello, err := unitfile.Parse(testcluster.HelloService)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.KV().Put(&api.KVPair{Key: "fleet/schema", Value: []byte(`{"version":2}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.CreateJob(ctx, "hello.service", hello, registry.Launched); err != nil {
		t.Fatalf("a fleet that knows version %d writes no unit in version 2: %v", registry.SchemaVersion, err)
	}
	// Scheduled by hand, as the earlier machine's leader would.
	entry := &api.KVPair{Key: "fleet/schedule/" + id + "/hello.service", Value: []byte(`{"hash":"` + hello.Hash().String() + `","desired":"launched"}`)}
	if _, err := client.KV().Put(entry, nil); err != nil {
		t.Fatal(err)
	}
	earlier := earlierMachine(t, client, 2)

	m, notLeading := startBesideEarlier(t, consul, id, "127.0.3.24")
	own, keyed := "fleet/states/"+id+"/hello.service", "fleet/states/"+id+"/"
	reported := func(key, unit string) error {
		p, _, err := client.KV().Get(key, nil)
		switch {
		case err != nil:
			return err
		case p == nil:
			return fmt.Errorf("no key %s", key)
		case !strings.Contains(string(p.Value), unit) || !strings.Contains(string(p.Value), `"active":"active"`):
			return fmt.Errorf("%s holds %s, want %s active", key, p.Value, unit)
		}
		return nil
	}
	testcluster.Eventually(t, time.Minute, func() error {
		if err := reported(own, "hello.service"); err != nil {
			return err
		}
		return notLeading()
	})
	if p, _, _ := client.KV().Get(keyed, nil); p != nil {
		t.Errorf("a machine key in a cluster of version 2: %s", p.Value)
	}
	if _, err := client.Session().Destroy(earlier, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, time.Minute, func() error {
		if s, err := reg.ReadSchema(ctx); err != nil || !s.Stamped || s.Version != registry.SchemaVersion {
			return fmt.Errorf("schema %+v (%v)", s, err)
		}
		if err := reported(keyed, "hello.service"); err != nil {
			return err
		}
		if p, _, err := client.KV().Get(own, nil); err != nil || p != nil {
			return fmt.Errorf("the unit's own key is still there (%v)", err)
		}
		return nil
	})
	if err := m.CheckRunning("hello.service"); err != nil {
		t.Error(err)
	}
}
