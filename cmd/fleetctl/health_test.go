package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestHealthInConsul checks what the Consul UI shows: every machine as a
// passing fleet-agent instance, a running unit as a passing service on its
// machine's catalog node, named in its passing check, a unit that failed
// as a critical check of its own, a unit gone from
// its machine gone from the catalog, and a dead machine's node gone.
func TestHealthInConsul(t *testing.T) {
	c := testcluster.Start(t, 2)
	ep := c.Consul.URL()
	client, err := c.Consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mustCtl(t, ep, "start", testcluster.WriteUnit(t, dir, "web@1.service", testcluster.HelloService))
	// It may fail before or after start returns, so its exit code is not
	// checked here; its health is.
	ctl(t, ep, "start", testcluster.WriteUnit(t, dir, "crash.service", "[Service]\nExecStart=/bin/sh -c 'sleep 0.2; exit 3'\n"))

	health := func(service string) (api.HealthChecks, error) {
		checks, _, err := client.Health().Checks(service, nil)
		return checks, err
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		agents, err := health("fleet-agent")
		if err != nil {
			return err
		}
		if len(agents) != 2 || agents.AggregatedStatus() != api.HealthPassing {
			return fmt.Errorf("fleet-agent checks: %v", agents)
		}
		web, err := health("web")
		if err != nil {
			return err
		}
		if len(web) != 1 || web.AggregatedStatus() != api.HealthPassing {
			return fmt.Errorf("web checks (want its state, passing): %v", web)
		}
		crash, err := health("crash")
		if err != nil {
			return err
		}
		if crash.AggregatedStatus() != api.HealthCritical {
			return fmt.Errorf("crash checks (want critical): %v", crash)
		}
		return nil
	})
	svcs, _, err := client.Catalog().Service("web", "fleet", nil)
	if err != nil || len(svcs) != 1 || svcs[0].Node != registry.CatalogNode(svcs[0].ServiceMeta["machine-id"]) {
		t.Fatalf("catalog entry of web: %+v %v", svcs, err)
	}
	// A passing unit is named in its instance's passing check; a unit that
	// failed is a critical check of its own, named after it.
	if checks, _, err := client.Health().Checks("web", nil); err != nil || len(checks) != 1 ||
		checks[0].CheckID != registry.PassingCheckID("web") || !strings.Contains(checks[0].Output, " web@1.service") {
		t.Fatalf("web's passing check, naming web@1.service: %+v %v", checks, err)
	}
	if checks, _, err := client.Health().Checks("crash", nil); err != nil || len(checks) != 1 ||
		checks[0].CheckID != registry.UnitCheckID("crash.service") || checks[0].Name != "systemd state of crash.service" ||
		checks[0].Status != api.HealthCritical {
		t.Fatalf("crash.service's own check, critical: %+v %v", checks, err)
	}

	mustCtl(t, ep, "unload", "web@1")
	testcluster.Eventually(t, 20*time.Second, func() error {
		if web, err := health("web"); err != nil || len(web) != 0 {
			return fmt.Errorf("web still in the catalog after unload: %v %v", web, err)
		}
		return nil
	})

	// The machine that ran crash.service dies: the leader removes its
	// node, with every unit shown on it.
	dead := svcMachine(t, client, "crash")
	c.Machine(dead).Kill()
	testcluster.Eventually(t, 30*time.Second, func() error {
		if node, _, err := client.Catalog().Node(registry.CatalogNode(dead), nil); err != nil || node != nil {
			return fmt.Errorf("the dead machine's node is still in the catalog: %v %v", node, err)
		}
		return nil
	})
}

// svcMachine is the machine whose node shows service.
func svcMachine(t *testing.T, client *api.Client, service string) string {
	t.Helper()
	svcs, _, err := client.Catalog().Service(service, "fleet", nil)
	if err != nil || len(svcs) != 1 {
		t.Fatalf("catalog entries of %s: %+v %v", service, svcs, err)
	}
	return svcs[0].ServiceMeta["machine-id"]
}
