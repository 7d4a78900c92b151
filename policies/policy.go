package policies

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// maxAnswer bounds a decision's size: a policy cannot make fleetd copy
// gigabytes.
const maxAnswer = 1 << 20

// Policy is a loaded module, ready to place units.
type Policy struct {
	name     string
	host     *Host
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	guarded  bool

	pool    chan *instance // idle instances
	mu      sync.Mutex     // guards mirror and created
	mirror  *mirror
	created int

	// slow is set while the policy's last decision ran out of time on its
	// second try too: a policy that loops costs the leader one long try
	// per streak of failures, not one per decision.
	slow atomic.Bool

	// outgrown holds the error of a new instance that ran out of memory
	// taking in the whole cluster, until the next Sync: each instance
	// after it would take the whole cluster in again and fail the same
	// way, at a cost that grows with the cluster, for every unit of a pass.
	outgrown atomic.Pointer[error]

	// native, when set, makes each instance a policy compiled into fleetd
	// instead of a WebAssembly instance (LoadNative).
	native func() Runner
}

// Runner is a policy compiled into fleetd, answering the ABI's calls with
// the same bytes a module's exports take and return (sdk/native's is one).
type Runner interface {
	Apply(updates []byte) error
	Place(request []byte) ([]byte, error)
	PlaceDefined(handle uint32) ([]byte, error)
}

// LoadNative returns a Policy that runs newRunner's policy natively, through
// the same mirror, pool and answer checks as a module: a baseline to measure
// WebAssembly against (fleetd --default-policy-native), never a way to run
// uploaded code. A runner that panics fails that decision and is replaced,
// as a module that traps is.
func (h *Host) LoadNative(name string, newRunner func() Runner) *Policy {
	return &Policy{name: name, host: h, native: newRunner,
		pool: make(chan *instance, h.cfg.PoolSize), mirror: newMirror(true)}
}

// Name is the policy's name.
func (p *Policy) Name() string { return p.name }

// instance is one instantiation of the module; it runs one call at a time.
type instance struct {
	native                       Runner // set for a native policy, which has no module
	mod                          api.Module
	mem                          api.Memory // mod's, looked up once
	version, alloc, apply, place api.Function
	placeDefined                 api.Function  // nil when the module does not export it
	out                          *guestOutput  // the guest's stderr during its current call
	gen                          uint64        // mirror generation this instance has applied
	req                          wire.Writer   // the request being sent, reused
	stack                        [2]uint64     // arguments and result of a call
	limit                        time.Duration // when set, the bound of its calls instead of CallTimeout
}

func (p *Policy) newInstance(ctx context.Context) (*instance, error) {
	if p.native != nil {
		return &instance{native: p.native()}, nil
	}
	out := new(guestOutput)
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithNanotime(steadyClock(), 1).WithStderr(out)
	if p.guarded {
		// A Go guest collects garbage when its heap doubles, which with
		// the cluster resident means often, and every collection scans
		// the whole heap. Let it grow to most of its memory cap first.
		limit := p.host.cfg.MemoryLimitMiB * 3 / 4
		cfg = cfg.WithEnv("GOGC", "off").WithEnv("GOMEMLIMIT", fmt.Sprintf("%dMiB", limit))
	} else {
		// fleetd's own module has no cap to grow to (trustedPages): it
		// collects when its heap is trustedGOGC percent past what is live.
		cfg = cfg.WithEnv("GOGC", strconv.Itoa(trustedGOGC))
	}
	if p.compiled.ExportedFunctions()["_initialize"] != nil {
		cfg = cfg.WithStartFunctions("_initialize") // a Go reactor's runtime set-up
	}
	ictx, cancel := p.deadlineFor(ctx, p.host.cfg.InitTimeout)
	defer cancel()
	if !p.guarded {
		ictx = experimental.WithMemoryAllocator(ictx, mappedAllocator)
	}
	mod, err := p.rt.InstantiateModule(ictx, p.compiled, cfg)
	if err != nil {
		if ictx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("instantiating stopped after its time limit of %s", p.host.cfg.InitTimeout)
		}
		why, _ := p.host.explain(out, nil, !p.guarded)
		return nil, fmt.Errorf("instantiating traps in its initializer: %s%w", why, err)
	}
	return &instance{mod: mod, mem: mod.Memory(), out: out,
		version: mod.ExportedFunction("fleet_abi_version"), alloc: mod.ExportedFunction("fleet_alloc"),
		apply: mod.ExportedFunction("fleet_apply"), place: mod.ExportedFunction("fleet_place"),
		placeDefined: mod.ExportedFunction(placeDefinedExport.name)}, nil
}

// trustedGOGC is the GOGC of fleetd's own Go modules.
const trustedGOGC = 400

// steadyClock is a guest's monotonic clock: not the real time (a policy
// must not be able to time anything), but a counter that advances 1 µs per
// reading. wazero's default fake advances 1 ms per reading, and under it a Go
// guest's garbage collector never finishes a cycle: its pacing takes every
// reading for a millisecond of work, and the heap grows until the instance
// runs out of memory (TestManyDecisions).
func steadyClock() sys.Nanotime {
	var t int64
	return func() int64 {
		t += 1000
		return t
	}
}

func (i *instance) close(ctx context.Context) {
	if i.mod != nil {
		_ = i.mod.Close(ctx)
	}
}

// applyFactor stretches the time limit of fleet_apply: catching up with a
// large cluster (the first call: every machine and placement) is work the
// host hands the guest, not the policy's own choice.
const applyFactor = 20

// deadlineFor bounds a call of an untrusted module by limit; fleetd's own
// modules run unbounded.
func (p *Policy) deadlineFor(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	if !p.guarded {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, limit)
}

// call runs f with the policy's time bound and returns its one result.
func (i *instance) call(ctx context.Context, p *Policy, f api.Function, args ...uint64) (uint64, error) {
	if len(args) > len(i.stack) { // every export's signature was checked at load (checkExports)
		return 0, errors.New("called with too many arguments")
	}
	copy(i.stack[:], args)
	// A failure reports what this call wrote, not what an earlier one did.
	i.out.reset()
	if !p.guarded { // fleetd's own module: no deadline to keep
		if err := f.CallWithStack(ctx, i.stack[:]); err != nil {
			return 0, i.trapped(p, err)
		}
		return i.stack[0], nil
	}
	limit := p.host.cfg.CallTimeout
	if i.limit > 0 {
		limit = i.limit
	}
	if f == i.apply {
		limit *= applyFactor
	}
	cctx, cancel := p.deadlineFor(ctx, limit)
	defer cancel()
	if err := f.CallWithStack(cctx, i.stack[:]); err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return 0, timeLimitError{limit}
		}
		return 0, i.trapped(p, err)
	}
	return i.stack[0], nil
}

// timeLimitError is a call stopped after its time limit.
type timeLimitError struct{ limit time.Duration }

func (e timeLimitError) Error() string {
	return fmt.Sprintf("stopped after its time limit of %s", e.limit)
}

// trapped is the error of a call that trapped: what fleetd can tell of why
// (explain), then wazero's words, the trap and the guest's stack.
func (i *instance) trapped(p *Policy, err error) error {
	why, oom := p.host.explain(i.out, i.mem, !p.guarded)
	err = fmt.Errorf("trapped: %s%w", why, err)
	if oom {
		return outOfMemoryError{err}
	}
	return err
}

// outOfMemoryError is a call that trapped because the guest ran out of
// memory.
type outOfMemoryError struct{ error }

func (e outOfMemoryError) Unwrap() error { return e.error }

// send writes b into the guest through fleet_alloc and calls f with it.
func (i *instance) send(ctx context.Context, p *Policy, f api.Function, b []byte) (uint64, error) {
	ptr, err := i.call(ctx, p, i.alloc, uint64(len(b)))
	if err != nil {
		return 0, fmt.Errorf("fleet_alloc %w", err)
	}
	if len(b) > 0 && !i.mem.Write(uint32(ptr), b) {
		return 0, fmt.Errorf("fleet_alloc returned %#x, outside its memory", ptr)
	}
	return i.call(ctx, p, f, ptr, uint64(len(b)))
}

// acquire takes an idle instance, or makes one while the pool is not full.
func (p *Policy) acquire(ctx context.Context) (*instance, error) {
	select {
	case i := <-p.pool:
		return i, nil
	default:
	}
	p.mu.Lock()
	if p.created < p.host.cfg.PoolSize {
		p.created++
		p.mu.Unlock()
		i, err := p.newInstance(ctx)
		if err != nil {
			p.mu.Lock()
			p.created--
			p.mu.Unlock()
		}
		return i, err
	}
	p.mu.Unlock()
	select {
	case i := <-p.pool:
		return i, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release returns a healthy instance to the pool, or discards a broken one.
func (p *Policy) release(ctx context.Context, i *instance, broken bool) {
	if !broken {
		p.pool <- i
		return
	}
	i.close(ctx)
	p.mu.Lock()
	p.created--
	p.mu.Unlock()
}

// Place asks the policy where unit req goes, in the cluster last given to
// Sync.
//
// # Errors
//
// A trap, a timeout, an answer that does not decode or is too large, or a
// chosen machine that is not live: the error says which, and the instance
// that failed is discarded. A trap's error quotes what the guest wrote to
// stderr during that call, and says when it ran out of memory.
func (p *Policy) Place(ctx context.Context, req wire.Request) (wire.Decision, error) {
	if err := p.outgrown.Load(); err != nil {
		return wire.Decision{}, fmt.Errorf("policy %s: %w; not tried again until the next pass: a new instance cannot take in the cluster", p.name, *err)
	}
	d, err := p.try(ctx, req, false)
	if errors.As(err, new(timeLimitError)) && ctx.Err() == nil {
		if p.slow.Load() {
			err = fmt.Errorf("%w; not tried again: its last decision ran out of time on its second try too", err)
		} else {
			// A busy host can stop a decision that was on its way: one
			// more try with room, on another instance.
			if d, err = p.try(ctx, req, true); err != nil {
				err = fmt.Errorf("tried again after running out of %s: %w", p.host.cfg.CallTimeout, err)
			}
			p.slow.Store(errors.As(err, new(timeLimitError)))
		}
	}
	if err != nil {
		return wire.Decision{}, fmt.Errorf("policy %s: %w", p.name, err)
	}
	p.slow.Store(false)
	return d, nil
}

// try is one attempt at a decision, on an instance of the pool; retry
// gives its calls RetryTimeout.
func (p *Policy) try(ctx context.Context, req wire.Request, retry bool) (wire.Decision, error) {
	i, err := p.acquire(ctx)
	if err != nil {
		return wire.Decision{}, err
	}
	if retry {
		i.limit = p.host.cfg.RetryTimeout
	}
	d, err := p.place(ctx, i, req)
	i.limit = 0
	p.release(ctx, i, err != nil)
	return d, err
}

func (p *Policy) place(ctx context.Context, i *instance, req wire.Request) (wire.Decision, error) {
	p.mu.Lock()
	updates, gen := p.mirror.since(i.gen)
	handle, defined := p.mirror.handleFor(req)
	p.mu.Unlock()
	whole := len(updates) > 0 && updates[0] == wire.OpReset // the whole cluster (mirror.full)
	var view []byte
	var err error
	if i.native != nil {
		view, err = i.runNative(updates, req, handle, defined)
	} else {
		view, err = i.run(ctx, p, updates, req, handle, defined)
	}
	if err != nil {
		if whole && errors.As(err, new(outOfMemoryError)) {
			p.outgrown.Store(&err)
		}
		return wire.Decision{}, err
	}
	i.gen = gen
	var d wire.Decision
	if def, ok := wire.DecodeDeferred(view); ok && i.mod != nil {
		// The guest left the choice to fleetd (docs/abi.md).
		if d.Machine, err = choose(i.mem, def); err != nil {
			return wire.Decision{}, fmt.Errorf("fleet_place answered a deferred choice fleetd cannot make: %w", err)
		}
	} else if d, err = wire.DecodeDecision(view); err != nil { // copies what it keeps: the view dies with the next call
		return wire.Decision{}, fmt.Errorf("fleet_place answered nonsense: %w", err)
	}
	p.mu.Lock()
	live := d.Machine == "" || p.mirror.machines[d.Machine] != nil
	p.mu.Unlock()
	if !live {
		return wire.Decision{}, fmt.Errorf("chose machine %q, which is not a live machine", d.Machine)
	}
	return d, nil
}

// run applies updates to a module's instance and asks it for req's
// decision (by handle when defined), returning the answer as a view of the
// guest's memory.
func (i *instance) run(ctx context.Context, p *Policy, updates []byte, req wire.Request, handle uint32, defined bool) ([]byte, error) {
	if len(updates) > 0 {
		code, err := i.send(ctx, p, i.apply, updates)
		if err != nil {
			return nil, fmt.Errorf("fleet_apply %w", err)
		}
		if code != 0 {
			return nil, fmt.Errorf("fleet_apply refused the cluster update (code %d)", code)
		}
	}
	var packed uint64
	var err error
	if defined && i.placeDefined != nil {
		// The guest holds the unit's options: ask by handle.
		if packed, err = i.call(ctx, p, i.placeDefined, uint64(handle)); err != nil {
			return nil, fmt.Errorf("fleet_place_defined %w", err)
		}
	} else {
		i.req.B = i.req.B[:0]
		req.Encode(&i.req)
		if packed, err = i.send(ctx, p, i.place, i.req.B); err != nil {
			return nil, fmt.Errorf("fleet_place %w", err)
		}
	}
	ptr, n := uint32(packed>>32), uint32(packed)
	if packed == 0 {
		return nil, errors.New("fleet_place could not read the request")
	}
	if n > maxAnswer {
		return nil, fmt.Errorf("fleet_place answered %d bytes; the limit is %d", n, maxAnswer)
	}
	view, ok := i.mem.Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("fleet_place answered at %#x+%d, outside its memory", ptr, n)
	}
	return view, nil
}

// runNative is run for a native policy: the same bytes, direct calls. A
// panic is that decision's failure, as a trap is a module's.
func (i *instance) runNative(updates []byte, req wire.Request, handle uint32, defined bool) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("panicked: %v", r)
		}
	}()
	if len(updates) > 0 {
		if err := i.native.Apply(updates); err != nil {
			return nil, fmt.Errorf("fleet_apply refused the cluster update: %w", err)
		}
	}
	if defined {
		if out, err = i.native.PlaceDefined(handle); err != nil {
			return nil, fmt.Errorf("fleet_place_defined %w", err)
		}
	} else {
		i.req.B = i.req.B[:0]
		req.Encode(&i.req)
		if out, err = i.native.Place(i.req.B); err != nil {
			return nil, fmt.Errorf("fleet_place %w", err)
		}
	}
	if len(out) > maxAnswer {
		return nil, fmt.Errorf("fleet_place answered %d bytes; the limit is %d", len(out), maxAnswer)
	}
	return out, nil
}
