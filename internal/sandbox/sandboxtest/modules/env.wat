;; env: writes its environment to stdout, one NAME=value per line, and
;; exits 0; exits 1 if it has more than 1000 variables or 60000 bytes.
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  ;; 0: count, 4: size, 8: iovec, 16: bytes written, 64..4064: pointers,
  ;; 4096..64096: strings.
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32)
    (local $size i32)
    (if (call $environ_sizes_get (i32.const 0) (i32.const 4))
      (then (call $proc_exit (i32.const 1))))
    (local.set $size (i32.load (i32.const 4)))
    (if (i32.or (i32.gt_u (i32.load (i32.const 0)) (i32.const 1000))
                (i32.gt_u (local.get $size) (i32.const 60000)))
      (then (call $proc_exit (i32.const 1))))
    (if (call $environ_get (i32.const 64) (i32.const 4096))
      (then (call $proc_exit (i32.const 1))))
    ;; Turn each terminating NUL into a newline.
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $i) (local.get $size)))
        (if (i32.eqz (i32.load8_u (i32.add (i32.const 4096) (local.get $i))))
          (then (i32.store8 (i32.add (i32.const 4096) (local.get $i)) (i32.const 10))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.store (i32.const 8) (i32.const 4096))
    (i32.store (i32.const 12) (local.get $size))
    (if (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16))
      (then (call $proc_exit (i32.const 1)))))
)
