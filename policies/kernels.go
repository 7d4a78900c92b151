package policies

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmfleet/fleet/sdk/kernel"
	"github.com/wasmfleet/fleet/sdk/wire"
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
	w, err := wordsIn(mod.Memory(), ptr, n)
	if err != nil {
		panic(fmt.Errorf("fleet kernel: %w", err))
	}
	return w
}

// wordsIn is words, with an error instead of a panic.
func wordsIn(mem api.Memory, ptr, n uint32) ([]uint64, error) {
	if n == 0 {
		return nil, nil
	}
	// n*8 must not wrap in 32 bits: 1<<29 words would be 0 bytes to Read.
	b, ok := []byte(nil), n < 1<<29 && ptr%8 == 0
	if ok {
		b, ok = mem.Read(ptr, n*8)
	}
	if !ok {
		return nil, fmt.Errorf("%d words at %#x are not inside the guest's memory, 8-byte aligned", n, ptr)
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n), nil
}

// maxID bounds the machine ID a deferred choice may name; fleet's are 32
// bytes.
const maxID = 1024

// choose makes a guest's deferred choice (wire.Deferred, docs/abi.md): the
// slot that least, the kernel, picks from the guest's set and keys, and the
// machine ID the guest's table holds for it, copied out of its memory. ""
// when the set has no slot with a key: no machine fits. Whatever the guest
// wrote, the answer is an ID inside its memory or an error.
func choose(mem api.Memory, d wire.Deferred) (string, error) {
	set, err := wordsIn(mem, d.Set, d.Words)
	if err != nil {
		return "", fmt.Errorf("set: %w", err)
	}
	keys, err := wordsIn(mem, d.Keys, d.Slots)
	if err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	slot := kernel.Least(set, keys)
	if slot < 0 {
		return "", nil
	}
	ref, ok := uint64(0), d.IDs%8 == 0 && d.Slots < 1<<29
	if ok {
		ref, ok = mem.ReadUint64Le(d.IDs + uint32(slot)*8)
	}
	if !ok {
		return "", fmt.Errorf("the table of %d IDs at %#x is not inside the guest's memory, 8-byte aligned", d.Slots, d.IDs)
	}
	ptr, n := uint32(ref>>32), uint32(ref)
	if n == 0 || n > maxID {
		return "", fmt.Errorf("slot %d's machine ID is %d bytes; it must be 1 to %d", slot, n, maxID)
	}
	id, ok := mem.Read(ptr, n)
	if !ok {
		return "", fmt.Errorf("slot %d's machine ID at %#x+%d is not inside the guest's memory", slot, ptr, n)
	}
	return string(id), nil
}
