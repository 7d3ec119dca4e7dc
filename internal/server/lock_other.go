//go:build !unix

package server

// lockDataDir is a no-op where flock is not available: run one ward
// process per data directory.
func lockDataDir(string) (func(), error) { return func() {}, nil }
