package agent

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// unitCatalog is what a machine shows of its units in Consul's catalog, so
// the Consul UI lists them with health: on the machine's own catalog node
// (registry.CatalogNode), for each service name its units have (web for
// web@1.service) one service instance tagged "fleet". A unit that is not
// passing (failed, stopped against its desired state, activating) is a
// check of that instance of its own, named after it, that mirrors
// systemd's state; the passing units of the instance are listed together
// in one passing check of it. Its writes go in the same transactions as the
// units' states (publisher.sync); it keeps what it wrote, so an unchanged
// unit costs nothing.
type unitCatalog struct {
	machine   string
	ip        string
	instances map[string]bool                 // services whose instance is written
	passing   map[string]string               // per service, the output its passing check was written with; absent: none is
	own       map[string]registry.UnitState   // units with a check of their own, the state it was written for
	wrote     map[string][]registry.UnitState // per service, its units' states (by name) when all of its changes went through
}

func newUnitCatalog(machine, ip string) *unitCatalog {
	return &unitCatalog{machine: machine, ip: ip, instances: map[string]bool{}, passing: map[string]string{},
		own: map[string]registry.UnitState{}, wrote: map[string][]registry.UnitState{}}
}

// catalogChange is one write of a sync's catalog changes: its ops, all or
// none, and what their success records.
type catalogChange struct {
	name string
	ops  []*api.TxnOp
	done func()
}

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
	clear(u.instances)
	clear(u.passing)
	clear(u.own)
	clear(u.wrote)
}

// nodeOps write the machine's catalog node afresh: with a new session, or
// a fleetd started again, what the node held may be out of date.
func (u *unitCatalog) nodeOps(m *registry.Machine) []*api.TxnOp {
	return []*api.TxnOp{registry.NodeDeleteOp(u.machine), registry.NodeOp(m, nil)}
}

// changes are the catalog writes that bring the machine's node up to date
// with states, every unit the machine has, in order: for each service
// name, its instance when none is written yet with its passing check when
// that changed, then the checks of its units that are not passing, or
// that no longer are, whose status or output changed. A service none of
// whose units is left writes nothing here: its instance goes whole, with
// its checks (gone). An unchanged unit costs a comparison: the publisher
// asks at every sync.
func (u *unitCatalog) changes(states map[string]registry.UnitState) []catalogChange {
	bySvc := map[string][]registry.UnitState{}
	for _, name := range slices.Sorted(maps.Keys(states)) {
		svc := ServiceName(name)
		bySvc[svc] = append(bySvc[svc], states[name])
	}
	var out []catalogChange
	for _, svc := range slices.Sorted(maps.Keys(bySvc)) {
		out = append(out, u.serviceChanges(svc, bySvc[svc])...)
	}
	for _, unit := range slices.Sorted(maps.Keys(u.own)) {
		if _, here := states[unit]; !here && bySvc[ServiceName(unit)] != nil {
			out = append(out, catalogChange{"check " + unit, []*api.TxnOp{registry.CheckDeleteOp(u.machine, unit)}, func() { delete(u.own, unit) }})
		}
	}
	return out
}

// serviceChanges are changes for the units of one service, sts, in name
// order. When their states are those it last wrote in full, it has none
// to look for.
func (u *unitCatalog) serviceChanges(svc string, sts []registry.UnitState) []catalogChange {
	if slices.Equal(u.wrote[svc], sts) {
		return nil
	}
	out := u.lookForChanges(svc, sts)
	left := len(out)
	if left == 0 {
		u.wrote[svc] = sts
	}
	for i := range out {
		done := out[i].done
		out[i].done = func() {
			done()
			if left--; left == 0 {
				u.wrote[svc] = sts
			}
		}
	}
	return out
}

// lookForChanges are serviceChanges, found by comparing sts with what
// was written.
func (u *unitCatalog) lookForChanges(svc string, sts []registry.UnitState) []catalogChange {
	var ops []*api.TxnOp
	var units []catalogChange
	if !u.instances[svc] {
		ops = append(ops, registry.ServiceOp(u.machine, api.AgentService{Service: svc, Tags: []string{"fleet"}, Address: u.ip,
			Meta: map[string]string{"machine-id": u.machine}}))
	}
	byOutput := map[string][]string{} // the passing units' names, by their check output
	for _, st := range sts {
		prev, had := u.own[st.Name]
		status, output := Health(st)
		switch {
		case status == api.HealthPassing:
			byOutput[output] = append(byOutput[output], st.Name)
			if had {
				units = append(units, catalogChange{"check " + st.Name, []*api.TxnOp{registry.CheckDeleteOp(u.machine, st.Name)},
					func() { delete(u.own, st.Name) }})
			}
		case !had || prev != st && !showsAs(prev, status, output):
			units = append(units, catalogChange{"check " + st.Name, []*api.TxnOp{registry.CheckOp(u.machine, svc, st.Name, status, output)},
				func() { u.own[st.Name] = st }})
		}
	}
	listed := passingOutput(byOutput)
	prev, had := u.passing[svc]
	switch {
	case len(byOutput) > 0 && (!had || prev != listed):
		ops = append(ops, registry.PassingCheckOp(u.machine, svc, listed))
	case len(byOutput) == 0 && had:
		ops = append(ops, registry.PassingCheckDeleteOp(u.machine, svc))
	}
	if len(ops) == 0 {
		return units
	}
	return append([]catalogChange{{"service " + svc, ops, func() {
		u.instances[svc] = true
		if len(byOutput) > 0 {
			u.passing[svc] = listed
		} else {
			delete(u.passing, svc)
		}
	}}}, units...)
}

// passingListed is how many units a passing check names at most; it counts
// the rest, so that its output stays a few tens of kilobytes however many
// units of one name a machine runs.
const passingListed = 1000

// passingOutput is the output of the check that lists the passing units of
// one service, byOutput (their names, in name order, by the output of
// their Health): a line for each output, naming its units.
func passingOutput(byOutput map[string][]string) string {
	var b strings.Builder
	listed := 0
	for _, output := range slices.Sorted(maps.Keys(byOutput)) {
		names := byOutput[output]
		fmt.Fprintf(&b, "%d %s:", len(names), output)
		for _, name := range names {
			if listed == passingListed {
				b.WriteString(" ...")
				break
			}
			b.WriteString(" " + name)
			listed++
		}
		b.WriteString("\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// showsAs reports whether st's check shows status and output.
func showsAs(st registry.UnitState, status, output string) bool {
	s, o := Health(st)
	return s == status && o == output
}

// gone is the services whose instance is written and none of whose units
// is on the machine (alive holds the services of those that are), in
// order: the instance goes once, with its checks, however many of its
// units leave together.
func (u *unitCatalog) gone(alive map[string]bool) []string {
	var out []string
	for name := range u.instances {
		if !alive[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// serviceRemoved records that service's instance was removed, and its
// checks with it.
func (u *unitCatalog) serviceRemoved(service string) {
	delete(u.instances, service)
	delete(u.passing, service)
	delete(u.wrote, service)
	for unit := range u.own {
		if ServiceName(unit) == service {
			delete(u.own, unit)
		}
	}
}
