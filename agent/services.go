package agent

import (
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// unitCatalog is what a machine shows of its units in Consul's catalog, so
// the Consul UI lists them with health: on the machine's own catalog node
// (registry.CatalogNode), one service instance per unit, named after the
// unit (apache for apache@1.service), tagged "fleet" and with the unit
// name, with a check that mirrors systemd's state. Its writes go in the
// same transactions as the units' states (registry.StateWrite); it keeps
// what it wrote, so an unchanged unit costs nothing.
type unitCatalog struct {
	machine    string
	ip         string
	registered map[string]bool
	status     map[string]string // check status+output written, per unit
}

func newUnitCatalog(machine, ip string) *unitCatalog {
	return &unitCatalog{machine: machine, ip: ip, registered: map[string]bool{}, status: map[string]string{}}
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

// reset forgets what was written: the machine's node is written anew
// (nodeOps), and every unit with it.
func (u *unitCatalog) reset() {
	clear(u.registered)
	clear(u.status)
}

// nodeOps write the machine's catalog node afresh: with a new session, or
// a fleetd started again, what the node held may be out of date.
func (u *unitCatalog) nodeOps(m *registry.Machine) []*api.TxnOp {
	return []*api.TxnOp{registry.NodeDeleteOp(u.machine), registry.NodeOp(m, nil)}
}

// ops are the catalog writes that bring st's unit up to date: its service
// instance when not written yet, its check when its status or output
// changed.
func (u *unitCatalog) ops(st registry.UnitState) []*api.TxnOp {
	var ops []*api.TxnOp
	if !u.registered[st.Name] {
		ops = append(ops, registry.ServiceOp(u.machine, st.Name, api.AgentService{
			Service: ServiceName(st.Name),
			Tags:    []string{"fleet", st.Name},
			Address: u.ip,
			Meta:    map[string]string{"fleet-unit": st.Name, "machine-id": u.machine},
		}))
	}
	status, output := Health(st)
	if !u.registered[st.Name] || u.status[st.Name] != status+output {
		ops = append(ops, registry.CheckOp(u.machine, st.Name, status, output))
	}
	return ops
}

// written records that st's ops went through.
func (u *unitCatalog) written(st registry.UnitState) {
	status, output := Health(st)
	u.registered[st.Name], u.status[st.Name] = true, status+output
}

// removeOps take unit's service instance and its check off the node.
func (u *unitCatalog) removeOps(unit string) []*api.TxnOp {
	return []*api.TxnOp{registry.ServiceDeleteOp(u.machine, unit, ServiceName(unit))}
}

// removed records that unit's removal went through.
func (u *unitCatalog) removed(unit string) {
	delete(u.registered, unit)
	delete(u.status, unit)
}
