;; Calls fleet's least kernel with lengths that do not fit, chosen by the
;; first character of the unit's name:
;;   '0' a good call: set {0,1,2}, keys 5, 2, 9: slot 1, answered as "m2"
;;   '1' keys at 0xfffffff8, 2 of them: the end wraps past 2^32
;;   '2' keys at 8256, -1 of them (0xffffffff)
;;   '3' set at 0, 0x20000000 words: 8 times that is 2^32, 0 in 32 bits
;;   '4' set at 8192, 0x20000001 words: 8 times that wraps to 8
;; Every bad call must trap that call with a clear error.
(module
  (import "fleet" "least" (func $least (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 8192) "\07\00\00\00\00\00\00\00")
  (data (i32.const 8256) "\05\00\00\00\00\00\00\00" "\02\00\00\00\00\00\00\00" "\09\00\00\00\00\00\00\00")
  (data (i32.const 48000) "\02\00\00\00" "m?" "\00\00\00\00")
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  (func (export "fleet_place") (param $ptr i32) (param i32) (result i64)
    (local $case i32) (local $slot i32)
    (local.set $case (i32.load8_u (i32.add (local.get $ptr) (i32.const 4))))
    (local.set $slot
      (if (result i32) (i32.eq (local.get $case) (i32.const 0x31))
        (then (call $least (i32.const 8192) (i32.const 1) (i32.const 0xfffffff8) (i32.const 2)))
      (else (if (result i32) (i32.eq (local.get $case) (i32.const 0x32))
        (then (call $least (i32.const 8192) (i32.const 1) (i32.const 8256) (i32.const -1)))
      (else (if (result i32) (i32.eq (local.get $case) (i32.const 0x33))
        (then (call $least (i32.const 0) (i32.const 0x20000000) (i32.const 8256) (i32.const 3)))
      (else (if (result i32) (i32.eq (local.get $case) (i32.const 0x34))
        (then (call $least (i32.const 8192) (i32.const 0x20000001) (i32.const 8256) (i32.const 3)))
      (else (call $least (i32.const 8192) (i32.const 1) (i32.const 8256) (i32.const 3)))))))))))
    ;; machine "m" followed by the digit slot+1
    (i32.store8 (i32.const 48005) (i32.add (local.get $slot) (i32.const 0x31)))
    (i64.or (i64.shl (i64.const 48000) (i64.const 32)) (i64.const 10))))
