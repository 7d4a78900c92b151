;; starts small but declares it may grow to 2048 pages (128 MiB), over the
;; default cap.
(module
  (memory (export "memory") 1 2048)
  (func (export "fleet_abi_version") (result i32) (i32.const 2))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func (export "fleet_place") (param i32 i32) (result i64) (i64.const 0)))
