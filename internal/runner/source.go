package runner

import (
	"context"
	"time"

	"github.com/wardhq/ward"
)

// Source is where a runner gets work and reports results. In one process it
// is the queue itself; a remote runner speaks the internal API instead.
type Source interface {
	// Register records the runner starting, with its capacity, drivers and
	// version; it is then active.
	Register(ctx context.Context, info ward.Runner) error
	// Lease blocks until work is available or Wait has passed, then returns
	// up to req.Max jobs that fit req.FreeMemoryMB. An empty result is normal.
	// A runner that is not active gets ward.ErrRunnerDraining.
	Lease(ctx context.Context, req *LeaseRequest) ([]Job, error)
	// Heartbeat marks the runner seen, extends the held leases and returns
	// the task IDs whose lease is gone (cancelled, expired) — the runner
	// must stop them — and the runner's state: draining asks it to drain.
	Heartbeat(ctx context.Context, runnerID string, leases []LeaseRef) (HeartbeatReply, error)
	// Complete reports finished runs; the per-result error is
	// ward.ErrStaleLease for a run whose lease was lost.
	Complete(ctx context.Context, results []Result) ([]error, error)
	// Release gives back every lease the runner still holds (shutdown).
	Release(ctx context.Context, runnerID string) error
	// Drained records that the runner has finished its work and leaves.
	Drained(ctx context.Context, runnerID string) error
	// Code returns a project's code blob by digest.
	Code(ctx context.Context, project, digest string) ([]byte, error)
}

// LeaseRequest asks a Source for work.
type LeaseRequest struct {
	RunnerID     string        `json:"-"` // the caller, known from its certificate
	Max          int           `json:"max"`
	FreeMemoryMB int           `json:"free_memory_mb"`
	Wait         time.Duration `json:"wait_ns"`
	// Runtimes are the runtimes the runner can run (its sandbox drivers'):
	// only tasks of those are leased to it. Empty means every runtime.
	Runtimes []ward.Runtime `json:"runtimes,omitempty"`
}

// HeartbeatReply is a Source's answer to a heartbeat.
type HeartbeatReply struct {
	Lost  []string         `json:"lost"`  // task IDs whose runs must stop
	State ward.RunnerState `json:"state"` // the runner's state as the platform sees it
}

// LeaseRef names a held lease.
type LeaseRef struct {
	TaskID  string `json:"task_id"`
	LeaseID string `json:"lease_id"`
}

// Job is one leased task with everything needed to run it.
type Job struct {
	TaskID     string        `json:"task_id"`
	LeaseID    string        `json:"lease_id"`
	Project    string        `json:"project"`
	Function   string        `json:"function"`
	CodeDigest string        `json:"code_digest"`
	Runtime    ward.Runtime  `json:"runtime,omitempty"` // the sandbox to run it in; "" is wasm
	Retry      RetryState    `json:"retry"`
	MemoryMB   int           `json:"memory_mb"`
	Timeout    time.Duration `json:"timeout_ns"`
	Payload    []byte        `json:"payload"`
	Sealed     bool          `json:"sealed,omitempty"` // Payload is a client-sealed envelope the task opens itself
	Config     []byte        `json:"config"`           // JSON object: global config overlaid by function config
	// ResultLimit and LogLimit cap the run's stdout and kept stderr in
	// bytes (0: the sandbox defaults).
	ResultLimit int `json:"result_limit,omitempty"`
	LogLimit    int `json:"log_limit,omitempty"`
	// Secrets are the function's secrets by name (project-global ones
	// overlaid by the function's own), delivered as /ward/secrets/<name>
	// and redacted from the log. Shared between jobs: do not modify.
	Secrets  map[string][]byte `json:"secrets,omitempty"`
	QueuedAt time.Time         `json:"queued_at"`
}

// runtime returns the job's runtime.
func (j *Job) runtime() ward.Runtime {
	if j.Runtime == "" {
		return ward.RuntimeWasm
	}
	return j.Runtime
}

// RetryState is what the queue needs to choose a finished run's next state.
// It travels with the job and comes back unchanged with its result, so the
// queue holds no per-lease state between lease and completion.
type RetryState struct {
	Attempt       int `json:"attempt"` // this run's attempt, counting platform retries
	MaxAttempts   int `json:"max_attempts"`
	PlatformTries int `json:"platform_tries"`
	BackoffS      int `json:"backoff_s"`
}

// Result is a finished run.
type Result struct {
	TaskID   string     `json:"task_id"`
	LeaseID  string     `json:"lease_id"`
	Project  string     `json:"project"`
	Retry    RetryState `json:"retry"`          // the job's, unchanged
	Code     ward.Code  `json:"code,omitempty"` // "" on success
	Message  string     `json:"message,omitempty"`
	ExitCode *int       `json:"exit_code,omitempty"`
	Stdout   []byte     `json:"stdout,omitempty"`
	Stderr   []byte     `json:"stderr,omitempty"`
	Usage    ward.Usage `json:"usage"`
}
