// Package examples holds example ward functions, each a Go main package in
// its own directory, built to WebAssembly with GOOS=wasip1 GOARCH=wasm:
// hello (a greeting), wordcount (word frequencies), thumbnail (image
// resizing), vault (sealed payloads and secrets) and fraud (order scoring on
// a payload cut down to its amounts, with the customer id tokenized). The
// tests here build every example and run it under wazero the way a ward
// sandbox does. See README.md for deploying and calling them.
package examples
