;; fleet_place counts down from 50 million before it answers m1: well over
;; a millisecond of work on any machine, well under a second on one that is
;; not a thousand times oversubscribed (TestRetryAfterTimeLimit).
(module
  (memory (export "memory") 1)
  (data (i32.const 4096) "\02\00\00\00" "m1" "\00\00\00\00")
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  ;; 4096 << 32 | 10: the decision above, 10 bytes
  (func (export "fleet_place") (param i32 i32) (result i64)
    (local $n i32)
    (local.set $n (i32.const 50000000))
    (loop $more
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $more (i32.ne (local.get $n) (i32.const 0))))
    (i64.const 17592186044426)))
