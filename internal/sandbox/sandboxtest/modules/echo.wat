;; echo: the trivial task. Copies stdin to stdout and exits 0; exits 1 if
;; a read or write fails. One page of memory, never grown: the benchmark
;; module of the platform.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  ;; 0: read iovec, 8: bytes read, 16: write iovec, 24: bytes written,
  ;; 64..65536: buffer.
  (memory (export "memory") 1 1)
  (func (export "_start")
    (local $n i32)
    (local $off i32)
    (loop $read
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 65472))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
        (then (call $proc_exit (i32.const 1))))
      (local.set $n (i32.load (i32.const 8)))
      (if (i32.eqz (local.get $n)) (then (return)))
      (local.set $off (i32.const 64))
      (loop $write
        (i32.store (i32.const 16) (local.get $off))
        (i32.store (i32.const 20) (local.get $n))
        (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))
          (then (call $proc_exit (i32.const 1))))
        (local.set $off (i32.add (local.get $off) (i32.load (i32.const 24))))
        (local.set $n (i32.sub (local.get $n) (i32.load (i32.const 24))))
        (br_if $write (i32.gt_u (local.get $n) (i32.const 0))))
      (br $read)))
)
