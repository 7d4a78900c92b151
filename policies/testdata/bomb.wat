;; fleet_place asks for 4 GiB of memory, then 4 MiB at a time, and traps
;; when refused: the memory cap must hold.
(module
  (memory (export "memory") 1)
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func (export "fleet_place") (param i32 i32) (result i64)
    (drop (memory.grow (i32.const 65535)))
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 64)) (i32.const -1))))
    unreachable))
