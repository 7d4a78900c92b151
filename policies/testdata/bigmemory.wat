;; starts with 2000 pages (125 MiB) of memory, over the default cap.
(module
  (memory (export "memory") 2000)
  (func (export "fleet_abi_version") (result i32) (i32.const 2))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func (export "fleet_place") (param i32 i32) (result i64) (i64.const 0)))
