// Command wasm is the default policy as a WebAssembly module; go generate in
// plugins/default builds it into default.wasm.
package main

import (
	"github.com/wasmfleet/fleet/plugins/default/policy"
	"github.com/wasmfleet/fleet/sdk"
)

func init() { sdk.Register(policy.Place) }

// main is required by the Go toolchain but never runs: the module is a
// reactor, whose exports fleetd calls after package initialization.
func main() {}
