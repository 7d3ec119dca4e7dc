// Package gobuild builds a Go main package with the local Go toolchain —
// into a WASI module (GOOS=wasip1 GOARCH=wasm) for wasm functions, or a
// static Linux executable for container images — and optionally caches the
// result by the content of everything that can change it.
package gobuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardhq/ward"
)

// Options says what to build and how.
type Options struct {
	// Dir is the directory of the main package to build.
	Dir string
	// CacheDir holds built modules keyed by content; "" disables the cache.
	CacheDir string
	// GoBin is the go command to run; "" means "go" on PATH.
	GoBin string
	// Logger receives build and cache events; nil discards them.
	Logger *slog.Logger
}

// ErrNoToolchain is wrapped by the error Wasm returns when the go command
// cannot be found or does not behave like a Go toolchain.
var ErrNoToolchain = errors.New("gobuild: no usable Go toolchain")

// Limits on what is kept of the compiler's output.
const (
	maxCompilerOutput = 64 << 10 // bytes of stderr kept while building
	maxErrorMessage   = 2 << 10  // bytes of compiler output put in the error
)

// waitDelay bounds how long a cancelled build may keep its output pipes open.
const waitDelay = 5 * time.Second

// wasmMagic starts every WebAssembly binary module: "\0asm" and version 1.
var wasmMagic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// elfMagic starts every ELF executable.
var elfMagic = []byte{0x7f, 'E', 'L', 'F'}

// target is what a build produces.
type target struct {
	goos, goarch string
	magic        []byte // how the output starts
	kind         string // what the output is, for messages
	ext          string // cache file extension
}

// Wasm builds the main package in opts.Dir for GOOS=wasip1 GOARCH=wasm and
// returns the module. The package is built within its own module, with
// -trimpath, CGO_ENABLED=0 and GOWORK=off; the rest of the environment (PATH,
// HOME, GOPATH, GOCACHE, GOFLAGS, …) is inherited.
//
// Options that name no usable package, and code that does not compile, give
// a *ward.Error with code invalid_argument; for a compile error its message
// carries the first lines of the compiler's output. A missing toolchain
// gives an error wrapping ErrNoToolchain.
func Wasm(ctx context.Context, opts Options) ([]byte, error) {
	return buildFor(ctx, opts, target{goos: "wasip1", goarch: "wasm", magic: wasmMagic, kind: "wasm module", ext: ".wasm"})
}

// Linux builds the main package in opts.Dir into a statically linked Linux
// executable for goarch (e.g. runtime.GOARCH) and returns it, in the same way
// and with the same errors as Wasm.
func Linux(ctx context.Context, opts Options, goarch string) ([]byte, error) {
	if goarch == "" || strings.ContainsAny(goarch, "/\\ ") {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "gobuild: invalid architecture %q", goarch)
	}
	return buildFor(ctx, opts, target{goos: "linux", goarch: goarch, magic: elfMagic, kind: "Linux executable", ext: ".linux-" + goarch})
}

// buildFor builds opts.Dir for t, through the cache when there is one.
func buildFor(ctx context.Context, opts Options, t target) ([]byte, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := packageDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	root, err := moduleRoot(dir)
	if err != nil {
		return nil, err
	}
	goBin, err := lookGo(opts.GoBin)
	if err != nil {
		return nil, err
	}
	env := buildEnv(os.Environ(), t)
	version, err := goVersion(ctx, goBin, dir, env)
	if err != nil {
		return nil, err
	}

	var cachePath string
	if opts.CacheDir != "" {
		cacheDir, err := filepath.Abs(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("gobuild: cache dir: %w", err)
		}
		key, err := cacheKey(keyInputs{version: version, env: env, root: root, dir: dir, skip: cacheDir})
		if err != nil {
			return nil, err
		}
		cachePath = filepath.Join(cacheDir, key+t.ext)
		if b, ok := readCache(cachePath, t.magic, log); ok {
			log.Debug("gobuild: cache hit", "dir", dir, "key", key)
			return b, nil
		}
		log.Debug("gobuild: cache miss", "dir", dir, "key", key)
	}

	b, err := build(ctx, goBin, dir, env, t)
	if err != nil {
		return nil, err
	}
	log.Info("gobuild: built", "dir", dir, "bytes", len(b), "go", version)
	if cachePath != "" {
		if err := writeCache(cachePath, b); err != nil {
			// The cache only saves time; a build that succeeded still counts.
			log.Warn("gobuild: cache write failed", "path", cachePath, "err", err)
		}
	}
	return b, nil
}

// packageDir returns the absolute form of dir after checking it is a
// directory.
func packageDir(dir string) (string, error) {
	if dir == "" {
		return "", ward.Errorf(ward.CodeInvalidArgument, "gobuild: no package directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("gobuild: package directory %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return "", ward.Errorf(ward.CodeInvalidArgument, "gobuild: package directory %s does not exist", dir)
	}
	if err != nil {
		return "", fmt.Errorf("gobuild: package directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return "", ward.Errorf(ward.CodeInvalidArgument, "gobuild: %s is not a directory", dir)
	}
	return abs, nil
}

// moduleRoot returns the nearest directory at or above dir holding a go.mod.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; {
		fi, err := os.Stat(filepath.Join(d, "go.mod"))
		if err == nil && fi.Mode().IsRegular() {
			return d, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("gobuild: look for go.mod: %w", err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", ward.Errorf(ward.CodeInvalidArgument, "gobuild: %s is not inside a Go module (no go.mod found)", dir)
		}
		d = parent
	}
}

// lookGo resolves the go command.
func lookGo(name string) (string, error) {
	if name == "" {
		name = "go"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: go command %q not found (install Go or put it on PATH): %w", ErrNoToolchain, name, err)
	}
	return p, nil
}

// buildEnv returns parent with the cross-compilation settings for t forced.
func buildEnv(parent []string, t target) []string {
	forced := map[string]string{
		"GOOS":        t.goos,
		"GOARCH":      t.goarch,
		"CGO_ENABLED": "0",
		"GOWORK":      "off",
	}
	env := make([]string, 0, len(parent)+len(forced))
	for _, kv := range parent {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := forced[k]; !ok {
			env = append(env, kv)
		}
	}
	for _, k := range []string{"GOOS", "GOARCH", "CGO_ENABLED", "GOWORK"} {
		env = append(env, k+"="+forced[k])
	}
	return env
}

// goVersion runs "go version" in dir, so a go.mod toolchain line applies as
// it will for the build.
func goVersion(ctx context.Context, goBin, dir string, env []string) (string, error) {
	cmd := exec.CommandContext(ctx, goBin, "version")
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = waitDelay
	var stderr cappedBuffer
	stderr.max = maxErrorMessage
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return "", fmt.Errorf("gobuild: go version: %w", ctxErr)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s version: %w: %s", ErrNoToolchain, goBin, err, strings.TrimSpace(stderr.String()))
	}
	v := strings.TrimSpace(string(out))
	if !strings.HasPrefix(v, "go version ") {
		return "", fmt.Errorf("%w: %s version printed %q, not a Go version", ErrNoToolchain, goBin, firstLine(v))
	}
	return v, nil
}

// build runs go build in dir and returns what it built.
func build(ctx context.Context, goBin, dir string, env []string, t target) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "ward-gobuild-")
	if err != nil {
		return nil, fmt.Errorf("gobuild: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "main")

	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = waitDelay
	var output cappedBuffer
	output.max = maxCompilerOutput
	cmd.Stdout = &output
	cmd.Stderr = &output
	err = cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("gobuild: build %s: %w", dir, ctxErr)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "go build failed:\n%s", compilerMessage(output.String()))
	}
	if err != nil {
		return nil, fmt.Errorf("gobuild: run go build in %s: %w", dir, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("gobuild: read build output: %w", err)
	}
	if !bytes.HasPrefix(b, t.magic) {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "gobuild: %s is not a main package (go build produced no %s)", dir, t.kind)
	}
	return b, nil
}

// compilerMessage trims compiler output to its first lines, at most
// maxErrorMessage bytes, cut at a line (or, for one long line, a rune)
// boundary.
func compilerMessage(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "(no compiler output)"
	}
	if len(s) <= maxErrorMessage {
		return s
	}
	const more = "\n…"
	limit := maxErrorMessage - len(more)
	cut := strings.LastIndexByte(s[:limit+1], '\n')
	if cut <= 0 {
		cut = limit
		for cut > 0 && !runeStart(s[cut]) {
			cut--
		}
	}
	return strings.TrimRight(s[:cut], "\n") + more
}

// runeStart reports whether b can begin a UTF-8 encoding.
func runeStart(b byte) bool { return b&0xC0 != 0x80 }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 200 {
		line = line[:200]
	}
	return line
}

// cappedBuffer keeps the first max bytes written to it and drops the rest,
// so a runaway tool cannot exhaust memory.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string { return c.buf.String() }
