// Package native runs a policy written with the SDK inside the host's own
// process, answering the ABI's calls with the bytes its WebAssembly build
// would: fleetd's baseline to measure WebAssembly against, and the
// reference of its differential tests. Policy authors do not need it.
package native

import (
	"github.com/wasmfleet/fleet/sdk"
	"github.com/wasmfleet/fleet/sdk/internal/hook"
)

// Runner is a policy with its resident cluster, answering the ABI's calls:
// Apply takes a batch of updates, Place an encoded request, PlaceDefined the
// handle of a unit the host defined, and the last two return the encoded
// decision, valid until the next call (docs/abi.md).
type Runner = hook.Runner

// NewRunner returns a Runner of p with an empty cluster.
func NewRunner(p sdk.Policy) Runner { return hook.NewRunner(p) }
