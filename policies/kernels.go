package policies

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmfleet/fleet/sdk/kernel"
)

// The "fleet" host module: the SDK's heavy loops (package kernel), run
// natively over a guest's memory. A guest that calls one gets the same
// answer its native build computes, at native speed. Every argument is
// checked against the calling guest's own memory; a bad pointer or length
// traps the call, which fails that one decision.

// hostModule is the name guests import the kernels from.
const hostModule = "fleet"

// hostFunctions are the kernels a policy may import, with their signatures.
var hostFunctions = map[string]export{
	"least": {"least", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}},
}

func instantiateKernels(ctx context.Context, rt wazero.Runtime) error {
	f := hostFunctions["least"]
	_, err := rt.NewHostModuleBuilder(hostModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(least), f.params, f.results).Export(f.name).
		Instantiate(ctx)
	return err
}

// least is kernel.Least(set, keys) over two []uint64 in guest memory:
// (setPtr, setWords, keysPtr, nKeys) -> slot, or -1.
func least(_ context.Context, mod api.Module, stack []uint64) {
	set := words(mod, uint32(stack[0]), uint32(stack[1]))
	keys := words(mod, uint32(stack[2]), uint32(stack[3]))
	stack[0] = api.EncodeI32(int32(kernel.Least(set, keys)))
}

// words is n little-endian uint64s at ptr in the guest's memory, without a
// copy. It panics, which traps the guest's call, when they are not all
// inside the memory or not 8-byte aligned.
func words(mod api.Module, ptr, n uint32) []uint64 {
	if n == 0 {
		return nil
	}
	// n*8 must not wrap in 32 bits: 1<<29 words would be 0 bytes to Read.
	b, ok := []byte(nil), n < 1<<29 && ptr%8 == 0
	if ok {
		b, ok = mod.Memory().Read(ptr, n*8)
	}
	if !ok {
		panic(fmt.Errorf("fleet kernel: %d words at %#x are not inside the guest's memory", n, ptr))
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n)
}
