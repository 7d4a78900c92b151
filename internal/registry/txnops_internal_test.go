package registry

import (
	"errors"
	"testing"
)

// TestTxnOpsRefused reads an agent's bound from its refusal, as Consul's
// API client reports it, and tells a refusal from an agent that did not
// answer.
func TestTxnOpsRefused(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want int
	}{
		{"Failed request: Transaction contains too many operations (128 > 64)", 64},
		{"Failed request: Transaction contains too many operations (128 > 100)", 100},
		{"Failed request: Transaction contains too many operations", txnOpsLeast},
		{"Failed request: Transaction contains too many operations (128 > 4096)", txnOpsLeast},
		{`Put "http://127.0.0.1:8500/v1/txn": dial tcp 127.0.0.1:8500: connect: connection refused`, 0},
		{"Unexpected response code: 500 (rpc error: No cluster leader)", 0},
	} {
		if got := txnOpsRefused(c.msg); got != c.want {
			t.Errorf("txnOpsRefused(%q) = %d, want %d", c.msg, got, c.want)
		}
	}
}

// TestTooMany: a refusal lowers the bound a registry cuts transactions to,
// once; a refusal of a transaction already within the bound it names, or
// an error that is no refusal, changes nothing and is not retried.
func TestTooMany(t *testing.T) {
	r := New(nil, "")
	refused := errors.New("write to Consul: Failed request: Transaction contains too many operations (128 > 64)")
	if r.txnOps() != txnOpsMost {
		t.Fatalf("a new registry cuts transactions to %d operations, want %d", r.txnOps(), txnOpsMost)
	}
	if r.tooMany(errors.New("write to Consul: connection refused"), 128) {
		t.Error("an error that is no refusal taken for one")
	}
	if !r.tooMany(refused, 128) || r.txnOps() != 64 || r.writeOps() != 63 {
		t.Errorf("after a refusal at 64: cut to %d operations (%d for writes), want 64 (63)", r.txnOps(), r.writeOps())
	}
	if r.tooMany(refused, 64) {
		t.Error("a refusal of 64 operations by an agent that takes 64 retried: cutting cannot help")
	}
	if !r.tooMany(refused, 100) || r.txnOps() != 64 {
		t.Errorf("a second refusal at 64 (another transaction in flight): not retried, or the bound moved to %d", r.txnOps())
	}
}
