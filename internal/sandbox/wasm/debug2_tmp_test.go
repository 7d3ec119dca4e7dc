package wasm

import (
	"os"
	"testing"
	"time"

	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

func TestDebugHang(t *testing.T) {
	code, _ := os.ReadFile("/tmp/hang.wasm")
	sb := newSandbox(t, Options{MaxMemoryMB: 64})
	start := time.Now()
	err := sb.Prepare(t.Context(), sandboxtest.ArtifactOf(code))
	t.Log(err, time.Since(start))
}
