package gobuild

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

// requireGo skips the test when there is no go command to build with.
func requireGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("skipping: no go toolchain on PATH (%v)", err)
	}
}

// writeTree writes files (slash-separated paths relative to dir).
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const goMod = "module example.com/hello\n\ngo 1.22\n"

const embedMain = `package main

import (
	_ "embed"
	"os"
)

//go:embed msg.txt
var msg string

func main() { os.Stdout.WriteString(msg) }
`

// logRecorder is a logger writing text records into a buffer.
type logRecorder struct{ buf bytes.Buffer }

func (r *logRecorder) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&r.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (r *logRecorder) count(msg string) int { return strings.Count(r.buf.String(), `msg="`+msg+`"`) }

func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWasmCache(t *testing.T) {
	t.Parallel()
	requireGo(t)
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{"go.mod": goMod, "cmd/hello/main.go": embedMain, "cmd/hello/msg.txt": "first"})
	cache := filepath.Join(t.TempDir(), "cache")
	ctx := t.Context()
	var rec logRecorder
	opts := Options{Dir: filepath.Join(mod, "cmd", "hello"), CacheDir: cache, Logger: rec.logger()}

	first, err := Wasm(ctx, opts)
	if err != nil {
		t.Fatalf("first build: %v", err)
	}
	if !bytes.HasPrefix(first, wasmMagic) {
		t.Fatalf("output does not start with the wasm magic: % x", first[:min(8, len(first))])
	}
	if !bytes.Contains(first, []byte("first")) {
		t.Error("module does not contain the embedded text")
	}
	if rec.count("gobuild: cache miss") != 1 || rec.count("gobuild: built") != 1 {
		t.Fatalf("first call: want one miss and one build, log:\n%s", rec.buf.String())
	}
	entries := cacheEntries(t, cache)
	if len(entries) != 1 {
		t.Fatalf("cache entries = %v, want 1", entries)
	}
	if runtime.GOOS != "windows" {
		assertMode(t, cache, 0o700)
		assertMode(t, entries[0], 0o600)
	}

	second, err := Wasm(ctx, opts)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	if rec.count("gobuild: cache hit") != 1 || rec.count("gobuild: built") != 1 {
		t.Fatalf("second call: want a cache hit and no build, log:\n%s", rec.buf.String())
	}
	if !bytes.Equal(first, second) {
		t.Error("cached module differs from the built one")
	}

	// A changed non-Go file that the code embeds must miss the cache.
	writeTree(t, mod, map[string]string{"cmd/hello/msg.txt": "second"})
	third, err := Wasm(ctx, opts)
	if err != nil {
		t.Fatalf("third build: %v", err)
	}
	if rec.count("gobuild: built") != 2 {
		t.Fatalf("changed embed: want a rebuild, log:\n%s", rec.buf.String())
	}
	if !bytes.Contains(third, []byte("second")) {
		t.Error("rebuilt module does not contain the new text")
	}

	// So must a changed Go file.
	writeTree(t, mod, map[string]string{"cmd/hello/main.go": embedMain + "\nfunc unused() {}\n"})
	if _, err := Wasm(ctx, opts); err != nil {
		t.Fatalf("fourth build: %v", err)
	}
	if rec.count("gobuild: built") != 3 {
		t.Fatalf("changed source: want a rebuild, log:\n%s", rec.buf.String())
	}
	if n := len(cacheEntries(t, cache)); n != 3 {
		t.Errorf("cache entries = %d, want 3", n)
	}
	if tmp, _ := filepath.Glob(filepath.Join(cache, ".tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary files left in the cache: %v", tmp)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %o, want %o", path, got, want)
	}
}

func TestWasmCorruptCacheEntry(t *testing.T) {
	t.Parallel()
	requireGo(t)
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{"go.mod": goMod, "main.go": "package main\n\nfunc main() {}\n"})
	cache := t.TempDir()
	var rec logRecorder
	opts := Options{Dir: mod, CacheDir: cache, Logger: rec.logger()}
	if _, err := Wasm(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	entries := cacheEntries(t, cache)
	if len(entries) != 1 {
		t.Fatalf("cache entries = %v, want 1", entries)
	}
	if err := os.WriteFile(entries[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Wasm(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, wasmMagic) {
		t.Fatal("a corrupt cache entry was returned")
	}
	if rec.count("gobuild: ignoring corrupt cache entry") != 1 || rec.count("gobuild: built") != 2 {
		t.Fatalf("want the corrupt entry ignored and a rebuild, log:\n%s", rec.buf.String())
	}
	if again, err := os.ReadFile(entries[0]); err != nil || !bytes.Equal(again, b) {
		t.Errorf("corrupt entry not replaced (err %v)", err)
	}
}

func TestWasmNoCache(t *testing.T) {
	t.Parallel()
	requireGo(t)
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{"go.mod": goMod, "main.go": "package main\n\nfunc main() { println(\"hi\") }\n"})
	var rec logRecorder
	b, err := Wasm(t.Context(), Options{Dir: mod, Logger: rec.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, wasmMagic) {
		t.Fatal("output is not a wasm module")
	}
	if strings.Contains(rec.buf.String(), "cache") {
		t.Errorf("no cache dir given, yet the log mentions the cache:\n%s", rec.buf.String())
	}
}

func TestWasmCompileError(t *testing.T) {
	t.Parallel()
	requireGo(t)
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{"go.mod": goMod, "main.go": "package main\n\nfunc main() { println(nope) }\n"})
	_, err := Wasm(t.Context(), Options{Dir: mod, CacheDir: t.TempDir()})
	var werr *ward.Error
	if !errors.As(err, &werr) || werr.Code != ward.CodeInvalidArgument {
		t.Fatalf("err = %v, want a *ward.Error with code invalid_argument", err)
	}
	if !strings.Contains(werr.Message, "undefined: nope") || !strings.Contains(werr.Message, "main.go:3") {
		t.Errorf("message lacks the compiler's diagnosis:\n%s", werr.Message)
	}
	if len(werr.Message) > maxErrorMessage+100 {
		t.Errorf("message is %d bytes, want about %d at most", len(werr.Message), maxErrorMessage)
	}
}

func TestWasmNotMainPackage(t *testing.T) {
	t.Parallel()
	requireGo(t)
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{"go.mod": goMod, "lib.go": "package lib\n\nfunc X() int { return 1 }\n"})
	_, err := Wasm(t.Context(), Options{Dir: mod})
	if ward.CodeOf(err) != ward.CodeInvalidArgument || !strings.Contains(err.Error(), "not a main package") {
		t.Fatalf("err = %v, want invalid_argument naming a non-main package", err)
	}
}

func TestWasmBadOptions(t *testing.T) {
	t.Parallel()
	noModule := t.TempDir() // assumed not to be inside a Go module
	if _, err := moduleRoot(noModule); err == nil {
		t.Skipf("skipping: the temp dir %s is inside a Go module", noModule)
	}
	file := filepath.Join(noModule, "file.go")
	writeTree(t, noModule, map[string]string{"file.go": "package main\n"})
	tests := []struct {
		name string
		dir  string
		want string
	}{
		{"empty dir", "", "no package directory"},
		{"missing dir", filepath.Join(noModule, "missing"), "does not exist"},
		{"file", file, "not a directory"},
		{"no module", noModule, "not inside a Go module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Wasm(t.Context(), Options{Dir: tt.dir})
			if ward.CodeOf(err) != ward.CodeInvalidArgument || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want invalid_argument containing %q", err, tt.want)
			}
		})
	}
}

func TestWasmMissingToolchain(t *testing.T) {
	t.Parallel()
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{"go.mod": goMod, "main.go": "package main\n\nfunc main() {}\n"})
	for _, bin := range []string{filepath.Join(mod, "no-such-go"), "ward-no-such-go-binary"} {
		_, err := Wasm(t.Context(), Options{Dir: mod, GoBin: bin})
		if !errors.Is(err, ErrNoToolchain) || !errors.Is(err, exec.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("GoBin %q: err = %v, want ErrNoToolchain wrapping not-found", bin, err)
		}
		if err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("GoBin %q: message %q does not say the toolchain was not found", bin, err)
		}
	}
}

func TestWasmNotAToolchain(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("skipping: needs a shell script as a fake go command")
	}
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{"go.mod": goMod, "main.go": "package main\n\nfunc main() {}\n"})
	bin := t.TempDir()
	scripts := map[string]string{
		"prints-junk": "#!/bin/sh\necho hello\n",
		"fails":       "#!/bin/sh\necho broken >&2\nexit 3\n",
	}
	for name, script := range scripts {
		p := filepath.Join(bin, name)
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Wasm(t.Context(), Options{Dir: mod, GoBin: p})
		if !errors.Is(err, ErrNoToolchain) {
			t.Errorf("%s: err = %v, want ErrNoToolchain", name, err)
		}
		if ward.CodeOf(err) == ward.CodeInvalidArgument {
			t.Errorf("%s: a broken toolchain is not the user's invalid argument: %v", name, err)
		}
	}
}

func TestWasmCancelled(t *testing.T) {
	t.Parallel()
	requireGo(t)
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{"go.mod": goMod, "main.go": "package main\n\nfunc main() {}\n"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Wasm(ctx, Options{Dir: mod, CacheDir: t.TempDir()})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestBuildEnv(t *testing.T) {
	t.Parallel()
	parent := []string{"PATH=/bin", "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=1", "GOWORK=/x/go.work", "HOME=/home/u", "GOFLAGS=-mod=mod"}
	env := buildEnv(parent, target{goos: "wasip1", goarch: "wasm"})
	got := map[string][]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = append(got[k], v)
	}
	want := map[string]string{
		"PATH": "/bin", "HOME": "/home/u", "GOFLAGS": "-mod=mod",
		"GOOS": "wasip1", "GOARCH": "wasm", "CGO_ENABLED": "0", "GOWORK": "off",
	}
	for k, v := range want {
		if len(got[k]) != 1 || got[k][0] != v {
			t.Errorf("%s = %v, want exactly [%s]", k, got[k], v)
		}
	}
}

// TestLinux builds a static Linux executable, runs it, and checks the
// cache keeps wasm and Linux builds of one package apart.
func TestLinux(t *testing.T) {
	t.Parallel()
	requireGo(t)
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{"go.mod": goMod, "main.go": embedMain, "msg.txt": "from linux"})
	cache := t.TempDir()
	exe, err := Linux(t.Context(), Options{Dir: mod, CacheDir: cache}, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(exe, elfMagic) {
		t.Fatalf("output starts %x, want an ELF executable", exe[:min(4, len(exe))])
	}
	if runtime.GOOS == "linux" {
		path := filepath.Join(t.TempDir(), "exe")
		if err := os.WriteFile(path, exe, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(path).Output()
		if err != nil || string(out) != "from linux" {
			t.Errorf("running the build: %q, %v", out, err)
		}
	}
	wasm, err := Wasm(t.Context(), Options{Dir: mod, CacheDir: cache})
	if err != nil || !bytes.HasPrefix(wasm, wasmMagic) {
		t.Fatalf("wasm build after a Linux build of the same package: %v", err)
	}
	again, err := Linux(t.Context(), Options{Dir: mod, CacheDir: cache}, runtime.GOARCH)
	if err != nil || !bytes.Equal(again, exe) {
		t.Errorf("cached Linux build differs or failed: %v", err)
	}
	if _, err := Linux(t.Context(), Options{Dir: mod}, "../x"); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("bad architecture: %v, want invalid_argument", err)
	}
}

func TestCappedBuffer(t *testing.T) {
	t.Parallel()
	c := cappedBuffer{max: 5}
	for _, s := range []string{"ab", "cdef", "gh"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := c.String(); got != "abcde" {
		t.Errorf("kept %q, want %q", got, "abcde")
	}
}
