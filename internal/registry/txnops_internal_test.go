package registry

import "testing"

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
