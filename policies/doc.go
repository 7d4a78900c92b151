// Package policies runs placement policies: WebAssembly modules that choose
// a machine for a unit, sandboxed with wazero.
//
// A module is validated when it is loaded (size, exports and their types, the
// ABI version, imports limited to the WASI calls a Go guest needs) and
// compiled once. Each Policy keeps a small pool of instances, because an
// instance runs one call at a time. The cluster lives inside each instance;
// the host keeps a mirror and sends each instance only what changed since it
// last ran (docs/abi.md).
//
// Sandbox: no file system, no network, fake clocks, guest memory capped
// (default 64 MiB), and each call of an untrusted module bounded in time
// (default 100 ms) by wazero's context-driven interruption. That guard slows
// tight guest loops several times, so modules fleetd ships itself (the
// default policy) run in a second runtime without it; RATIONALE.md says why.
// A trap, a timeout, or an answer naming a machine that is not live fails
// that one decision, discards the instance, and never the caller.
package policies
