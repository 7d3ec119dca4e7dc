package ward

import (
	"encoding/json"
	"time"
)

// Status is a task's state (docs/state-machine.md).
type Status string

// Task states.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Terminal reports whether no further transition happens on its own.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusRunning, StatusSucceeded, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Priorities.
const (
	MinPriority = 0
	MaxPriority = 2
)

// PlatformRetries is how many times a platform failure is retried on its own.
const PlatformRetries = 3

// TaskError says why a task failed.
type TaskError struct {
	Code    Code   `json:"code"`
	Message string `json:"message,omitempty"`
}

// Usage is what one run of a task consumed.
type Usage struct {
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
	CPUMs           int64 `json:"cpu_ms"`
	DurationMs      int64 `json:"duration_ms"`
}

// Task is a task's metadata. Payload, result and log are separate bodies,
// read through their own routes and scopes, never part of this record.
type Task struct {
	ID          string            `json:"id"`
	Project     string            `json:"project"`
	Function    string            `json:"function"`
	CodeDigest  string            `json:"code_digest"`
	Status      Status            `json:"status"`
	Priority    int               `json:"priority"`
	Attempts    int               `json:"attempts"`
	MaxAttempts int               `json:"max_attempts"`
	TimeoutS    int               `json:"timeout_s"`
	CreatedAt   time.Time         `json:"created_at"`
	RunAt       time.Time         `json:"run_at"`
	StartedAt   *time.Time        `json:"started_at,omitempty"`
	FinishedAt  *time.Time        `json:"finished_at,omitempty"`
	Error       *TaskError        `json:"error,omitempty"`
	ExitCode    *int              `json:"exit_code,omitempty"`
	Usage       *Usage            `json:"usage,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	ParentID    string            `json:"parent_id,omitempty"`
	PayloadSize int               `json:"payload_size"`
	// Sealed is true when the payload is a client-sealed envelope that only
	// the function's tasks can open.
	Sealed bool `json:"sealed,omitempty"`
	// Input describes the stored payload of a function with input rules:
	// which pointers it holds and which were tokenized, never values.
	Input *PayloadInfo `json:"input,omitempty"`
}

// PayloadInfo describes a payload after projection and tokenization.
type PayloadInfo struct {
	Fields    []string `json:"fields,omitempty"`    // concrete JSON Pointers of what the stored payload holds (one task's read only)
	Tokenized []string `json:"tokenized,omitempty"` // pointers whose values are tokens
	Truncated bool     `json:"truncated,omitempty"` // the lists were cut
}

// SubmitRequest is one task submission. At most one of Payload, PayloadB64
// and Sealed may be set; none means an empty payload. Sealed is an envelope
// made by client.Seal for the function's sealing key: the platform stores and
// delivers it as it is, and only the task can open it.
type SubmitRequest struct {
	Function       string            `json:"function"`
	Payload        json.RawMessage   `json:"payload,omitempty"`
	PayloadB64     []byte            `json:"payload_b64,omitempty"`
	Sealed         []byte            `json:"sealed,omitempty"`
	Priority       int               `json:"priority,omitempty"`
	DelayS         int               `json:"delay_s,omitempty"`
	TimeoutS       int               `json:"timeout_s,omitempty"`
	MaxAttempts    int               `json:"max_attempts,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
}

// BatchSubmitRequest is the body of POST …/tasks/batch.
type BatchSubmitRequest struct {
	Tasks []SubmitRequest `json:"tasks"`
}

// BatchSubmitResponse lists the tasks in request order.
type BatchSubmitResponse struct {
	Tasks []Task `json:"tasks"`
}

// TaskList is one page of a task listing.
type TaskList struct {
	Tasks      []Task `json:"tasks"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Bounds on submissions.
const (
	MaxBatch        = 1000
	MaxDelayS       = 7 * 24 * 3600
	MaxLabels       = 16
	MaxLabelLen     = 256
	MaxIdemKeyLen   = 256
	IdempotencyTTL  = 24 * time.Hour
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// FanoutRequest is the body of POST …/tasks/fanout: one payload, one task
// per function, each projected and tokenized by its own function's input
// rules. At most one of Payload and PayloadB64.
type FanoutRequest struct {
	Functions  []string          `json:"functions"`
	Payload    json.RawMessage   `json:"payload,omitempty"`
	PayloadB64 []byte            `json:"payload_b64,omitempty"`
	Priority   int               `json:"priority,omitempty"`
	DelayS     int               `json:"delay_s,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// MaxFanout bounds the functions of one fan-out.
const MaxFanout = 32

// DetokenizeRequest is the body of POST …/detokenize.
type DetokenizeRequest struct {
	Tokens []string `json:"tokens"`
}

// DetokenizeResponse maps each token the vault still holds to its original
// JSON value; tokens it no longer holds (past retention) are absent.
type DetokenizeResponse struct {
	Values map[string]json.RawMessage `json:"values"`
}

// MaxDetokenize bounds the tokens of one re-identification.
const MaxDetokenize = 1000
