// Package sealhook connects package task to package task/unseal, so that
// only task code that imports task/unseal links the sealing code (HPKE with
// ML-KEM, about 1 MiB of WebAssembly and a slower start for every task).
package sealhook

// Open opens a sealed payload with the function's private key (PEM) as the
// given project and function. It is nil until task/unseal is linked in.
var Open func(keyPEM []byte, project, function string, envelope []byte) ([]byte, error)
