;; Tries to read files. fd_prestat_get on fds 3..7 (where a mounted
;; directory would be), path_open and path_filestat_get of "etc/passwd"
;; under fds 0..7, fd_read of 64 bytes from fds 0..5. It then answers "no
;; machine fits" with one reason, from machine "probe", whose bytes are what
;; it learned, as little-endian u32s:
;;   5 x fd_prestat_get errno (fds 3..7)
;;   8 x (path_open errno, opened fd or 0xffffffff if none) (fds 0..7)
;;   8 x path_filestat_get errno (fds 0..7)
;;   6 x (fd_read errno, bytes read or 0xffffffff) (fds 0..5)
;; and then the first 16 bytes of its read buffer (zeros if nothing came).
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $stat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "etc/passwd")
  ;; the answer: machine "", 1 reason: "probe", then the reason's length and bytes
  (data (i32.const 48000) "\00\00\00\00" "\01\00\00\00" "\05\00\00\00" "probe")
  (func (export "fleet_abi_version") (result i32) (i32.const 1))
  (func (export "fleet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "fleet_apply") (param i32 i32) (result i32) (i32.const 0))

  ;; answer packs the decision at 48000 whose reason is the n bytes at 48021.
  (func $answer (param $n i32) (result i64)
    (i32.store (i32.const 48017) (local.get $n))
    (i64.or (i64.shl (i64.const 48000) (i64.const 32)) (i64.extend_i32_u (i32.add (local.get $n) (i32.const 21)))))

  (func (export "fleet_place") (param i32 i32) (result i64)
    (local $fd i32) (local $out i32)
    (local.set $out (i32.const 48021))
    ;; fd_prestat_get(fd, 8192)
    (local.set $fd (i32.const 3))
    (loop $next
      (i32.store (local.get $out) (call $prestat (local.get $fd) (i32.const 8192)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $next (i32.le_u (local.get $fd) (i32.const 7))))
    ;; path_open(fd, 0, "etc/passwd", read rights, opened fd at 8200)
    (local.set $fd (i32.const 0))
    (loop $next
      (i32.store (i32.const 8200) (i32.const -1))
      (i32.store (local.get $out)
        (call $open (local.get $fd) (i32.const 0) (i32.const 4096) (i32.const 10) (i32.const 0)
          (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 8200)))
      (i32.store (i32.add (local.get $out) (i32.const 4)) (i32.load (i32.const 8200)))
      (local.set $out (i32.add (local.get $out) (i32.const 8)))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $next (i32.le_u (local.get $fd) (i32.const 7))))
    ;; path_filestat_get(fd, 0, "etc/passwd", stat at 8320)
    (local.set $fd (i32.const 0))
    (loop $next
      (i32.store (local.get $out)
        (call $stat (local.get $fd) (i32.const 0) (i32.const 4096) (i32.const 10) (i32.const 8320)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $next (i32.le_u (local.get $fd) (i32.const 7))))
    ;; fd_read(fd, one iovec at 8208 of 64 bytes at 8256, bytes read at 8216)
    (i32.store (i32.const 8208) (i32.const 8256))
    (i32.store (i32.const 8212) (i32.const 64))
    (local.set $fd (i32.const 0))
    (loop $next
      (i32.store (i32.const 8216) (i32.const -1))
      (i32.store (local.get $out)
        (call $read (local.get $fd) (i32.const 8208) (i32.const 1) (i32.const 8216)))
      (i32.store (i32.add (local.get $out) (i32.const 4)) (i32.load (i32.const 8216)))
      (local.set $out (i32.add (local.get $out) (i32.const 8)))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $next (i32.le_u (local.get $fd) (i32.const 5))))
    (i64.store (local.get $out) (i64.load (i32.const 8256)))
    (i64.store (i32.add (local.get $out) (i32.const 8)) (i64.load (i32.const 8264)))
    (local.set $out (i32.add (local.get $out) (i32.const 16)))
    (call $answer (i32.sub (local.get $out) (i32.const 48021)))))
