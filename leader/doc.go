// Package leader is the part of fleetd that places units. Every fleetd is a
// candidate; the one holding the Consul lock is the leader.
//
// The leader follows the whole cluster with one blocking query, and on every
// change runs Reconcile: a pure function from a snapshot to a list of
// actions (unschedule a unit from a machine that is gone or that it should
// leave; schedule each unplaced unit on the machine a Placer picks). Actions
// are applied as transactions fenced on the lock, so a leader that lost the
// lock without noticing cannot write a schedule.
//
// The Placer is the seam for placement policies: fleetd's runs each unit's
// policy (policies.Placer), and there is no other. Reconcile itself applies
// fleet's rules (sdk/xfleet) only where fleet's engine did: to move the units
// the built-in policy placed when their machine stops satisfying them, and
// to move a unit off the machine of a unit that replaces it.
package leader
