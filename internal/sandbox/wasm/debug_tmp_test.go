package wasm

import (
	"context"
	"os"
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

func FuzzDebugTmp(f *testing.F) {
	for _, name := range sandboxtest.ModuleNames() {
		f.Add(sandboxtest.Module(name))
	}
	sb, _ := New(context.Background(), Options{MaxMemoryMB: 64})
	f.Fuzz(func(t *testing.T, code []byte) {
		os.WriteFile(fmt.Sprintf("/tmp/fuzzlast-%d", os.Getpid()), code, 0o644)
		a := sandboxtest.ArtifactOf(code)
		os.WriteFile(fmt.Sprintf("/tmp/fuzzstage-%d", os.Getpid()), []byte("prepare"), 0o644)
		if err := sb.Prepare(t.Context(), a); err != nil {
			return
		}
		os.WriteFile(fmt.Sprintf("/tmp/fuzzstage-%d", os.Getpid()), []byte("run"), 0o644)
		sb.Run(t.Context(), &sandbox.Spec{Digest: a.Digest, MemoryMB: 16, Timeout: 50 * time.Millisecond})
		os.WriteFile(fmt.Sprintf("/tmp/fuzzstage-%d", os.Getpid()), []byte("done"), 0o644)
	})
}
