// Package sandbox defines the contract every task sandbox meets (DESIGN §4):
// Prepare an artifact once, then Run it many times, each run in a fresh,
// isolated instance under hard limits. sandbox/wasm implements it; the
// sandboxtest suite checks any implementation.
package sandbox

import (
	"cmp"
	"context"
	"strings"
	"time"

	"github.com/wardhq/ward"
)

// Sandbox runs task code. Implementations are safe for concurrent use.
type Sandbox interface {
	// Capabilities describes what the sandbox can do.
	Capabilities() Capabilities
	// Prepare validates and compiles an artifact and caches it by digest.
	// Invalid code returns a *ward.Error with code invalid_module. Preparing
	// a digest that is already cached is cheap.
	Prepare(ctx context.Context, a Artifact) error
	// Run runs a prepared artifact once. Task failures (exit status, trap,
	// limits, timeout) are reported in the Outcome, not as an error; an error
	// means the platform could not run the task at all (e.g. not prepared:
	// a *ward.Error with code not_found).
	Run(ctx context.Context, spec *Spec) (Outcome, error)
	// Close releases compiled code and runtimes.
	Close(ctx context.Context) error
}

// Capabilities describes a sandbox.
type Capabilities struct {
	Runtime  ward.Runtime
	Network  bool // tasks can reach the network
	MaxMemMB int  // largest memory_mb it accepts
}

// Artifact is code to prepare, identified by its digest ("sha256:<hex>").
type Artifact struct {
	Digest string
	Code   []byte
}

// Spec is one run.
type Spec struct {
	Digest   string
	Stdin    []byte
	Env      map[string]string // WARD_* variables
	Files    map[string][]byte // read-only files under /ward, keyed by path relative to /ward ("payload", "config.json", "secrets/NAME")
	MemoryMB int
	Timeout  time.Duration
	// StdoutLimit caps the result; exceeding it ends the run with output_limit.
	StdoutLimit int
	// StderrLimit caps the log; the rest is dropped and a marker appended.
	StderrLimit int
	// TmpLimit caps the bytes the task can hold in its in-memory /tmp.
	TmpLimit int64
	// Redact lists values replaced with [REDACTED] in the log.
	Redact []string
	// LogSink, when set, receives the log while the run goes on: complete
	// lines of stderr, redacted, up to StderrLimit (see LogWriter.Sink).
	// It is called on the run's own goroutine, never after Run returns,
	// must not block, and must not keep chunk past the call.
	LogSink func(chunk []byte)
}

// Defaults for Spec caps.
const (
	DefaultStdoutLimit = 1 << 20
	DefaultStderrLimit = 1 << 20
	DefaultTmpLimit    = 16 << 20
)

// Limits are a Spec's caps with the defaults applied.
type Limits struct {
	Memory  int64 // bytes
	Stdout  int
	Stderr  int
	Tmp     int64
	Timeout time.Duration
}

// Limits checks the spec's caps, given the largest memory_mb the sandbox
// accepts, and returns them with the defaults applied to zero caps. It
// checks the environment too: names non-empty without '=' or NUL, values
// without NUL. Errors are ward field errors (invalid_argument), as is a
// nil spec.
func (s *Spec) Limits(maxMemMB int) (Limits, error) {
	switch {
	case s == nil:
		return Limits{}, ward.Errorf(ward.CodeInvalidArgument, "run: no spec")
	case s.MemoryMB < 1 || s.MemoryMB > maxMemMB:
		return Limits{}, ward.FieldError("memory_mb", "must be between 1 and %d", maxMemMB)
	case s.Timeout <= 0:
		return Limits{}, ward.FieldError("timeout", "must be positive")
	case s.StdoutLimit < 0:
		return Limits{}, ward.FieldError("stdout_limit", "must not be negative")
	case s.StderrLimit < 0:
		return Limits{}, ward.FieldError("stderr_limit", "must not be negative")
	case s.TmpLimit < 0:
		return Limits{}, ward.FieldError("tmp_limit", "must not be negative")
	}
	for k, v := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return Limits{}, ward.FieldError("env", "names must be non-empty without '=' or NUL, values without NUL")
		}
	}
	return Limits{
		Memory:  int64(s.MemoryMB) << 20,
		Stdout:  cmp.Or(s.StdoutLimit, DefaultStdoutLimit),
		Stderr:  cmp.Or(s.StderrLimit, DefaultStderrLimit),
		Tmp:     cmp.Or(s.TmpLimit, DefaultTmpLimit),
		Timeout: s.Timeout,
	}, nil
}

// TruncatedMarker ends a log cut at StderrLimit.
const TruncatedMarker = "\n[ward: log truncated]\n"

// Outcome is how a run ended. Code is empty on success, else one of
// exit_status, trap, memory_limit, timeout, output_limit.
type Outcome struct {
	Code     ward.Code
	Message  string
	ExitCode *int
	Stdout   []byte
	Stderr   []byte
	Usage    ward.Usage
}

// Succeeded reports whether the run succeeded.
func (o Outcome) Succeeded() bool { return o.Code == "" }
