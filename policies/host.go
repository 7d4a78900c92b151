package policies

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// Config bounds what policies may use.
type Config struct {
	MemoryLimitMiB int           // guest linear memory cap; default 64
	CallTimeout    time.Duration // per call of an untrusted module; default 100ms
	// InitTimeout bounds instantiating an untrusted module (its memory
	// and its initializer); default 10s. It is apart from CallTimeout:
	// setting up an instance is the host's work as much as the guest's,
	// and on a busy host takes far longer than a decision.
	InitTimeout time.Duration
	// RetryTimeout bounds the second try of a decision that ran out of
	// CallTimeout; default 10 times CallTimeout. A busy host can stop a
	// decision that was on its way; a policy that loops runs out again.
	RetryTimeout   time.Duration
	MaxModuleBytes int // largest module accepted; default 16 MiB
	PoolSize       int // instances per policy; default 2
}

func (c Config) withDefaults() Config {
	if c.MemoryLimitMiB <= 0 {
		c.MemoryLimitMiB = 64
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 100 * time.Millisecond
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = 10 * time.Second
	}
	if c.RetryTimeout <= 0 {
		c.RetryTimeout = 10 * c.CallTimeout
	}
	if c.MaxModuleBytes <= 0 {
		c.MaxModuleBytes = 16 << 20
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 2
	}
	return c
}

// trustedPages is the memory cap of fleetd's own modules: all a 32-bit
// WebAssembly module can address. The default policy keeps the whole
// cluster (about 52 MiB at 100,000 units on 5,000 machines, and a new
// instance needs more while it takes the cluster in at once): a cap sized
// for uploaded policies would make placement fail as the cluster grows.
const trustedPages = 65536

// Host compiles and runs policies. It is safe for concurrent use.
type Host struct {
	cfg     Config
	guarded wazero.Runtime // untrusted modules: calls interrupted at their deadline
	trusted wazero.Runtime // modules fleetd ships: no interruption cost
	cache   wazero.CompilationCache
}

// NewHost returns a Host; Close it when done.
func NewHost(ctx context.Context, cfg Config) (*Host, error) {
	cfg = cfg.withDefaults()
	h := &Host{cfg: cfg, cache: wazero.NewCompilationCache()}
	pages := uint32(cfg.MemoryLimitMiB * 16) // 64 KiB pages
	base := wazero.NewRuntimeConfig().WithCompilationCache(h.cache).WithDebugInfoEnabled(false)
	// An uploaded policy's memory is reserved at its cap when an instance
	// is made, so it never moves as it grows.
	h.guarded = wazero.NewRuntimeWithConfig(ctx, base.WithMemoryLimitPages(pages).WithMemoryCapacityFromMax(true).WithCloseOnContextDone(true))
	// fleetd's own modules hold the cluster, and the cluster has no cap:
	// their memory grows as they need, up to the whole 4 GiB a module can
	// address (trustedPages).
	h.trusted = wazero.NewRuntimeWithConfig(ctx, base.WithMemoryLimitPages(trustedPages))
	for _, rt := range []wazero.Runtime{h.guarded, h.trusted} {
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			h.Close(ctx)
			return nil, fmt.Errorf("policies: instantiate WASI: %w", err)
		}
		if err := instantiateKernels(ctx, rt); err != nil {
			h.Close(ctx)
			return nil, fmt.Errorf("policies: instantiate the fleet host module: %w", err)
		}
	}
	return h, nil
}

// Close releases every runtime and module.
func (h *Host) Close(ctx context.Context) {
	_ = h.guarded.Close(ctx)
	_ = h.trusted.Close(ctx)
	_ = h.cache.Close(ctx)
}

// allowedWASI are the WASI calls a Go (or C) guest needs and that cannot
// reach outside the sandbox: no file system is mounted and no socket exists,
// so the fd_* and path_* calls find nothing; clocks and randomness are fakes.
var allowedWASI = map[string]bool{
	"args_get": true, "args_sizes_get": true, "environ_get": true, "environ_sizes_get": true,
	"clock_time_get": true, "clock_res_get": true, "fd_write": true, "fd_close": true, "fd_fdstat_get": true,
	"fd_fdstat_set_flags": true, "fd_filestat_get": true, "fd_prestat_get": true, "fd_prestat_dir_name": true,
	"fd_read": true, "fd_seek": true, "path_filestat_get": true, "path_open": true,
	"poll_oneoff": true, "proc_exit": true, "random_get": true, "sched_yield": true,
}

// export is one function the ABI requires, with its signature.
type export struct {
	name            string
	params, results []api.ValueType
}

var i32, i64 = api.ValueTypeI32, api.ValueTypeI64

var requiredExports = []export{
	{"fleet_abi_version", nil, []api.ValueType{i32}},
	{"fleet_alloc", []api.ValueType{i32}, []api.ValueType{i32}},
	{"fleet_apply", []api.ValueType{i32, i32}, []api.ValueType{i32}},
	{"fleet_place", []api.ValueType{i32, i32}, []api.ValueType{i64}},
}

// placeDefinedExport is optional: a module that has it is sent handles
// for the units it is told about and asked by handle (docs/abi.md).
var placeDefinedExport = export{"fleet_place_defined", []api.ValueType{i32}, []api.ValueType{i64}}

// Load validates and compiles a module and returns it as a Policy. trusted
// is for modules fleetd ships itself: they run without the time guard.
//
// # Errors
//
// Every rejection names the problem and, where it can, what to do: not
// WebAssembly, too large, memory over the cap, a forbidden import, a missing
// or mistyped export, a command module (a Go policy built without
// -buildmode=c-shared), the wrong ABI version, a trap in its initializer.
func (h *Host) Load(ctx context.Context, name string, wasm []byte, trusted bool) (*Policy, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("policy %s: "+format, append([]any{name}, args...)...)
	}
	if len(wasm) > h.cfg.MaxModuleBytes {
		return nil, bad("module is %d bytes; the limit is %d", len(wasm), h.cfg.MaxModuleBytes)
	}
	if !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		return nil, bad("not a WebAssembly module (no \\0asm header); build it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared")
	}
	rt := h.guarded
	if trusted {
		rt = h.trusted
	}
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		if why := h.memoryTooLarge(wasm, trusted); why != "" {
			return nil, bad("%s", why)
		}
		return nil, bad("does not compile: %v", err)
	}
	if err := checkModule(compiled, name); err != nil {
		compiled.Close(ctx)
		return nil, bad("%v", err)
	}
	_, handles := compiled.ExportedFunctions()[placeDefinedExport.name]
	p := &Policy{name: name, host: h, rt: rt, compiled: compiled, guarded: !trusted,
		pool: make(chan *instance, h.cfg.PoolSize), mirror: newMirror(handles)}
	inst, err := p.newInstance(ctx)
	if err != nil {
		compiled.Close(ctx)
		return nil, bad("%v", err)
	}
	// Proving the module is setting it up: the version is asked within
	// the instantiation's bound, not a decision's.
	inst.limit = h.cfg.InitTimeout
	res, err := inst.call(ctx, p, inst.version)
	inst.limit = 0
	if err != nil {
		inst.close(ctx)
		compiled.Close(ctx)
		return nil, bad("fleet_abi_version failed: %v", err)
	}
	if v := uint32(res); v < wire.OldestVersion || v > wire.Version {
		inst.close(ctx)
		compiled.Close(ctx)
		return nil, bad("speaks ABI version %d; this fleetd speaks versions %d to %d: rebuild it against the SDK this fleet carries (fleetctl policy sdk DIR writes it into DIR/fleet-sdk)",
			v, wire.OldestVersion, wire.Version)
	}
	// The instance that proved the module is the pool's first.
	p.created = 1
	p.pool <- inst
	return p, nil
}

// checkModule checks what a module imports and exports, and that it is a
// reactor, in the order that names the deepest problem first: a program
// without the ABI's exports is told to use the SDK before it is told how to
// build.
func checkModule(c wazero.CompiledModule, name string) error {
	if err := checkImports(c); err != nil {
		return err
	}
	if err := checkExports(c); err != nil {
		return err
	}
	return checkReactor(c, name)
}

// checkReactor refuses a command module, one that exports _start and not
// _initialize, as go build makes without -buildmode=c-shared: fleetd never
// runs _start, and a Go command's exports trap until it has run.
func checkReactor(c wazero.CompiledModule, name string) error {
	fns := c.ExportedFunctions()
	if fns["_start"] == nil || fns["_initialize"] != nil {
		return nil
	}
	return fmt.Errorf("is a command module (it exports _start, which fleetd never runs): build it as a reactor; for Go: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o %s.wasm .", name)
}

func checkImports(c wazero.CompiledModule) error {
	var bad []string
	for _, f := range c.ImportedFunctions() {
		mod, fn, _ := f.Import()
		switch k, ok := hostFunctions[fn]; {
		case mod == wasi_snapshot_preview1.ModuleName && allowedWASI[fn]:
		case mod == hostModule && ok:
			if !sameTypes(f.ParamTypes(), k.params) || !sameTypes(f.ResultTypes(), k.results) {
				return fmt.Errorf("imports %s.%s with the wrong signature %v -> %v; want %v -> %v", mod, fn,
					names(f.ParamTypes()), names(f.ResultTypes()), names(k.params), names(k.results))
			}
		default:
			bad = append(bad, mod+"."+fn)
		}
	}
	for _, m := range c.ImportedMemories() {
		mod, n, _ := m.Import()
		bad = append(bad, mod+"."+n+" (memory)")
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("imports what a policy may not use: %s (allowed: the WASI calls of a wasip1 guest and fleet's kernels, docs/abi.md)", strings.Join(bad, ", "))
	}
	return nil
}

func checkExports(c wazero.CompiledModule) error {
	got := c.ExportedFunctions()
	var missing []string
	for _, e := range append(requiredExports, placeDefinedExport) {
		d, ok := got[e.name]
		if !ok {
			if e.name != placeDefinedExport.name {
				missing = append(missing, e.name)
			}
			continue
		}
		if !sameTypes(d.ParamTypes(), e.params) || !sameTypes(d.ResultTypes(), e.results) {
			return fmt.Errorf("export %s has the wrong signature %v -> %v; want %v -> %v",
				e.name, names(d.ParamTypes()), names(d.ResultTypes()), names(e.params), names(e.results))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("does not export %s; write policies with fleet's SDK (sdk.Register) or see docs/abi.md", strings.Join(missing, ", "))
	}
	if _, ok := c.ExportedMemories()["memory"]; !ok {
		return errors.New("does not export its memory as \"memory\"")
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func names(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}
