package registry

import (
	"github.com/hashicorp/consul/api"
)

// A machine's units appear in Consul's catalog (and so in the Consul UI)
// on a node of the machine's own, written straight to the catalog rather
// than through a Consul agent: "fleet-machine-<ID>", holding one service
// instance per unit with a check that mirrors the unit's state. The agent
// writes a unit's entry in the same transaction as its state
// (StateWrite), so the catalog shows what fleet knows; the leader removes
// the node with the machine (KeepWrite). A Consul agent would sync the
// entries one at a time and its anti-entropy would remove any it did not
// register itself (RATIONALE.md).

// CatalogNode is the catalog node machine's units are shown on.
func CatalogNode(machine string) string { return "fleet-machine-" + machine }

// UnitServiceID is unit's service instance on its machine's node.
func UnitServiceID(unit string) string { return "fleet-unit:" + unit }

// UnitCheckID is the check of unit's service instance.
func UnitCheckID(unit string) string { return "fleet-unit-state:" + unit }

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

// ServiceOp registers unit's service instance on machine's node as s
// (its ID is set here).
func ServiceOp(machine, unit string, s api.AgentService) *api.TxnOp {
	s.ID = UnitServiceID(unit)
	return &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: CatalogNode(machine), Service: s}}
}

// CheckOp sets the status and output of unit's check on machine's node.
func CheckOp(machine, unit, status, output string) *api.TxnOp {
	return &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.CheckSet, Check: api.HealthCheck{
		Node: CatalogNode(machine), CheckID: UnitCheckID(unit), Name: "systemd state of " + unit,
		Status: status, Output: output, ServiceID: UnitServiceID(unit)}}}
}

// ServiceDeleteOp removes unit's service instance, named service, and its
// check from machine's node.
func ServiceDeleteOp(machine, unit, service string) *api.TxnOp {
	return &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceDelete, Node: CatalogNode(machine),
		Service: api.AgentService{ID: UnitServiceID(unit), Service: service}}}
}

// MachineWrite is a Write of ops that concern machine as a whole (its
// catalog node).
func MachineWrite(machine string, ops ...*api.TxnOp) Write {
	return Write{Name: "machine " + ShortID(machine), ops: ops}
}
