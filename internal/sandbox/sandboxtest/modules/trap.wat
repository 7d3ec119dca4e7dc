;; trap: executes unreachable at once.
(module
  (func (export "_start")
    unreachable)
)
