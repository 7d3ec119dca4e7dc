package runner

import (
	"context"
	"time"

	"github.com/wardhq/ward"
)

// Source is where a runner gets work and reports results. In one process it
// is the queue itself; a remote runner speaks the internal API instead.
type Source interface {
	// Lease blocks until work is available or Wait has passed, then returns
	// up to req.Max jobs that fit req.FreeMemoryMB. An empty result is normal.
	Lease(ctx context.Context, req *LeaseRequest) ([]Job, error)
	// Heartbeat extends the held leases and returns the task IDs whose lease
	// is gone (cancelled, expired): the runner must stop them.
	Heartbeat(ctx context.Context, runnerID string, leases []LeaseRef) (lost []string, err error)
	// Complete reports finished runs; the per-result error is
	// ward.ErrStaleLease for a run whose lease was lost.
	Complete(ctx context.Context, results []Result) ([]error, error)
	// Release gives back every lease the runner still holds (shutdown).
	Release(ctx context.Context, runnerID string) error
	// Code returns a project's code blob by digest.
	Code(ctx context.Context, project, digest string) ([]byte, error)
}

// LeaseRequest asks a Source for work.
type LeaseRequest struct {
	RunnerID     string
	Max          int
	FreeMemoryMB int
	Wait         time.Duration
}

// LeaseRef names a held lease.
type LeaseRef struct {
	TaskID  string
	LeaseID string
}

// Job is one leased task with everything needed to run it.
type Job struct {
	TaskID     string
	LeaseID    string
	Project    string
	Function   string
	CodeDigest string
	Retry      RetryState
	MemoryMB   int
	Timeout    time.Duration
	Payload    []byte
	Sealed     bool   // Payload is a client-sealed envelope the task opens itself
	Config     []byte // JSON object: global config overlaid by function config
	// Secrets are the function's secrets by name (project-global ones
	// overlaid by the function's own), delivered as /ward/secrets/<name>
	// and redacted from the log. Shared between jobs: do not modify.
	Secrets  map[string][]byte
	QueuedAt time.Time
}

// RetryState is what the queue needs to choose a finished run's next state.
// It travels with the job and comes back unchanged with its result, so the
// queue holds no per-lease state between lease and completion.
type RetryState struct {
	Attempt       int // this run's attempt, counting platform retries
	MaxAttempts   int
	PlatformTries int
	BackoffS      int
}

// Result is a finished run.
type Result struct {
	TaskID   string
	LeaseID  string
	Project  string
	Retry    RetryState // the job's, unchanged
	Code     ward.Code  // "" on success
	Message  string
	ExitCode *int
	Stdout   []byte
	Stderr   []byte
	Usage    ward.Usage
}
