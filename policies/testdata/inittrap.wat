;; says why on stderr, then traps, while it is instantiated.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "inittrap: cannot start\n")
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func $init
    ;; one iovec at 0: the 23 bytes at 16
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 23))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable)
  (start $init)
  (func (export "fleet_place") (param i32 i32) (result i64) (i64.const 0)))
