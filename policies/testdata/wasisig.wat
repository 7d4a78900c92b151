;; Imports an allowed WASI call, fd_read, with the wrong signature (a
;; pointer as i64): refused at upload.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i64 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func (export "fleet_place") (param i32 i32) (result i64) (i64.const 0)))
