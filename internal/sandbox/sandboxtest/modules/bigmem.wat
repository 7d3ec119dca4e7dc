;; bigmem: declares 32 MiB of initial memory and exits 0.
(module
  (memory (export "memory") 512)
  (func (export "_start"))
)
