;; tablegrow: tries to grow a table without a declared maximum by 10^9
;; elements (8 GB of host memory), then by one; traps if either succeeds,
;; exits 0 if both are refused.
(module
  (table $t 1 funcref)
  (func (export "_start")
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 1000000000)) (i32.const -1))
      (then unreachable))
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 1)) (i32.const -1))
      (then unreachable)))
)
