package wasm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

// FuzzPrepare feeds arbitrary bytes to Prepare, with their true digest or
// a wrong one: it must not panic, and it returns nil or a *ward.Error with
// code invalid_module or invalid_argument. Accepted modules must run
// without a platform error.
func FuzzPrepare(f *testing.F) {
	for _, name := range sandboxtest.ModuleNames() {
		f.Add(sandboxtest.Module(name), false)
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"), false)
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01"), false)
	f.Add([]byte("not wasm"), true)
	f.Add([]byte{}, false)
	sb, err := New(context.Background(), Options{MaxMemoryMB: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = sb.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, code []byte, wrongDigest bool) {
		a := sandboxtest.ArtifactOf(code)
		if wrongDigest {
			a.Digest = sandboxtest.ArtifactOf(append([]byte("x"), code...)).Digest
		}
		err := sb.Prepare(t.Context(), a)
		if err != nil {
			var we *ward.Error
			if !errors.As(err, &we) || (we.Code != ward.CodeInvalidModule && we.Code != ward.CodeInvalidArgument) {
				t.Fatalf("Prepare: %v (%T), want a *ward.Error with code invalid_module or invalid_argument", err, err)
			}
			if wrongDigest && we.Code != ward.CodeInvalidArgument {
				t.Fatalf("Prepare with a wrong digest: code %q, want invalid_argument", we.Code)
			}
			return
		}
		if wrongDigest {
			t.Fatal("Prepare accepted a wrong digest")
		}
		// Whatever was accepted runs, briefly, and ends with an outcome.
		sp := &sandbox.Spec{Digest: a.Digest, MemoryMB: 16, Timeout: 50 * time.Millisecond}
		if _, err := sb.Run(t.Context(), sp); err != nil {
			t.Fatalf("Run of an accepted module: %v", err)
		}
	})
}
