;; Imports a global and a table from "default": nothing a policy may see
;; exports either, so it must be refused at upload.
(module
  (import "default" "secret" (global $secret i64))
  (import "default" "table" (table 1 funcref))
  (memory (export "memory") 1)
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func (export "fleet_place") (param i32 i32) (result i64) (global.get $secret)))
