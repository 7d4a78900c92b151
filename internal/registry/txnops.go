package registry

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"
)

// Consul's HTTP API takes up to 128 operations in one transaction from
// version 1.14 on, and 64 before. The agent that answers the request counts
// them, so the bound is the one of the agent a registry talks to, whatever
// its servers run.
const (
	txnOpsLeast = 64
	txnOpsMost  = 128
)

// txnOps is how many operations a transaction for a batch of need
// operations carries: txnOpsLeast when need fits in it; else the agent's
// bound, which the registry learns once (probeTxnOps) and keeps. Until the
// agent has answered the probe it is txnOpsLeast.
func (r *Registry) txnOps(ctx context.Context, need int) int {
	if need <= txnOpsLeast {
		return txnOpsLeast
	}
	r.opsMu.Lock()
	defer r.opsMu.Unlock()
	if r.ops == 0 {
		r.ops = r.probeTxnOps(ctx)
	}
	return max(r.ops, txnOpsLeast)
}

// writeOps is txnOps less the operation a write of a logged key needs
// for its entry in the change log.
func (r *Registry) writeOps(ctx context.Context, need int) int {
	return r.txnOps(ctx, need) - 1
}

// probeTxnOps asks the agent to read a key fleet never writes txnOpsMost
// times in one read-only transaction, which Consul answers without raft.
// An agent from before 1.14 refuses it as too many operations, and its
// answer names its bound. It returns 0 when the agent did not answer.
func (r *Registry) probeTxnOps(ctx context.Context) int {
	ops := make(api.TxnOps, txnOpsMost)
	for i := range ops {
		ops[i] = kv(api.KVGetOrEmpty, r.prefix+"~", nil, 0)
	}
	_, _, _, err := r.c.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err == nil {
		return txnOpsMost // answered, whatever it found or was denied
	}
	return txnOpsRefused(err.Error())
}

// txnOpsRefused reads the bound from an agent's refusal of a transaction,
// "Transaction contains too many operations (128 > 64)": its bound when
// it names one, txnOpsLeast when it does not, and 0 when msg is no such
// refusal (the agent did not answer: the probe is made again later).
func txnOpsRefused(msg string) int {
	i := strings.Index(msg, "too many operations")
	if i < 0 {
		return 0
	}
	var asked, most int
	if _, err := fmt.Sscanf(msg[i:], "too many operations (%d > %d)", &asked, &most); err != nil || most < 2 || most > txnOpsMost {
		return txnOpsLeast
	}
	return most
}
