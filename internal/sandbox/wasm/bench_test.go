package wasm

import (
	"bytes"
	"testing"
	"time"

	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

// benchRun prepares code and returns a function running it once with
// stdin, checking that it succeeded with want on stdout.
func benchRun(b *testing.B, code []byte, stdin, want []byte) func() error {
	b.Helper()
	sb := newSandbox(b, Options{})
	a := sandboxtest.ArtifactOf(code)
	if err := sb.Prepare(b.Context(), a); err != nil {
		b.Fatalf("Prepare: %v", err)
	}
	spec := &sandbox.Spec{Digest: a.Digest, Stdin: stdin, MemoryMB: 64, Timeout: 30 * time.Second}
	return func() error {
		out, err := sb.Run(b.Context(), spec)
		if err != nil {
			return err
		}
		if !out.Succeeded() || !bytes.Equal(out.Stdout, want) {
			return &benchError{out}
		}
		return nil
	}
}

type benchError struct{ out sandbox.Outcome }

func (e *benchError) Error() string {
	return "unexpected outcome " + string(e.out.Code) + ": " + e.out.Message + "; stdout " + string(e.out.Stdout)
}

// reportTasks reports throughput next to ns/op.
func reportTasks(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkRunEcho measures the raw sandbox cost of the trivial task:
// instantiate the echo module, copy a small payload through it, close it.
func BenchmarkRunEcho(b *testing.B) {
	payload := []byte(`{"order":{"id":42,"items":["a","b"]}}`)
	b.Run("serial", func(b *testing.B) {
		run := benchRun(b, sandboxtest.Module("echo"), payload, payload)
		b.ReportAllocs()
		for b.Loop() {
			if err := run(); err != nil {
				b.Fatal(err)
			}
		}
		reportTasks(b)
	})
	b.Run("parallel", func(b *testing.B) {
		run := benchRun(b, sandboxtest.Module("echo"), payload, payload)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := run(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportTasks(b)
	})
}

// BenchmarkRunGoHello measures a Go (GOOS=wasip1) task that decodes a JSON
// payload and writes a greeting: the Go runtime's start-up dominates.
func BenchmarkRunGoHello(b *testing.B) {
	code := sandboxtest.GoModule(b, sandboxtest.GoHello)
	run := benchRun(b, code, []byte(`{"name":"ward"}`), []byte("{\"greeting\":\"hello, ward\"}\n"))
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := run(); err != nil {
				b.Fatal(err)
			}
		}
		reportTasks(b)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := run(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportTasks(b)
	})
}
