// Package wasm is the WebAssembly sandbox: it runs WASI preview 1 commands
// with wazero under the task contract of DESIGN §4.
//
// One wazero runtime serves every task. Prepare checks a module's structure
// (see checkModule: wazero's decoder trusts declared sizes, so a tiny
// module could exhaust the host's memory), compiles it once and caches it
// by digest; every Run instantiates it afresh (anonymous, so runs of one
// module proceed concurrently), calls _start and closes the instance. Per
// run:
//
//   - memory: the run's allocator refuses to grow linear memory past
//     Spec.MemoryMB (memory.grow yields -1) and records the peak; a run that
//     fails after a refused grow, or whose declared initial memory is over
//     the limit, ends with memory_limit.
//   - time: the run's context carries Spec.Timeout and wazero closes the
//     instance when it is done; cancelling the caller's context ends the run
//     with cancelled.
//   - stdin is Spec.Stdin; stdout is the result, capped at StdoutLimit (the
//     write that passes it ends the run with output_limit); stderr is the
//     log, capped at StderrLimit and redacted.
//   - files: Spec.Files read-only under /ward, an in-memory /tmp capped at
//     TmpLimit; no host file system, no sockets, env is Spec.Env only, the
//     arguments are just the program name.
//   - exit: returning from _start or proc_exit(0) succeeds; proc_exit(n)
//     fails with exit_status; a trap fails with trap. A Go (GOOS=wasip1)
//     program that panics exits with status 2, so it ends with exit_status.
//   - usage: DurationMs is the wall time of the run. wazero runs the guest
//     on the calling goroutine and offers no CPU accounting, so CPUMs is
//     the same wall time. PeakMemoryBytes is the peak size of linear memory.
//
// Host memory a run uses besides its linear memory is bounded but not
// counted against MemoryMB: tables (at most maxTableElems elements in all),
// the guest's call stack (wazero stops it at roughly 100 MB), stdout,
// stderr and /tmp (at their caps).
package wasm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox"
)

// ProgramName is the only argument a task receives (argv[0]).
const ProgramName = "task"

// maxMessage caps error and outcome messages taken from wazero or from the
// module, so a hostile module cannot make them huge.
const maxMessage = 200

// Options configure a Sandbox.
type Options struct {
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// CacheDir, when set, keeps compiled code on disk so that a restarted
	// process does not compile the same module again. Empty keeps compiled
	// code in memory only.
	CacheDir string
	// MaxMemoryMB is the largest Spec.MemoryMB accepted; 0 means
	// ward.MaxMemoryMB, which is also the upper bound.
	MaxMemoryMB int
	// Now is the clock for durations and file times; nil means time.Now.
	Now func() time.Time
	// MaxModules bounds the compiled modules held in memory; preparing one
	// more evicts the least recently run (its digest must be prepared again
	// before it runs). 0 means DefaultMaxModules.
	MaxModules int
}

// DefaultMaxModules is the default bound on compiled modules in memory.
const DefaultMaxModules = 256

// Sandbox runs WebAssembly task code. It implements sandbox.Sandbox and is
// safe for concurrent use.
type Sandbox struct {
	log      *slog.Logger
	now      func() time.Time
	maxMemMB int
	maxMods  int
	runtime  wazero.Runtime
	cache    wazero.CompilationCache // nil without CacheDir
	wasi     map[string]api.FunctionDefinition
	base     wazero.ModuleConfig
	closed   atomic.Bool
	pages    sync.Pool // of *page: one-page linear memories, see memoryMeter

	mu      sync.RWMutex
	modules map[string]*module // by digest
}

var _ sandbox.Sandbox = (*Sandbox)(nil)

// module is a prepared artifact.
type module struct {
	compiled wazero.CompiledModule
	minPages uint64       // declared initial memory
	used     atomic.Int64 // last Run, in the sandbox clock's unix nanoseconds
}

// cacheDirMu serialises wazero.NewCompilationCacheWithDir: wazero 1.12
// initialises its version string lazily without synchronisation, so two
// sandboxes created at once race on it.
var cacheDirMu sync.Mutex

// errClosed is returned by calls on a closed Sandbox.
var errClosed = ward.Errorf(ward.CodeUnavailable, "wasm sandbox is closed")

// New returns a Sandbox with its own wazero runtime.
func New(ctx context.Context, opts Options) (*Sandbox, error) {
	maxMem := opts.MaxMemoryMB
	if maxMem == 0 {
		maxMem = ward.MaxMemoryMB
	}
	if maxMem < 1 || maxMem > ward.MaxMemoryMB {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "wasm sandbox: MaxMemoryMB must be between 1 and %d", ward.MaxMemoryMB)
	}
	s := &Sandbox{
		log:      opts.Logger,
		now:      opts.Now,
		maxMemMB: maxMem,
		maxMods:  opts.MaxModules,
		modules:  map[string]*module{},
	}
	if s.maxMods <= 0 {
		s.maxMods = DefaultMaxModules
	}
	s.pages.New = func() any { return new(page) }
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	// The memory limit is enforced per run by the allocator, so wazero's own
	// page limit stays at the architectural maximum: a grow refused by
	// wazero itself could not be told apart from an ordinary failure.
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithDebugInfoEnabled(false)
	if opts.CacheDir != "" {
		cacheDirMu.Lock()
		cache, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		cacheDirMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("wasm sandbox: compilation cache in %s: %w", opts.CacheDir, err)
		}
		s.cache = cache
		cfg = cfg.WithCompilationCache(cache)
	}
	s.runtime = wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, s.runtime); err != nil {
		_ = s.Close(ctx)
		return nil, fmt.Errorf("wasm sandbox: instantiate WASI: %w", err)
	}
	s.wasi = s.runtime.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions()
	s.base = wazero.NewModuleConfig().
		WithName(""). // anonymous: instances of one module may run at once
		WithStartFunctions().
		WithArgs(ProgramName).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	return s, nil
}

// Capabilities implements sandbox.Sandbox.
func (s *Sandbox) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Runtime: ward.RuntimeWasm, Network: false, MaxMemMB: s.maxMemMB}
}

// Prepare implements sandbox.Sandbox: it checks the digest, validates and
// compiles the module and caches it. The module must be a WASI command: it
// exports _start and imports only wasi_snapshot_preview1 functions.
func (s *Sandbox) Prepare(ctx context.Context, a sandbox.Artifact) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := checkDigest(a.Digest); err != nil {
		return err
	}
	s.mu.RLock()
	_, ok := s.modules[a.Digest]
	s.mu.RUnlock()
	if ok {
		return nil // the digest was checked against its code when it was cached
	}
	if ward.Digest(a.Code) != a.Digest {
		return ward.FieldError("digest", "does not match the sha256 of the code")
	}
	start := s.now()
	m, err := s.compile(ctx, a.Code)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.modules[a.Digest]; ok { // prepared meanwhile
		s.mu.Unlock()
		return m.compiled.Close(ctx)
	}
	m.used.Store(s.now().UnixNano())
	var evicted *module
	if len(s.modules) >= s.maxMods {
		evicted = s.evictLocked()
	}
	s.modules[a.Digest] = m
	s.mu.Unlock()
	if evicted != nil {
		// Runs already under way keep their instances; only new runs need
		// the digest prepared again.
		_ = evicted.compiled.Close(ctx)
	}
	s.log.DebugContext(ctx, "wasm module prepared", "digest", a.Digest, "bytes", len(a.Code), "took", s.now().Sub(start))
	return nil
}

// evictLocked removes the least recently run module from the cache and
// returns it. s.mu must be held for writing.
func (s *Sandbox) evictLocked() *module {
	var oldest string
	var at int64
	for d, m := range s.modules {
		if u := m.used.Load(); oldest == "" || u < at {
			oldest, at = d, u
		}
	}
	m := s.modules[oldest]
	delete(s.modules, oldest)
	return m
}

// checkDigest checks that digest has the form "sha256:<hex>".
func checkDigest(digest string) error {
	if _, ok := ward.DigestHex(digest); !ok {
		return ward.FieldError("digest", `must be "sha256:" followed by %d lowercase hex digits`, 2*sha256.Size)
	}
	return nil
}

func invalidModule(format string, args ...any) error {
	return ward.Errorf(ward.CodeInvalidModule, "invalid module: "+format, args...)
}

// compile validates and compiles code.
func (s *Sandbox) compile(ctx context.Context, code []byte) (*module, error) {
	switch {
	case len(code) < 4 || string(code[:4]) != string(wasmMagic[:4]):
		return nil, invalidModule("not a WebAssembly binary")
	case len(code) < len(wasmMagic) || string(code[4:8]) != string(wasmMagic[4:]):
		return nil, invalidModule("unsupported WebAssembly version (only core modules, version 1, are supported)")
	}
	layout, err := checkModule(code)
	if err != nil {
		return nil, invalidModule("%s", shorten(err.Error()))
	}
	compiled, err := s.runtime.CompileModule(ctx, layout.code)
	if err != nil {
		if s.closed.Load() {
			return nil, errClosed
		}
		return nil, invalidModule("%s", shorten(err.Error()))
	}
	if err := s.validate(compiled, layout); err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	return &module{compiled: compiled, minPages: layout.minPages}, nil
}

// validate checks what makes a compiled module runnable as a task.
func (s *Sandbox) validate(compiled wazero.CompiledModule, layout moduleLayout) error {
	start := compiled.ExportedFunctions()["_start"]
	if start == nil {
		return invalidModule("not a WASI command: it does not export _start")
	}
	if len(start.ParamTypes()) != 0 || len(start.ResultTypes()) != 0 {
		return invalidModule("_start must take no parameters and return nothing")
	}
	for _, imp := range layout.imports {
		if imp.kind != importFunc {
			return invalidModule("it imports %s %q.%q; only wasi_snapshot_preview1 functions are provided",
				kindName(imp.kind), shorten(imp.module), shorten(imp.name))
		}
	}
	for _, def := range compiled.ImportedFunctions() {
		modName, name, _ := def.Import()
		host, ok := s.wasi[name]
		if modName != wasi_snapshot_preview1.ModuleName || !ok {
			return invalidModule("it imports function %q.%q; only wasi_snapshot_preview1 functions are provided",
				shorten(modName), shorten(name))
		}
		if !slices.Equal(def.ParamTypes(), host.ParamTypes()) || !slices.Equal(def.ResultTypes(), host.ResultTypes()) {
			return invalidModule("it imports %s.%s with the wrong signature", modName, name)
		}
	}
	if layout.minPages*pageSize > uint64(s.maxMemMB)<<20 {
		return invalidModule("its initial memory of %d MiB exceeds the sandbox maximum of %d MiB",
			layout.minPages*pageSize>>20, s.maxMemMB)
	}
	return nil
}

func kindName(kind byte) string {
	switch kind {
	case importTable:
		return "table"
	case importMemory:
		return "memory"
	case importGlobal:
		return "global"
	case importTag:
		return "tag"
	}
	return "function"
}

// shorten returns the first line of s, at most maxMessage bytes.
func shorten(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > maxMessage {
		s = s[:maxMessage] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Close implements sandbox.Sandbox. It ends runs in flight (they return an
// unavailable error) and releases all compiled code.
func (s *Sandbox) Close(ctx context.Context) error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.mu.Lock()
	s.modules = map[string]*module{}
	s.mu.Unlock()
	var errs []error
	if s.runtime != nil {
		if err := s.runtime.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close wazero runtime: %w", err))
		}
	}
	if s.cache != nil {
		if err := s.cache.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close compilation cache: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Run implements sandbox.Sandbox.
func (s *Sandbox) Run(ctx context.Context, spec *sandbox.Spec) (sandbox.Outcome, error) {
	if s.closed.Load() {
		return sandbox.Outcome{}, errClosed
	}
	lim, err := spec.Limits(s.maxMemMB)
	if err != nil {
		return sandbox.Outcome{}, err
	}
	s.mu.RLock()
	m := s.modules[spec.Digest]
	s.mu.RUnlock()
	if m == nil {
		return sandbox.Outcome{}, ward.Errorf(ward.CodeNotFound, "module %s is not prepared", shorten(spec.Digest))
	}
	m.used.Store(s.now().UnixNano())
	wardFS, err := newReadOnlyFS(spec.Files, s.now)
	if err != nil {
		return sandbox.Outcome{}, ward.FieldError("files", "%v", err)
	}
	start := s.now()
	out, err := s.run(ctx, m, spec, lim, wardFS)
	took := s.now().Sub(start).Milliseconds()
	out.Usage.DurationMs = took
	out.Usage.CPUMs = took
	return out, err
}
