package registry

import (
	"fmt"
	"strings"
)

// Consul's HTTP API takes up to 128 operations in one transaction from
// version 1.14 on, and 64 before. The agent that answers the request counts
// them, so the bound is the one of the agent a registry talks to, whatever
// its servers run.
const (
	txnOpsLeast = 64
	txnOpsMost  = 128
)

// txnOps is how many operations a transaction carries: txnOpsMost, until
// the agent refused as many (tooMany).
func (r *Registry) txnOps() int {
	r.opsMu.Lock()
	defer r.opsMu.Unlock()
	if r.ops == 0 {
		return txnOpsMost
	}
	return r.ops
}

// writeOps is txnOps less the operation a write of a logged key needs
// for its entry in the change log.
func (r *Registry) writeOps() int { return r.txnOps() - 1 }

// tooMany reports whether err is the agent's refusal of a transaction of
// sent operations (at most: a write's log entry may not have been needed)
// as too many, and one that a smaller transaction avoids: the registry then
// keeps the agent's bound, and the caller cuts the transaction's operations
// to it and tries again. Consul refuses such a transaction before it reads
// or writes anything.
func (r *Registry) tooMany(err error, sent int) bool {
	if err == nil {
		return false
	}
	most := txnOpsRefused(err.Error())
	if most == 0 || sent <= most {
		return false
	}
	r.opsMu.Lock()
	if r.ops == 0 || most < r.ops {
		r.ops = most
	}
	r.opsMu.Unlock()
	return true
}

// txnOpsRefused reads the bound from an agent's refusal of a transaction,
// "Transaction contains too many operations (128 > 64)": its bound when it
// names one, txnOpsLeast when it does not, and 0 when msg is no such
// refusal.
func txnOpsRefused(msg string) int {
	i := strings.Index(msg, "too many operations")
	if i < 0 {
		return 0
	}
	var asked, most int
	if _, err := fmt.Sscanf(msg[i:], "too many operations (%d > %d)", &asked, &most); err != nil || most < txnOpsLeast || most > txnOpsMost {
		return txnOpsLeast
	}
	return most
}
