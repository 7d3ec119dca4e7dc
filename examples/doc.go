// Package examples holds example ward functions, each a Go main package in
// its own directory, built to WebAssembly with GOOS=wasip1 GOARCH=wasm:
// hello (a greeting), wordcount (word frequencies), thumbnail (image
// resizing), vault (sealed payloads and secrets) and fraud (order scoring on
// a payload cut down to its amounts, with the customer id tokenized). The
// tests here build every example and run those that need no secrets under
// wazero the way a ward sandbox does (vault runs end to end in the CLI's
// scripts). See README.md for deploying and calling them.
package examples
