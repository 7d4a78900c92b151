package registry

// SetTxnOps makes r fill its transactions to n operations, as if its
// agent had refused more: BenchmarkTxnOps compares Consul's bounds with
// it, TestTxnOps has Consul refuse a registry that takes it for more.
func SetTxnOps(r *Registry, n int) {
	r.opsMu.Lock()
	r.ops = n
	r.opsMu.Unlock()
}
