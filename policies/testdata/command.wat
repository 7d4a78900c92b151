;; a command module: it exports _start, as a Go program built without
;; -buildmode=c-shared does, and no _initialize.
(module
  (memory (export "memory") 1)
  (func (export "_start"))
  (func (export "fleet_abi_version") (result i32) (i32.const 2))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func (export "fleet_place") (param i32 i32) (result i64) (i64.const 0)))
