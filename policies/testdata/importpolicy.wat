;; Imports another policy's export, "default"."fleet_place", to call into
;; it: refused at upload.
(module
  (import "default" "fleet_place" (func $other (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func (export "fleet_place") (param i32 i32) (result i64) (call $other (local.get 0) (local.get 1))))
