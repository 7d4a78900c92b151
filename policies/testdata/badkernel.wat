;; fleet_place asks fleet's least kernel to read far outside its memory.
(module
  (import "fleet" "least" (func $least (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func (export "fleet_place") (param i32 i32) (result i64)
    (drop (call $least (i32.const 0xfffff000) (i32.const 100000) (i32.const 8) (i32.const 1)))
    (i64.const 0)))
