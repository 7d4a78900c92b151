;; Reads its environment and command line: environ_sizes_get, environ_get,
;; args_sizes_get, args_get. It answers "no machine fits" with one reason,
;; from machine "probe", whose bytes are little-endian u32s
;;   environ_sizes_get errno, count, bytes; environ_get errno (all ones if
;;   not called: more than 64 variables or 8 KiB);
;;   args_sizes_get errno, count, bytes; args_get errno (the same)
;; followed by the environment's bytes and then the arguments' bytes
;; ("KEY=value\0" and "arg\0" each, as WASI writes them).
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 48000) "\00\00\00\00" "\01\00\00\00" "\05\00\00\00" "probe")
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))

  (func $answer (param $n i32) (result i64)
    (i32.store (i32.const 48017) (local.get $n))
    (i64.or (i64.shl (i64.const 48000) (i64.const 32)) (i64.extend_i32_u (i32.add (local.get $n) (i32.const 21)))))

  (func (export "fleet_place") (param i32 i32) (result i64)
    (local $buf i32)
    ;; the header is 8 u32s at 48021; the strings follow at 48053
    (local.set $buf (i32.const 48053))
    (i32.store (i32.const 48021) (call $env_sizes (i32.const 48025) (i32.const 48029)))
    (i32.store (i32.const 48033) (i32.const -1))
    (if (i32.and (i32.le_u (i32.load (i32.const 48025)) (i32.const 64))
                 (i32.le_u (i32.load (i32.const 48029)) (i32.const 8192)))
      (then
        (i32.store (i32.const 48033) (call $env_get (i32.const 8192) (local.get $buf)))
        (local.set $buf (i32.add (local.get $buf) (i32.load (i32.const 48029))))))
    (i32.store (i32.const 48037) (call $args_sizes (i32.const 48041) (i32.const 48045)))
    (i32.store (i32.const 48049) (i32.const -1))
    (if (i32.and (i32.le_u (i32.load (i32.const 48041)) (i32.const 64))
                 (i32.le_u (i32.load (i32.const 48045)) (i32.const 8192)))
      (then
        (i32.store (i32.const 48049) (call $args_get (i32.const 8192) (local.get $buf)))
        (local.set $buf (i32.add (local.get $buf) (i32.load (i32.const 48045))))))
    (call $answer (i32.sub (local.get $buf) (i32.const 48021)))))
