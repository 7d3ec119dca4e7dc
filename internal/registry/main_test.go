package registry

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a pull leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
