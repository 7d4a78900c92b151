package registry

import (
	"github.com/hashicorp/consul/api"
)

// A machine's units appear in Consul's catalog (and so in the Consul UI)
// on a node of the machine's own, written straight to the catalog rather
// than through a Consul agent: "fleet-machine-<ID>", holding for each
// service name its units run under (web for web@1.service and
// web@2.service) one service instance, with a check of its own for each
// unit that is not passing and one check listing those that are. The agent
// writes the checks in the same transactions as the states they mirror
// (MachineStatesWrite, CatalogWrite), so the catalog shows what fleet
// knows; the leader removes the node with the machine (KeepWrite). A Consul agent would sync the entries one at a time and its
// anti-entropy would remove any it did not register itself, and an
// instance per unit would make each registration cost in proportion to the
// instances of its name (RATIONALE.md).

// CatalogNode is the catalog node machine's units are shown on.
func CatalogNode(machine string) string { return "fleet-machine-" + machine }

// ServiceInstanceID is the instance of service on a machine's node.
func ServiceInstanceID(service string) string { return "fleet:" + service }

// UnitCheckID is the check of its own of a unit that is not passing, on
// its machine's node.
func UnitCheckID(unit string) string { return "fleet-unit-state:" + unit }

// PassingCheckID is the check of the instance of service on a machine's
// node that lists its passing units.
func PassingCheckID(service string) string { return "fleet-units-passing:" + service }

// NodeOp registers m's catalog node (CatalogNode) with its address and
// metadata.
func NodeOp(m *Machine, meta map[string]string) *api.TxnOp {
	md := map[string]string{"fleet-machine": m.ID}
	for k, v := range meta {
		md[k] = v
	}
	return &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeSet, Node: api.Node{Node: CatalogNode(m.ID), Address: m.IP, Meta: md}}}
}

// NodeDeleteOp removes machine's catalog node and every entry on it.
func NodeDeleteOp(machine string) *api.TxnOp {
	return &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.NodeDelete, Node: api.Node{Node: CatalogNode(machine)}}}
}

// ServiceOp registers s (its ID is set here) as the instance of s.Service
// on machine's node.
func ServiceOp(machine string, s api.AgentService) *api.TxnOp {
	s.ID = ServiceInstanceID(s.Service)
	return &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: CatalogNode(machine), Service: s}}
}

// ServiceDeleteOp removes the instance of service, and its checks, from
// machine's node.
func ServiceDeleteOp(machine, service string) *api.TxnOp {
	return &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceDelete, Node: CatalogNode(machine),
		Service: api.AgentService{ID: ServiceInstanceID(service), Service: service}}}
}

// CheckOp sets the status and output of unit's check, on the instance of
// service on machine's node.
func CheckOp(machine, service, unit, status, output string) *api.TxnOp {
	return &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{
		Node: CatalogNode(machine), CheckID: UnitCheckID(unit), Name: "systemd state of " + unit,
		Status: status, Output: output, ServiceID: ServiceInstanceID(service), ServiceName: service}}}
}

// CheckDeleteOp removes unit's check from machine's node.
func CheckDeleteOp(machine, unit string) *api.TxnOp { return checkDeleteOp(machine, UnitCheckID(unit)) }

// PassingCheckOp sets the output of the passing check of the instance of
// service on machine's node, which lists its passing units.
func PassingCheckOp(machine, service, output string) *api.TxnOp {
	return &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{
		Node: CatalogNode(machine), CheckID: PassingCheckID(service), Name: "passing units of " + service,
		Status: api.HealthPassing, Output: output, ServiceID: ServiceInstanceID(service), ServiceName: service}}}
}

// PassingCheckDeleteOp removes the passing check of the instance of service
// from machine's node: none of its units is passing.
func PassingCheckDeleteOp(machine, service string) *api.TxnOp {
	return checkDeleteOp(machine, PassingCheckID(service))
}

func checkDeleteOp(machine, id string) *api.TxnOp {
	return &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckDelete, Check: api.HealthCheck{Node: CatalogNode(machine), CheckID: id}}}
}

// MachineWrite is a Write of ops that concern machine as a whole (its
// catalog node).
func MachineWrite(machine string, ops ...*api.TxnOp) Write {
	return Write{Name: "machine " + ShortID(machine), ops: ops}
}
