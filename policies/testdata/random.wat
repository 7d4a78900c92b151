;; Reads 32 random bytes with random_get. It answers "no machine fits" with
;; one reason, from machine "probe": random_get's errno (u32, little-endian)
;; and the 32 bytes.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 48000) "\00\00\00\00" "\01\00\00\00" "\05\00\00\00" "probe")
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))

  (func $answer (param $n i32) (result i64)
    (i32.store (i32.const 48017) (local.get $n))
    (i64.or (i64.shl (i64.const 48000) (i64.const 32)) (i64.extend_i32_u (i32.add (local.get $n) (i32.const 21)))))

  (func (export "fleet_place") (param i32 i32) (result i64)
    (i32.store (i32.const 48021) (call $random (i32.const 48025) (i32.const 32)))
    (call $answer (i32.const 36))))
