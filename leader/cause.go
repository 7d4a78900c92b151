package leader

import "github.com/wasmfleet/fleet/sdk/xfleet"

// Cause is why the leader took a unit off a machine, placed it, or left it
// unplaced: a fixed set of values, which the leader's metrics are labelled
// with and tests compare.
type Cause string

// The causes of the leader's own; the rules' rejections are RuleCause.
const (
	CausePlaced      Cause = "placed"       // a policy chose the machine
	CauseInactive    Cause = "inactive"     // the unit's desired state is inactive
	CauseMachineGone Cause = "machine_gone" // the unit's machine left the cluster
	CauseGlobal      Cause = "global"       // the unit became global: machines run it themselves
	CauseNoMachines  Cause = "no_machines"  // no machine is live
	CauseBodyMissing Cause = "body_missing" // the unit's body is missing from Consul
	CausePolicyError Cause = "policy_error" // the unit's policy failed to decide
	CauseNotLive     Cause = "not_live"     // the policy chose a machine that is not live
	CauseRefused     Cause = "refused"      // the policy chose no machine and gave no reason
)

// RuleCause is the cause of a rejection by fleet's rules: the label of its
// reason (machine_id, machine_metadata, machine_of, conflicts, replaces; policy
// for a reason of an uploaded policy's own).
func RuleCause(r xfleet.Reason) Cause { return Cause(r.Label()) }

// UnplacedCauses are the causes an unplaced unit can have: the leader's own
// and each of the rules' reasons.
var UnplacedCauses = []Cause{CauseNoMachines, CauseBodyMissing, CausePolicyError, CauseNotLive, CauseRefused,
	RuleCause(xfleet.PinnedElsewhere), RuleCause(xfleet.MetadataMismatch), RuleCause(xfleet.PeerMissing),
	RuleCause(xfleet.ConflictsWith), RuleCause(xfleet.ReplacedBy), RuleCause(xfleet.Other)}

// UnscheduleCauses are the causes a unit leaves its machine for.
var UnscheduleCauses = []Cause{CauseInactive, CauseMachineGone, CauseGlobal,
	RuleCause(xfleet.PinnedElsewhere), RuleCause(xfleet.MetadataMismatch), RuleCause(xfleet.PeerMissing),
	RuleCause(xfleet.ConflictsWith), RuleCause(xfleet.ReplacedBy)}
