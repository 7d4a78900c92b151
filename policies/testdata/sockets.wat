;; Imports WASI's socket calls (wasi_snapshot_preview1's sock_accept,
;; sock_recv, sock_send, sock_shutdown, and WasmEdge's sock_open): no
;; policy may, so it must be refused at upload, each import named.
(module
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_open" (func $open (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  ;; accepts on fd 3, where a listener would be
  (func (export "fleet_place") (param i32 i32) (result i64)
    (drop (call $accept (i32.const 3) (i32.const 0) (i32.const 8192)))
    (i64.const 0)))
