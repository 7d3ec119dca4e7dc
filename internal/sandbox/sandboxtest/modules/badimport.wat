;; badimport: a command importing a function ward does not provide.
(module
  (import "env" "host_call" (func $host_call))
  (func (export "_start")
    (call $host_call)))
