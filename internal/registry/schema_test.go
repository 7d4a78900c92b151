package registry_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// putKeys writes raw keys, as an earlier fleet left them.
func putKeys(t *testing.T, c *api.Client, kvs map[string]string) {
	t.Helper()
	for k, v := range kvs {
		if _, err := c.KV().Put(&api.KVPair{Key: k, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// fourKeyCluster is a cluster of schema version 1, as fleet wrote it
// before units were a job and a placement: units placed, unplaced,
// inactive, one already half-migrated by an interrupted migration, and
// keys no migration can move. It returns the keys that must be kept.
func fourKeyCluster(t *testing.T, c *api.Client, hash, other string) []string {
	t.Helper()
	obj := func(name, h string) string { return `{"name":"` + name + `","hash":"` + h + `"}` }
	putKeys(t, c, map[string]string{
		"fleet/units/" + hash:                  "[Service]\nExecStart=/bin/sleep 100\n",
		"fleet/jobs/placed.service/object":     obj("placed.service", hash),
		"fleet/jobs/placed.service/desired":    "launched",
		"fleet/jobs/placed.service/target":     "m1",
		"fleet/schedule/m1/placed.service":     `{"hash":"` + hash + `","desired":"launched"}`,
		"fleet/jobs/unplaced.service/object":   obj("unplaced.service", hash),
		"fleet/jobs/unplaced.service/desired":  "launched",
		"fleet/jobs/unplaced.service/unplaced": "no machine has disk=ssd",
		"fleet/jobs/inactive.service/object":   obj("inactive.service", hash),
		"fleet/jobs/half.service/object":       obj("half.service", hash),
		"fleet/jobs/half.service/desired":      "loaded",
		"fleet/jobs/half.service/target":       "m2",
		"fleet/jobs/half.service":              `{"name":"half.service","hash":"` + hash + `","desired":"loaded"}`,
		// What no migration can move:
		"fleet/jobs/garbled.service/object":    "not json",
		"fleet/jobs/tail.service/desired":      "launched",
		"fleet/jobs/placed.service/comment":    "an operator's note",
		"fleet/jobs/twice.service/object":      obj("twice.service", hash),
		"fleet/jobs/twice.service":             `{"name":"twice.service","hash":"` + other + `","desired":"launched"}`,
		"fleet/jobs/baddesire.service/object":  obj("baddesire.service", hash),
		"fleet/jobs/baddesire.service/desired": "running",
	})
	return []string{"fleet/jobs/garbled.service/object", "fleet/jobs/tail.service/desired",
		"fleet/jobs/placed.service/comment", "fleet/jobs/twice.service/object",
		"fleet/jobs/baddesire.service/object", "fleet/jobs/baddesire.service/desired"}
}

// TestMigrateFourKeyUnits moves a schema-1 cluster to this build's schema
// under the leader lock: units keep their body, desired state and
// placement; keys that cannot move stay as they were; the schema key is
// stamped; a second migration does nothing; and until the move, units
// cannot be written in the current layout.
func TestMigrateFourKeyUnits(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := mustParse(t, "[Service]\nExecStart=/bin/sleep 100\n")
	hash := body.Hash().String()
	other := mustParse(t, "[Service]\nExecStart=/bin/sleep 5\n").Hash().String()
	kept := fourKeyCluster(t, client, hash, other)
	reg := registry.New(client, "")

	if s, err := reg.ReadSchema(ctx); err != nil || s.Version != 1 || s.Stamped {
		t.Fatalf("schema of a four-key cluster: %+v, %v; want version 1, not stamped", s, err)
	}
	before := dump(t, client)
	var serr *registry.SchemaError
	err = reg.CreateJob(ctx, "new.service", body, registry.Launched)
	if !errors.As(err, &serr) || serr.Found != 1 {
		t.Fatalf("creating a unit in a four-key cluster: %v, want a SchemaError", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("every machine's fleetd knows version %d", registry.SchemaVersion)) {
		t.Errorf("the refusal does not say what to do: %v", err)
	}
	if err := reg.Writable(ctx); err != nil {
		t.Errorf("a four-key cluster is writable for machines and states: %v", err)
	}
	if after := dump(t, client); !maps.Equal(before, after) {
		t.Fatal("a refused write changed Consul")
	}

	leader, other2 := newSession(t, client), newSession(t, client)
	if ok, err := reg.AcquireLeader(ctx, leader, "m1"); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	before = dump(t, client)
	if _, err := reg.Migrate(ctx, other2); !errors.Is(err, registry.ErrNotLeader) {
		t.Fatalf("migration without the leader lock: %v, want ErrNotLeader", err)
	}
	if after := dump(t, client); !maps.Equal(before, after) {
		t.Fatal("a migration without the lock changed Consul")
	}
	m, err := reg.Migrate(ctx, leader)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != 1 || m.To != registry.SchemaVersion || m.Units != 4 {
		t.Errorf("migration %+v, want 1 -> %d, 4 units", m, registry.SchemaVersion)
	}
	if got := slices.Sorted(maps.Keys(m.Kept)); !slices.Equal(got, slices.Sorted(slices.Values(kept))) {
		t.Errorf("kept %v, want %v", got, slices.Sorted(slices.Values(kept)))
	}
	checkMigrated(t, reg, client, before, kept)

	again := dump(t, client)
	if m, err := reg.Migrate(ctx, leader); err != nil || m != nil {
		t.Errorf("second migration: %+v, %v; want nothing done", m, err)
	}
	if !maps.Equal(again, dump(t, client)) {
		t.Error("a second migration changed Consul")
	}
	if err := registry.New(client, "").CreateJob(ctx, "new.service", body, registry.Launched); err != nil {
		t.Errorf("creating a unit once migrated: %v", err)
	}
}

// checkMigrated checks a migrated fourKeyCluster.
func checkMigrated(t *testing.T, reg *registry.Registry, client *api.Client, before map[string]string, kept []string) {
	t.Helper()
	s, err := reg.Snapshot(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // name: desired target unplaced
		"placed.service":   "launched m1 ",
		"unplaced.service": "launched  no machine has disk=ssd",
		"inactive.service": "inactive  ",
		"half.service":     "loaded m2 ",
		"twice.service":    "launched  ", // the current-layout unit, untouched
	}
	for name, w := range want {
		j := s.Jobs[name]
		if j == nil {
			t.Errorf("%s is gone", name)
			continue
		}
		if got := string(j.Desired) + " " + j.Target + " " + j.Unplaced; got != w {
			t.Errorf("%s: %q, want %q", name, got, w)
		}
		if name != "twice.service" && (j.Unit == nil || j.Unit.String() != "[Service]\nExecStart=/bin/sleep 100\n") {
			t.Errorf("%s lost its body: %v", name, j.Unit)
		}
	}
	if len(s.Jobs) != len(want) {
		t.Errorf("units %v, want %d", slices.Sorted(maps.Keys(s.Jobs)), len(want))
	}
	if !s.Schema.Stamped || s.Schema.Version != registry.SchemaVersion {
		t.Errorf("schema after migration: %+v", s.Schema)
	}
	after := dump(t, client)
	for _, k := range kept {
		if after[k] != before[k] {
			t.Errorf("kept key %s: %q, was %q", k, after[k], before[k])
		}
	}
	for k := range after {
		if strings.HasPrefix(k, "fleet/jobs/") && strings.Count(k, "/") == 3 && !slices.Contains(kept, k) {
			t.Errorf("four-key layout key %s left behind", k)
		}
	}
	if after["fleet/schedule/m1/placed.service"] != before["fleet/schedule/m1/placed.service"] {
		t.Error("the migration changed a machine's schedule")
	}
}

// TestNewerSchemaIsNotWritten: keys in a schema newer than this build's are
// written by none of its writers, and the refusal says what to do.
func TestNewerSchemaIsNotWritten(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	putKeys(t, client, map[string]string{"fleet/schema": `{"version":99}`})
	before := dump(t, client)
	reg := registry.New(client, "")
	body := mustParse(t, "[Service]\nExecStart=/bin/true\n")
	session := lead(t, ctx, client, reg)
	before = dump(t, client)
	writes := map[string]func() error{
		"Writable":         func() error { return reg.Writable(ctx) },
		"CreateJob":        func() error { return reg.CreateJob(ctx, "a.service", body, registry.Launched) },
		"DestroyJob":       func() error { return reg.DestroyJob(ctx, "a.service") },
		"SetDefaultPolicy": func() error { return reg.SetDefaultPolicy(ctx, "") },
		"SetMachineMetadata": func() error {
			return reg.SetMachineMetadata(ctx, "m1", map[string]string{"a": "b"})
		},
		"Migrate": func() error { _, err := reg.Migrate(ctx, session); return err },
	}
	for name, write := range writes {
		var serr *registry.SchemaError
		err := write()
		if !errors.As(err, &serr) || serr.Found != 99 || serr.Known != registry.SchemaVersion {
			t.Errorf("%s on schema 99: %v, want a SchemaError", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "install the fleet release the cluster's other machines run") {
			t.Errorf("%s: the refusal does not say what to do: %v", name, err)
		}
	}
	if after := dump(t, client); !maps.Equal(before, after) {
		t.Error("refused writes changed Consul")
	}
	putKeys(t, client, map[string]string{"fleet/schema": "three"})
	if err := registry.New(client, "").Writable(ctx); err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`not a schema version such as {"version":%d}`, registry.SchemaVersion)) {
		t.Errorf("a garbled schema key: %v", err)
	}
}

// TestSchemaBlockers: a cluster waits to move to this build's schema for
// the machines whose fleetd would not read the result: units moved, or
// states in machine keys.
func TestSchemaBlockers(t *testing.T) {
	machines := map[string]*registry.Machine{
		"old":   {ID: "old", Schema: 2},
		"older": {ID: "older"},
		"new":   {ID: "new", Schema: registry.SchemaVersion},
	}
	for from := 1; from < registry.SchemaVersion; from++ {
		if got := registry.SchemaBlockers(registry.Schema{Version: from}, machines); !slices.Equal(got, []string{"old", "older"}) {
			t.Errorf("blockers of a move from version %d: %v, want [old older]", from, got)
		}
	}
	if got := registry.SchemaBlockers(registry.Schema{Version: registry.SchemaVersion}, machines); got != nil {
		t.Errorf("blockers in this build's version: %v, want none", got)
	}
	delete(machines, "old")
	delete(machines, "older")
	if got := registry.SchemaBlockers(registry.Schema{Version: 1}, machines); got != nil {
		t.Errorf("blockers once every machine knows version %d: %v", registry.SchemaVersion, got)
	}
}
