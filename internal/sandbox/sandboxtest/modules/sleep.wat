;; sleep: sleeps 500 ms on the monotonic clock (poll_oneoff with one
;; relative clock subscription), then writes "slept\n" to stdout and exits
;; 0; exits 1 if the poll or the write fails. A task that is sure to be
;; running for a while: for drain tests.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  ;; 0..48: the subscription (userdata 0, tag 0 = clock; at 16 the clock
  ;; id 1 = monotonic, at 24 the timeout in ns, at 32 the precision, at 40
  ;; the flags 0 = relative), 64..96: the event, 96: events written,
  ;; 104: write iovec, 112: bytes written, 128: "slept\n".
  (memory (export "memory") 1 1)
  (data (i32.const 128) "slept\n")
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 500000000))
    (if (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 96))
      (then (call $proc_exit (i32.const 1))))
    (i32.store (i32.const 104) (i32.const 128))
    (i32.store (i32.const 108) (i32.const 6))
    (if (call $fd_write (i32.const 1) (i32.const 104) (i32.const 1) (i32.const 112))
      (then (call $proc_exit (i32.const 1))))))
