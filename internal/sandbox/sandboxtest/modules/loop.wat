;; loop: never ends on its own.
(module
  (func (export "_start")
    (loop $forever (br $forever)))
)
