;; Reads the clocks: clock_time_get of the realtime clock (id 0) three
;; times, the monotonic clock (id 1) three times, the process and thread
;; CPU-time clocks (ids 2, 3) once each. It answers "no machine fits" with
;; one reason, from machine "probe", whose bytes are the eight readings, each
;; a little-endian (u32 errno, u64 nanoseconds or all ones if none).
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 48000) "\00\00\00\00" "\01\00\00\00" "\05\00\00\00" "probe")
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))

  (func $answer (param $n i32) (result i64)
    (i32.store (i32.const 48017) (local.get $n))
    (i64.or (i64.shl (i64.const 48000) (i64.const 32)) (i64.extend_i32_u (i32.add (local.get $n) (i32.const 21)))))

  ;; read reads clock id into out and returns where the next reading goes.
  (func $read (param $id i32) (param $out i32) (result i32)
    (i64.store (i32.const 8192) (i64.const -1))
    (i32.store (local.get $out) (call $now (local.get $id) (i64.const 1) (i32.const 8192)))
    (i64.store (i32.add (local.get $out) (i32.const 4)) (i64.load (i32.const 8192)))
    (i32.add (local.get $out) (i32.const 12)))

  (func (export "fleet_place") (param i32 i32) (result i64)
    (local $out i32)
    (local.set $out (call $read (i32.const 0) (i32.const 48021)))
    (local.set $out (call $read (i32.const 0) (local.get $out)))
    (local.set $out (call $read (i32.const 0) (local.get $out)))
    (local.set $out (call $read (i32.const 1) (local.get $out)))
    (local.set $out (call $read (i32.const 1) (local.get $out)))
    (local.set $out (call $read (i32.const 1) (local.get $out)))
    (local.set $out (call $read (i32.const 2) (local.get $out)))
    (local.set $out (call $read (i32.const 3) (local.get $out)))
    (call $answer (i32.sub (local.get $out) (i32.const 48021)))))
