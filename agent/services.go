package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// unitCatalog is what a machine shows of its units in Consul's catalog, so
// the Consul UI lists them with health: on the machine's own catalog node
// (registry.CatalogNode), for each service name its units have (web for
// web@1.service) one service instance tagged "fleet", and for each unit a
// check of that instance, named after the unit, that mirrors systemd's
// state. Its writes go in the same transactions as the units' states
// (registry.StateWrite); it keeps what it wrote, so an unchanged unit costs
// nothing.
type unitCatalog struct {
	machine  string
	ip       string
	services map[string]map[string]bool    // service name -> the units written under it
	checked  map[string]registry.UnitState // per unit, the state its check was last written for
	adding   map[string]bool               // services whose instance an op of this sync's writes registers
}

func newUnitCatalog(machine, ip string) *unitCatalog {
	return &unitCatalog{machine: machine, ip: ip, services: map[string]map[string]bool{}, checked: map[string]registry.UnitState{},
		adding: map[string]bool{}}
}

// begin starts the ops of one sync: a service's instance is registered
// once in them, by the first of its units that is new, however many are.
// The rest of its new units' checks come in the same transaction or a
// later one; when the registration fails, so do they (Consul refuses a
// check of a missing service), and the next sync registers it again.
func (u *unitCatalog) begin() { clear(u.adding) }

// ServiceName is the Consul service a unit appears under: the unit name
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
	if name := strings.Trim(b.String(), "-"); name != "" {
		return name
	}
	return "unit" // a name of nothing but punctuation, such as _.service
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
	clear(u.services)
	clear(u.checked)
}

// nodeOps write the machine's catalog node afresh: with a new session, or
// a fleetd started again, what the node held may be out of date.
func (u *unitCatalog) nodeOps(m *registry.Machine) []*api.TxnOp {
	return []*api.TxnOp{registry.NodeDeleteOp(u.machine), registry.NodeOp(m, nil)}
}

// ops are the catalog writes that bring st's unit up to date: its
// service's instance when none is written yet, its check when its status
// or output changed. A unit whose state is the one its check was written
// for costs a comparison: the publisher asks for every unit in its
// machine key at each write of it.
func (u *unitCatalog) ops(st registry.UnitState) []*api.TxnOp {
	var ops []*api.TxnOp
	name := ServiceName(st.Name)
	if u.services[name] == nil && !u.adding[name] {
		u.adding[name] = true
		ops = append(ops, registry.ServiceOp(u.machine, api.AgentService{Service: name, Tags: []string{"fleet"}, Address: u.ip,
			Meta: map[string]string{"machine-id": u.machine}}))
	}
	if prev, had := u.checked[st.Name]; !had || prev != st && !sameHealth(prev, st) {
		status, output := Health(st)
		ops = append(ops, registry.CheckOp(u.machine, name, st.Name, status, output))
	}
	return ops
}

// sameHealth reports whether a and b show as the same check.
func sameHealth(a, b registry.UnitState) bool {
	sa, oa := Health(a)
	sb, ob := Health(b)
	return sa == sb && oa == ob
}

// written records that st's ops went through.
func (u *unitCatalog) written(st registry.UnitState) {
	name := ServiceName(st.Name)
	if u.services[name] == nil {
		u.services[name] = map[string]bool{}
	}
	u.services[name][st.Name], u.checked[st.Name] = true, st
}

// removeOps take unit's check off the node. Its service's instance goes
// apart, once no unit of the service is left (gone).
func (u *unitCatalog) removeOps(unit string) []*api.TxnOp {
	return []*api.TxnOp{registry.CheckDeleteOp(u.machine, unit)}
}

// removed records that unit's removal went through. Its service stays
// recorded, with no unit, until its instance is removed (serviceRemoved).
func (u *unitCatalog) removed(unit string) {
	delete(u.services[ServiceName(unit)], unit)
	delete(u.checked, unit)
}

// gone is the services whose instance is written and none of whose units
// is on the machine (alive holds the services of those that are), in
// order: each unit's removal takes its own check, and the instance goes
// once, however many of its units leave together.
func (u *unitCatalog) gone(alive map[string]bool) []string {
	var out []string
	for name := range u.services {
		if !alive[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// serviceRemoved records that service's instance was removed.
func (u *unitCatalog) serviceRemoved(service string) { delete(u.services, service) }
