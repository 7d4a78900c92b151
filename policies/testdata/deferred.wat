;; Answers with deferred choices (docs/abi.md, ABI version 2): the unit
;; "K.service", K a letter, gets record K below (A is 0), a valid choice or
;; one of the ways a guest can get it wrong. fleetd must make the valid ones
;; and refuse the rest without reading outside the guest's memory
;; (TestDeferredChoice).
(module
  (memory (export "memory") 1)
  (func (export "fleet_abi_version") (result i32) (i32.const 2))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))
  ;; record K is at 2048 + 32K: K is the first byte of the unit's name
  ;; (after its u32 length), minus 'A'
  (func (export "fleet_place") (param $p i32) (param $n i32) (result i64)
    (i64.or
      (i64.shl
        (i64.extend_i32_u
          (i32.add (i32.const 2048)
            (i32.mul (i32.sub (i32.load8_u offset=4 (local.get $p)) (i32.const 65)) (i32.const 32))))
        (i64.const 32))
      (i64.const 24)))
  ;; 0 (A): a choice: the smallest of keys 5 3 9 is slot 1, m2
  (data (i32.const 2048) "\ff\ff\ff\ff\00\10\00\00\01\00\00\00\40\10\00\00\03\00\00\00\80\10\00\00")
  ;; 1 (B): an empty set: no machine
  (data (i32.const 2080) "\ff\ff\ff\ff\08\10\00\00\01\00\00\00\40\10\00\00\03\00\00\00\80\10\00\00")
  ;; 2 (C): a set beyond the memory's end
  (data (i32.const 2112) "\ff\ff\ff\ff\f8\ff\00\00\04\00\00\00\40\10\00\00\03\00\00\00\80\10\00\00")
  ;; 3 (D): a set not 8-byte aligned
  (data (i32.const 2144) "\ff\ff\ff\ff\01\10\00\00\01\00\00\00\40\10\00\00\03\00\00\00\80\10\00\00")
  ;; 4 (E): an ID beyond the memory's end
  (data (i32.const 2176) "\ff\ff\ff\ff\00\10\00\00\01\00\00\00\40\10\00\00\03\00\00\00\30\11\00\00")
  ;; 5 (F): an ID of 5000 bytes
  (data (i32.const 2208) "\ff\ff\ff\ff\00\10\00\00\01\00\00\00\40\10\00\00\03\00\00\00\80\11\00\00")
  ;; 6 (G): an ID of no live machine
  (data (i32.const 2240) "\ff\ff\ff\ff\00\10\00\00\01\00\00\00\40\10\00\00\03\00\00\00\d0\11\00\00")
  ;; 7 (H): a table of IDs beyond the memory's end
  (data (i32.const 2272) "\ff\ff\ff\ff\00\10\00\00\01\00\00\00\40\10\00\00\03\00\00\00\f8\ff\00\00")
  ;; 8 (I): a set of no words: no machine
  (data (i32.const 2304) "\ff\ff\ff\ff\00\10\00\00\00\00\00\00\40\10\00\00\03\00\00\00\80\10\00\00")
  ;; 9 (J): 2^30 keys
  (data (i32.const 2336) "\ff\ff\ff\ff\00\10\00\00\01\00\00\00\40\10\00\00\00\00\00\40\80\10\00\00")
  ;; 10 (K): an ID of no bytes
  (data (i32.const 2368) "\ff\ff\ff\ff\00\10\00\00\01\00\00\00\40\10\00\00\03\00\00\00\20\12\00\00")
  ;; sets: slots 0-2, and none
  (data (i32.const 4096) "\07\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00")
  ;; keys of slots 0-2
  (data (i32.const 4160) "\05\00\00\00\00\00\00\00\03\00\00\00\00\00\00\00\09\00\00\00\00\00\00\00")
  ;; IDs, and tables of where each slot's ID is
  (data (i32.const 4352) "m1\00\00\00\00\00\00m2\00\00\00\00\00\00m3")
  (data (i32.const 4600) "ghost")
  (data (i32.const 4224) "\02\00\00\00\00\11\00\00\02\00\00\00\08\11\00\00\02\00\00\00\10\11\00\00")
  (data (i32.const 4400) "\02\00\00\00\00\11\00\00\02\00\00\00\00\00\ff\ff\02\00\00\00\10\11\00\00")
  (data (i32.const 4480) "\02\00\00\00\00\11\00\00\88\13\00\00\08\11\00\00\02\00\00\00\10\11\00\00")
  (data (i32.const 4560) "\02\00\00\00\00\11\00\00\05\00\00\00\f8\11\00\00\02\00\00\00\10\11\00\00")
  (data (i32.const 4640) "\02\00\00\00\00\11\00\00\00\00\00\00\08\11\00\00\02\00\00\00\10\11\00\00"))
