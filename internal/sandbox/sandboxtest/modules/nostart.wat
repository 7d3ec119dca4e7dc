;; nostart: a valid module that is not a WASI command (no _start).
(module
  (func (export "run")))
