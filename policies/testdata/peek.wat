;; Looks for another policy's data. fleet_place answers "no machine fits"
;; with one reason, from machine "probe", holding the 16 bytes it finds at
;; address 8192 of its memory; then it stores its own secret there: the
;; first 16 bytes of the unit's name. Loaded as two policies, the second
;; must find zeros where the first left its secret; the first, asked again,
;; finds its own.
(module
  (memory (export "memory") 1)
  (data (i32.const 48000) "\00\00\00\00" "\01\00\00\00" "\05\00\00\00" "probe")
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))

  (func $answer (param $n i32) (result i64)
    (i32.store (i32.const 48017) (local.get $n))
    (i64.or (i64.shl (i64.const 48000) (i64.const 32)) (i64.extend_i32_u (i32.add (local.get $n) (i32.const 21)))))

  ;; the request is the unit's name (u32 length, bytes) and its options
  (func (export "fleet_place") (param $ptr i32) (param i32) (result i64)
    (i64.store (i32.const 48021) (i64.load (i32.const 8192)))
    (i64.store (i32.const 48029) (i64.load (i32.const 8200)))
    (i64.store (i32.const 8192) (i64.load (i32.add (local.get $ptr) (i32.const 4))))
    (i64.store (i32.const 8200) (i64.load (i32.add (local.get $ptr) (i32.const 12))))
    (call $answer (i32.const 16))))
