package policies

import (
	"context"

	"github.com/wasmfleet/fleet/internal/registry"
	defaultpolicy "github.com/wasmfleet/fleet/plugins/default"
	"github.com/wasmfleet/fleet/plugins/default/policy"
	"github.com/wasmfleet/fleet/sdk/native"
)

// Builtin is a Placer's loader of the built-in policy (fleet's rules,
// plugins/default) as the WebAssembly module fleetd embeds, run in h's
// trusted runtime: what a leader runs.
func Builtin(h *Host) func(context.Context) (*Policy, error) {
	return func(ctx context.Context) (*Policy, error) {
		return h.Load(ctx, registry.BuiltinPolicy, defaultpolicy.Wasm, true)
	}
}

// BuiltinNative is Builtin with the policy compiled into fleetd instead
// (LoadNative): the same source and the same decisions (TestDefaultPolicyMatchesNative),
// without compiling a module. fleetctl simulates with it, and
// fleetd --default-policy-native leads with it.
func BuiltinNative(h *Host) func(context.Context) (*Policy, error) {
	return func(context.Context) (*Policy, error) {
		return h.LoadNative(registry.BuiltinPolicy, func() Runner { return native.NewRunner(policy.Place) }), nil
	}
}
