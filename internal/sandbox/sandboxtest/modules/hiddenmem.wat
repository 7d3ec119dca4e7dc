;; hiddenmem: declares 32 MiB of initial memory without exporting it, and
;; exits 0.
(module
  (memory 512)
  (func (export "_start"))
)
