package sdk

// registered is the registered policy, which the ABI's exports call.
var registered *runner

// Register makes p the module's policy. Call it from an init function: a
// WebAssembly reactor runs package initialization but never main. In a
// wasip1 build the exported ABI functions then run p; elsewhere (go test, a
// native build) Register only records it.
func Register(p Policy) { registered = newRunner(p) }
