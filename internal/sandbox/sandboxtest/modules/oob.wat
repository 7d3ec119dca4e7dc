;; oob: loads from past the end of its one page of memory.
(module
  (memory 1)
  (func (export "_start")
    (drop (i32.load (i32.const 65536))))
)
