package registry

import (
	"context"

	"github.com/hashicorp/consul/api"
)

// SetTxnOps makes r fill its transactions to n operations, as if its
// agent had refused more: BenchmarkTxnOps compares Consul's bounds with
// it, TestTxnOps has Consul refuse a registry that takes it for more.
func SetTxnOps(r *Registry, n int) {
	r.opsMu.Lock()
	r.ops = n
	r.opsMu.Unlock()
}

// SendTxn is r.sendTxn: a transaction and Consul's answer, as fleet's
// code reads it.
func SendTxn(ctx context.Context, r *Registry, ops api.TxnOps) (bool, *api.TxnResponse, error) {
	return r.sendTxn(ctx, ops)
}
