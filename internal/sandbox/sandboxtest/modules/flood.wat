;; flood: writes 4 KiB blocks of "x" to stdout forever, ignoring errors.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  ;; 0: iovec, 8: bytes written, 64..4160: block.
  (memory (export "memory") 1)
  (func (export "_start")
    (memory.fill (i32.const 64) (i32.const 120) (i32.const 4096))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 4096))
    (loop $forever
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $forever)))
)
