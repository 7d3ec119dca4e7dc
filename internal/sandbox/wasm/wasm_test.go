package wasm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

// newSandbox returns a Sandbox closed when t ends.
func newSandbox(t testing.TB, opts Options) *Sandbox {
	t.Helper()
	sb, err := New(t.Context(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sb
}

func TestConformance(t *testing.T) {
	t.Parallel()
	sandboxtest.Run(t, newSandbox(t, Options{}), sandboxtest.WasmModules(t))
}

// prepared returns a Sandbox with the named WAT modules prepared, and their
// artifacts by name.
func prepared(t *testing.T, opts Options, names ...string) (*Sandbox, map[string]sandbox.Artifact) {
	t.Helper()
	sb := newSandbox(t, opts)
	arts := map[string]sandbox.Artifact{}
	for _, name := range names {
		a := sandboxtest.ArtifactOf(sandboxtest.Module(name))
		if err := sb.Prepare(t.Context(), a); err != nil {
			t.Fatalf("Prepare(%s): %v", name, err)
		}
		arts[name] = a
	}
	return sb, arts
}

func specFor(a sandbox.Artifact) *sandbox.Spec {
	return &sandbox.Spec{Digest: a.Digest, MemoryMB: 64, Timeout: time.Minute}
}

// wantCode fails t unless err is a *ward.Error with code.
func wantCode(t *testing.T, err error, code ward.Code) {
	t.Helper()
	var we *ward.Error
	if !errors.As(err, &we) || we.Code != code {
		t.Fatalf("err = %v (%T), want a *ward.Error with code %q", err, err, code)
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	for _, mb := range []int{-1, ward.MaxMemoryMB + 1} {
		sb, err := New(t.Context(), Options{MaxMemoryMB: mb})
		if err == nil {
			_ = sb.Close(t.Context())
		}
		wantCode(t, err, ward.CodeInvalidArgument)
	}
	sb := newSandbox(t, Options{MaxMemoryMB: 100})
	if c := sb.Capabilities(); c.MaxMemMB != 100 || c.Network || c.Runtime != ward.RuntimeWasm {
		t.Errorf("Capabilities() = %+v, want wasm, no network, MaxMemMB 100", c)
	}
	if c := newSandbox(t, Options{}).Capabilities(); c.MaxMemMB != ward.MaxMemoryMB {
		t.Errorf("default MaxMemMB = %d, want %d", c.MaxMemMB, ward.MaxMemoryMB)
	}
}

func TestPrepareErrors(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, Options{MaxMemoryMB: 16})
	echo := sandboxtest.Module("echo")
	withDigest := func(code []byte) sandbox.Artifact { return sandboxtest.ArtifactOf(code) }
	version2 := append([]byte("\x00asm\x02\x00\x00\x00"), echo[8:]...)
	component := append([]byte("\x00asm\x0d\x00\x01\x00"), echo[8:]...)
	cases := []struct {
		name    string
		a       sandbox.Artifact
		code    ward.Code
		message string // a substring of the error
	}{
		{"empty digest", sandbox.Artifact{Code: echo}, ward.CodeInvalidArgument, "digest"},
		{"no algorithm", sandbox.Artifact{Digest: withDigest(echo).Digest[7:], Code: echo}, ward.CodeInvalidArgument, "digest"},
		{"wrong algorithm", sandbox.Artifact{Digest: "sha512:" + withDigest(echo).Digest[7:], Code: echo}, ward.CodeInvalidArgument, "digest"},
		{"uppercase hex", sandbox.Artifact{Digest: strings.ToUpper(withDigest(echo).Digest), Code: echo}, ward.CodeInvalidArgument, "digest"},
		{"short hex", sandbox.Artifact{Digest: withDigest(echo).Digest[:70], Code: echo}, ward.CodeInvalidArgument, "digest"},
		{"digest of other code", sandbox.Artifact{Digest: withDigest([]byte("other")).Digest, Code: echo}, ward.CodeInvalidArgument, "does not match"},
		{"empty code", withDigest(nil), ward.CodeInvalidModule, "not a WebAssembly binary"},
		{"text", withDigest([]byte("#!/bin/sh\necho hi\n")), ward.CodeInvalidModule, "not a WebAssembly binary"},
		{"wat source", withDigest([]byte("(module)")), ward.CodeInvalidModule, "not a WebAssembly binary"},
		{"version 2", withDigest(version2), ward.CodeInvalidModule, "version"},
		{"component", withDigest(component), ward.CodeInvalidModule, "version"},
		{"header only", withDigest(echo[:8]), ward.CodeInvalidModule, "_start"},
		{"truncated", withDigest(echo[:len(echo)-5]), ward.CodeInvalidModule, "invalid module"},
		{"garbage after header", withDigest(append(echo[:8:8], bytes.Repeat([]byte{0xff}, 64<<10)...)), ward.CodeInvalidModule, "invalid module"},
		{"no _start", withDigest(sandboxtest.Module("nostart")), ward.CodeInvalidModule, "_start"},
		{"foreign import", withDigest(sandboxtest.Module("badimport")), ward.CodeInvalidModule, `"env"."host_call"`},
		{"initial memory over the maximum", withDigest(sandboxtest.Module("bigmem")), ward.CodeInvalidModule, "exceeds the sandbox maximum"},
		{"hidden initial memory over the maximum", withDigest(sandboxtest.Module("hiddenmem")), ward.CodeInvalidModule, "exceeds the sandbox maximum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sb.Prepare(t.Context(), tc.a)
			wantCode(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not mention %q", err, tc.message)
			}
			if len(err.Error()) > 2*maxMessage {
				t.Errorf("error is %d bytes; messages must stay short", len(err.Error()))
			}
			sp := specFor(tc.a)
			sp.MemoryMB = 16
			_, err = sb.Run(t.Context(), sp)
			wantCode(t, err, ward.CodeNotFound) // nothing was cached
		})
	}
}

func TestPrepareImportChecks(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, Options{})
	// fd_write takes four i32 and returns one; importOneFunc declares
	// (i32) -> ().
	cases := []struct {
		name, module, field string
		message             string
	}{
		{"wrong signature", "wasi_snapshot_preview1", "fd_write", "wrong signature"},
		{"unknown WASI function", "wasi_snapshot_preview1", "sock_magic", `"sock_magic"`},
		{"unknown module", "wasi_unstable", "fd_write", `"wasi_unstable"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sb.Prepare(t.Context(), sandboxtest.ArtifactOf(importOneFunc(tc.module, tc.field)))
			wantCode(t, err, ward.CodeInvalidModule)
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not mention %q", err, tc.message)
			}
		})
	}
}

// importOneFunc assembles a command that imports module.field as a
// function of type (i32) -> () and exports an empty _start.
func importOneFunc(module, field string) []byte {
	section := func(id byte, body []byte) []byte {
		return append([]byte{id, byte(len(body))}, body...)
	}
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	types := []byte{0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00} // (i32)->(), ()->()
	imports := append([]byte{0x01}, name(module)...)
	imports = append(append(imports, name(field)...), 0x00, 0x00) // func of type 0
	funcs := []byte{0x01, 0x01}                                   // one function of type 1
	exports := append(append([]byte{0x01}, name("_start")...), 0x00, 0x01)
	code := []byte{0x01, 0x02, 0x00, 0x0b} // one body: no locals, end
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = append(out, section(1, types)...)
	out = append(out, section(2, imports)...)
	out = append(out, section(3, funcs)...)
	out = append(out, section(7, exports)...)
	return append(out, section(10, code)...)
}

func TestPrepareCached(t *testing.T) {
	t.Parallel()
	sb, arts := prepared(t, Options{}, "echo")
	// A cached digest is not compiled or hashed again.
	if err := sb.Prepare(t.Context(), sandbox.Artifact{Digest: arts["echo"].Digest}); err != nil {
		t.Fatalf("Prepare of a cached digest: %v", err)
	}
	// A malformed digest is refused even so.
	wantCode(t, sb.Prepare(t.Context(), sandbox.Artifact{Digest: "sha256:xyz"}), ward.CodeInvalidArgument)
}

func TestPrepareConcurrent(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, Options{})
	a := sandboxtest.ArtifactOf(sandboxtest.Module("echo"))
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() { errs <- sb.Prepare(t.Context(), a) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("Prepare: %v", err)
		}
	}
	sp := specFor(a)
	sp.Stdin = []byte("ok")
	out, err := sb.Run(t.Context(), sp)
	if err != nil || string(out.Stdout) != "ok" {
		t.Fatalf("Run = %q, %v; want ok", out.Stdout, err)
	}
}

func TestRunSpecErrors(t *testing.T) {
	t.Parallel()
	sb, arts := prepared(t, Options{MaxMemoryMB: 128}, "echo")
	echo := arts["echo"]
	cases := []struct {
		name  string
		edit  func(*sandbox.Spec)
		code  ward.Code
		field string
	}{
		{"memory zero", func(s *sandbox.Spec) { s.MemoryMB = 0 }, ward.CodeInvalidArgument, "memory_mb"},
		{"memory over the maximum", func(s *sandbox.Spec) { s.MemoryMB = 129 }, ward.CodeInvalidArgument, "memory_mb"},
		{"no timeout", func(s *sandbox.Spec) { s.Timeout = 0 }, ward.CodeInvalidArgument, "timeout"},
		{"negative timeout", func(s *sandbox.Spec) { s.Timeout = -time.Second }, ward.CodeInvalidArgument, "timeout"},
		{"negative stdout limit", func(s *sandbox.Spec) { s.StdoutLimit = -1 }, ward.CodeInvalidArgument, "stdout_limit"},
		{"negative stderr limit", func(s *sandbox.Spec) { s.StderrLimit = -1 }, ward.CodeInvalidArgument, "stderr_limit"},
		{"negative tmp limit", func(s *sandbox.Spec) { s.TmpLimit = -1 }, ward.CodeInvalidArgument, "tmp_limit"},
		{"env name with =", func(s *sandbox.Spec) { s.Env = map[string]string{"A=B": "c"} }, ward.CodeInvalidArgument, "env"},
		{"empty env name", func(s *sandbox.Spec) { s.Env = map[string]string{"": "c"} }, ward.CodeInvalidArgument, "env"},
		{"env value with NUL", func(s *sandbox.Spec) { s.Env = map[string]string{"A": "b\x00c"} }, ward.CodeInvalidArgument, "env"},
		{"absolute file path", func(s *sandbox.Spec) { s.Files = map[string][]byte{"/etc/passwd": nil} }, ward.CodeInvalidArgument, "files"},
		{"escaping file path", func(s *sandbox.Spec) { s.Files = map[string][]byte{"../x": nil} }, ward.CodeInvalidArgument, "files"},
		{"file and directory clash", func(s *sandbox.Spec) {
			s.Files = map[string][]byte{"secrets": nil, "secrets/a": nil}
		}, ward.CodeInvalidArgument, "files"},
		{"not prepared", func(s *sandbox.Spec) { s.Digest = sandboxtest.ArtifactOf([]byte("x")).Digest }, ward.CodeNotFound, ""},
		{"no digest", func(s *sandbox.Spec) { s.Digest = "" }, ward.CodeNotFound, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := specFor(echo)
			tc.edit(sp)
			_, err := sb.Run(t.Context(), sp)
			wantCode(t, err, tc.code)
			var we *ward.Error
			if errors.As(err, &we) && we.Field != tc.field {
				t.Errorf("error field = %q, want %q", we.Field, tc.field)
			}
		})
	}
	_, err := sb.Run(t.Context(), nil)
	wantCode(t, err, ward.CodeInvalidArgument)
}

func TestInitialMemory(t *testing.T) {
	t.Parallel()
	sb, arts := prepared(t, Options{}, "bigmem", "hiddenmem")
	for _, name := range []string{"bigmem", "hiddenmem"} {
		for _, tc := range []struct {
			memoryMB int
			code     ward.Code
		}{{16, ward.CodeMemoryLimit}, {31, ward.CodeMemoryLimit}, {32, ""}, {64, ""}} {
			sp := specFor(arts[name])
			sp.MemoryMB = tc.memoryMB
			out, err := sb.Run(t.Context(), sp)
			if err != nil {
				t.Fatalf("%s at %d MiB: %v", name, tc.memoryMB, err)
			}
			if out.Code != tc.code {
				t.Errorf("%s at %d MiB: code %q (%s), want %q", name, tc.memoryMB, out.Code, out.Message, tc.code)
			}
			if tc.code == "" && out.Usage.PeakMemoryBytes != 32<<20 {
				t.Errorf("%s at %d MiB: PeakMemoryBytes = %d, want 32 MiB", name, tc.memoryMB, out.Usage.PeakMemoryBytes)
			}
		}
	}
}

func TestDeclarationShapes(t *testing.T) {
	t.Parallel()
	// checkModule must pass what toolchains emit, and wazero run it; a
	// table without a maximum must not grow (tablegrow traps if it does).
	sb, arts := prepared(t, Options{}, "shapes", "tablegrow")
	for name, a := range arts {
		out, err := sb.Run(t.Context(), specFor(a))
		if err != nil || !out.Succeeded() {
			t.Errorf("Run(%s) = %q %q, %v; want success", name, out.Code, out.Message, err)
		}
	}
}

func TestOutcomeDetails(t *testing.T) {
	t.Parallel()
	// A clock that moves a second at every reading: the run's duration
	// must come from it.
	var ticks atomic.Int64
	clock := func() time.Time { return time.Unix(ticks.Add(1), 0) }
	sb, arts := prepared(t, Options{Now: clock}, "echo", "trap", "recurse", "oob", "exit3", "membomb")
	cases := []struct {
		name     string
		memoryMB int
		code     ward.Code
		message  string
		exit     *int
	}{
		{"echo", 64, "", "", new(0)},
		{"trap", 64, ward.CodeTrap, "wasm error: unreachable", nil},
		{"recurse", 64, ward.CodeTrap, "stack overflow", nil},
		{"oob", 64, ward.CodeTrap, "out of bounds memory access", nil},
		{"exit3", 64, ward.CodeExitStatus, "exited with status 3", new(3)},
		{"membomb", 8, ward.CodeMemoryLimit, "memory limit of 8 MiB", nil},
	}
	for _, tc := range cases {
		sp := specFor(arts[tc.name])
		sp.MemoryMB = tc.memoryMB
		out, err := sb.Run(t.Context(), sp)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if out.Code != tc.code || out.Message != tc.message && !strings.Contains(out.Message, tc.message) {
			t.Errorf("%s: outcome %q %q, want %q containing %q", tc.name, out.Code, out.Message, tc.code, tc.message)
		}
		if (out.ExitCode == nil) != (tc.exit == nil) || out.ExitCode != nil && *out.ExitCode != *tc.exit {
			t.Errorf("%s: ExitCode = %v, want %v", tc.name, out.ExitCode, tc.exit)
		}
		if out.Usage.DurationMs < 1000 || out.Usage.CPUMs != out.Usage.DurationMs {
			t.Errorf("%s: Usage = %+v, want DurationMs from the injected clock (≥ 1000) and CPUMs equal to it", tc.name, out.Usage)
		}
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	sb, err := New(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	loop := sandboxtest.ArtifactOf(sandboxtest.Module("loop"))
	if err := sb.Prepare(t.Context(), loop); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		_, err := sb.Run(t.Context(), specFor(loop))
		done <- err
	}()
	<-started
	if err := sb.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close ends a run in flight, or the run starts after Close; either
	// way it reports the sandbox closed.
	wantCode(t, <-done, ward.CodeUnavailable)
	if err := sb.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = sb.Run(t.Context(), specFor(loop))
	wantCode(t, err, ward.CodeUnavailable)
	wantCode(t, sb.Prepare(t.Context(), loop), ward.CodeUnavailable)
}

func TestCacheDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	echo := sandboxtest.ArtifactOf(sandboxtest.Module("echo"))
	for i := range 2 { // the second sandbox finds the compiled code on disk
		sb := newSandbox(t, Options{CacheDir: dir})
		if err := sb.Prepare(t.Context(), echo); err != nil {
			t.Fatalf("sandbox %d: Prepare: %v", i, err)
		}
		sp := specFor(echo)
		sp.Stdin = []byte("cached")
		if out, err := sb.Run(t.Context(), sp); err != nil || string(out.Stdout) != "cached" {
			t.Fatalf("sandbox %d: Run = %q, %v", i, out.Stdout, err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Fatalf("sandbox %d: cache dir holds %d entries (%v), want compiled code", i, len(entries), err)
		}
	}
	// A cache dir that cannot be created is an error.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if sb, err := New(t.Context(), Options{CacheDir: filepath.Join(file, "sub")}); err == nil {
		_ = sb.Close(t.Context())
		t.Error("New with a cache dir below a file succeeded")
	}
}

func TestSleepEndsWithRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		sleeper(ctx)(int64(time.Hour))
		close(done)
	}()
	cancel()
	<-done // a sleeping guest wakes when its run ends
	sleeper(t.Context())(int64(time.Microsecond))
}

func TestCompiledModulesAreBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb, err := New(ctx, Options{MaxModules: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	arts := make([]sandbox.Artifact, 3)
	for i, name := range []string{"echo", "exit3", "trap"} {
		arts[i] = sandboxtest.ArtifactOf(sandboxtest.Module(name))
	}
	run := func(a sandbox.Artifact) error {
		_, err := sb.Run(ctx, &sandbox.Spec{Digest: a.Digest, MemoryMB: 16, Timeout: time.Second})
		return err
	}
	for _, a := range arts[:2] {
		if err := sb.Prepare(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// echo was run last, so preparing a third module evicts exit3.
	if err := run(arts[0]); err != nil {
		t.Fatal(err)
	}
	if err := sb.Prepare(ctx, arts[2]); err != nil {
		t.Fatal(err)
	}
	if err := run(arts[1]); ward.CodeOf(err) != ward.CodeNotFound {
		t.Fatalf("evicted module ran: %v", err)
	}
	for _, a := range []sandbox.Artifact{arts[0], arts[2]} {
		if err := run(a); err != nil {
			t.Fatalf("kept module: %v", err)
		}
	}
	// Prepared again, it runs again.
	if err := sb.Prepare(ctx, arts[1]); err != nil {
		t.Fatal(err)
	}
	if err := run(arts[1]); err != nil {
		t.Fatal(err)
	}
}
