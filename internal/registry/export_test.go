package registry

// SetTxnOps makes r fill its transactions to n operations, as if its
// agent took that many: BenchmarkTxnOps compares Consul's bounds.
func SetTxnOps(r *Registry, n int) {
	r.opsMu.Lock()
	r.ops = n
	r.opsMu.Unlock()
}
