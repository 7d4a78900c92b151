package main

import (
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestSchemaRefusals: fleetctl writes nothing to keys in a newer schema
// than it knows, nor units to keys still in an older one, and each refusal
// is one line saying what to do. Reads go on.
func TestSchemaRefusals(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ep, dir := consul.URL(), t.TempDir()
	unit := testcluster.WriteUnit(t, dir, "hello.service", testcluster.HelloService)
	put := func(k, v string) {
		t.Helper()
		if _, err := client.KV().Put(&api.KVPair{Key: k, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	dump := func() string {
		t.Helper()
		pairs, _, err := client.KV().List("", nil)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, p := range pairs {
			b.WriteString(p.Key + "=" + string(p.Value) + "\n")
		}
		return b.String()
	}
	refused := func(want string, args ...string) {
		t.Helper()
		before := dump()
		out, errOut, code := ctl(t, ep, args...)
		if code == 0 {
			t.Fatalf("fleetctl %v: exit 0, stdout %q", args, out)
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, want) {
			t.Errorf("fleetctl %v: stderr %q, want one line containing %q", args, errOut, want)
		}
		if dump() != before {
			t.Errorf("fleetctl %v changed Consul", args)
		}
	}

	put("fleet/machines/0123456789abcdef0123456789abcdef", `{"id":"0123456789abcdef0123456789abcdef","ip":"127.0.0.1"}`)
	put("fleet/schema", `{"version":99}`)
	newer := "schema version 99, and this fleet"
	refused(newer, "submit", unit)
	refused(newer, "start", unit)
	refused(newer, "machine-metadata", "set", "0123456789abcdef0123456789abcdef", "disk=ssd")
	refused(newer, "policy", "default", "default")

	if _, err := client.KV().Delete("fleet/schema", nil); err != nil {
		t.Fatal(err)
	}
	put("fleet/jobs/old.service/object", `{"name":"old.service","hash":"0000000000000000000000000000000000000000"}`)
	older := "still in schema version 1"
	refused(older, "submit", unit)
	refused(older, "destroy", "old.service")
	mustCtl(t, ep, "list-unit-files")
	mustCtl(t, ep, "list-machines")
}
