package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// unitServices shows the units a machine runs in Consul's catalog, so the
// Consul UI lists them with health: one service instance per unit per
// machine, named after the unit (apache for apache@1.service), tagged "fleet"
// and with the unit name, with a check that mirrors systemd's state and an
// alias of the machine's heartbeat (a unit on a dead machine is not healthy,
// whatever it last reported).
type unitServices struct {
	client     *api.Client
	machineID  string
	ip         string
	agentSvcID string
	registered map[string]bool
	status     map[string]string // last check status+output written, per unit
}

func newUnitServices(client *api.Client, machineID, ip, agentSvcID string) *unitServices {
	return &unitServices{client: client, machineID: machineID, ip: ip, agentSvcID: agentSvcID,
		registered: map[string]bool{}, status: map[string]string{}}
}

func (u *unitServices) serviceID(unit string) string { return "fleet-unit:" + u.machineID + ":" + unit }
func (u *unitServices) checkID(unit string) string {
	return "fleet-unit-state:" + u.machineID + ":" + unit
}

// ServiceName is the Consul service a unit appears as: the unit name
// without its type and instance, made safe for DNS.
func ServiceName(unit string) string {
	ni := unitfile.ParseName(unit)
	var b strings.Builder
	for _, r := range strings.ToLower(ni.Prefix) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// Health maps a unit's state and desired state to a Consul check status.
func Health(st registry.UnitState) (status, output string) {
	output = fmt.Sprintf("%s %s/%s (desired %s)", st.Load, st.Active, st.Sub, st.State)
	if st.Error != "" {
		output += ": " + st.Error
	}
	switch {
	case st.Active == "failed" || (st.Load != "loaded" && st.Load != ""):
		return api.HealthCritical, output
	case st.Active == "activating" || st.Active == "deactivating" || st.Active == "reloading":
		return api.HealthWarning, output
	case st.State == registry.Launched && st.Active != "active":
		return api.HealthCritical, output // stopped against its desired state
	}
	return api.HealthPassing, output
}

// sync registers the unit's service if needed and updates its check.
//
// The service is registered with its checks already in the status they
// will have: the state check in the unit's (Health), the machine's alias
// passing (this machine's agent is running; the alias corrects it within
// milliseconds otherwise). Consul's registration API takes no check
// output, so the output follows with UpdateTTL; with the status unchanged
// the local Consul agent sends it to the servers with the registration
// when that is still pending, else at its check_update_interval. Checks
// registered as warning and critical would make each status change one
// more catalog write (raft entry) per unit.
func (u *unitServices) sync(ctx context.Context, st registry.UnitState) error {
	status, output := Health(st)
	if !u.registered[st.Name] {
		reg := &api.AgentServiceRegistration{
			ID:      u.serviceID(st.Name),
			Name:    ServiceName(st.Name),
			Tags:    []string{"fleet", st.Name},
			Address: u.ip,
			Meta:    map[string]string{"fleet-unit": st.Name, "machine-id": u.machineID},
			Checks: api.AgentServiceChecks{
				{CheckID: u.checkID(st.Name), Name: "systemd state of " + st.Name, TTL: "8760h", Status: status,
					DeregisterCriticalServiceAfter: "2m"},
				{CheckID: "fleet-unit-machine:" + u.machineID + ":" + st.Name, Name: "machine " + registry.ShortID(u.machineID) + " alive",
					AliasService: u.agentSvcID, Status: api.HealthPassing},
			},
		}
		if err := u.client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)); err != nil {
			return fmt.Errorf("register unit %s in Consul: %w", st.Name, err)
		}
		u.registered[st.Name] = true
		delete(u.status, st.Name)
	}
	if u.status[st.Name] == status+output {
		return nil
	}
	if err := u.client.Agent().UpdateTTLOpts(u.checkID(st.Name), output, status, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		u.registered[st.Name] = false // the local agent lost it: register again next time
		return fmt.Errorf("update health of unit %s: %w", st.Name, err)
	}
	u.status[st.Name] = status + output
	return nil
}

// remove deregisters the unit's service.
func (u *unitServices) remove(ctx context.Context, unit string) error {
	if err := u.client.Agent().ServiceDeregisterOpts(u.serviceID(unit), (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("deregister unit %s from Consul: %w", unit, err)
	}
	delete(u.registered, unit)
	delete(u.status, unit)
	return nil
}
