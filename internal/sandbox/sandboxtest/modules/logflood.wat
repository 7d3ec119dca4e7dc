;; logflood: reads stdin (up to 60000 bytes), then writes it to stderr
;; 1024 times, each copy as two writes split in the middle, and exits 0.
;; A value in stdin therefore reaches the log split across writes.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  ;; 0: iovec, 8: count, 16: second iovec, 1024..61024: stdin.
  (memory (export "memory") 1)
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (if (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8))
      (then (call $proc_exit (i32.const 1)))))
  (func (export "_start")
    (local $size i32)
    (local $half i32)
    (local $i i32)
    (block $eof
      (loop $read
        (br_if $eof (i32.ge_u (local.get $size) (i32.const 60000)))
        (i32.store (i32.const 0) (i32.add (i32.const 1024) (local.get $size)))
        (i32.store (i32.const 4) (i32.sub (i32.const 60000) (local.get $size)))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (br_if $eof (i32.eqz (i32.load (i32.const 8))))
        (local.set $size (i32.add (local.get $size) (i32.load (i32.const 8))))
        (br $read)))
    (local.set $half (i32.shr_u (local.get $size) (i32.const 1)))
    (block $done
      (loop $copies
        (br_if $done (i32.ge_u (local.get $i) (i32.const 1024)))
        (call $write (i32.const 1024) (local.get $half))
        (call $write (i32.add (i32.const 1024) (local.get $half))
                     (i32.sub (local.get $size) (local.get $half)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copies))))
)
