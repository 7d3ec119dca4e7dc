package ward

import (
	"encoding/json"
	"time"
)

// Runtime names the sandbox a function's code runs in.
type Runtime string

// Runtimes.
const (
	RuntimeWasm Runtime = "wasm"
	RuntimeOCI  Runtime = "oci"
)

// Limits bound a function's runs and how fast it takes tasks.
type Limits struct {
	MemoryMB       int `json:"memory_mb"`
	TimeoutS       int `json:"timeout_s"`
	MaxConcurrency int `json:"max_concurrency"` // 0 = unlimited
	MaxPayloadKB   int `json:"max_payload_kb"`
	// SubmitRate caps the tasks accepted per second (submit, batch,
	// fan-out and invoke together; a burst of up to one second's worth);
	// 0 = unlimited. It holds per server.
	SubmitRate int `json:"submit_rate,omitempty"`
	// MaxResultKB and MaxLogKB cap a run's stdout (over it: output_limit)
	// and its kept stderr (the rest is dropped); 0 = the default 1024.
	MaxResultKB int `json:"max_result_kb,omitempty"`
	MaxLogKB    int `json:"max_log_kb,omitempty"`
}

// Retries says how user failures are retried.
type Retries struct {
	MaxAttempts int `json:"max_attempts"`
	BackoffS    int `json:"backoff_s"` // base of the exponential backoff
}

// Input says which parts of a payload a function may see: JSON Pointers
// (RFC 6901, with "*" for every element of an array) of the fields kept,
// the fields whose values the function sees only as tokens, and whether a
// payload carrying anything else is refused. internal/privacy checks them
// when a function is deployed.
type Input struct {
	Fields   []string `json:"fields,omitempty"`
	Tokenize []string `json:"tokenize,omitempty"`
	Strict   bool     `json:"strict,omitempty"`
	// Schema is an optional JSON Schema (2020-12 unless it names another
	// draft) the payload as submitted must satisfy; it may not refer to
	// anything outside itself.
	Schema json.RawMessage `json:"schema,omitempty"`
}

// FunctionSpec is the user-editable part of a function (PUT …/functions/{fn}).
type FunctionSpec struct {
	Runtime       Runtime `json:"runtime"`
	Limits        Limits  `json:"limits"`
	Retries       Retries `json:"retries"`
	Input         Input   `json:"input"`
	RetentionDays int     `json:"retention_days"`
}

// Bounds on function specs.
const (
	MaxMemoryMB     = 4096
	MaxTimeoutS     = 3600
	MaxPayloadKB    = 10 * 1024
	MaxAttempts     = 20
	MaxBackoffS     = 3600
	MaxRetention    = 3650
	MaxConcurrency  = 100000
	MaxSubmitRate   = 100000
	MaxOutputKB     = 16 * 1024 // max_result_kb and max_log_kb
	DefaultOutputKB = 1024
	DefaultMemoryMB = 64
)

// MaxImageBytes caps an image archive: an upload to the server, and an
// image the CLI pulls from a registry to deploy.
const MaxImageBytes = 256 << 20

// DefaultSpec returns the spec every omitted field falls back to.
func DefaultSpec() FunctionSpec {
	return FunctionSpec{
		Runtime:       RuntimeWasm,
		Limits:        Limits{MemoryMB: DefaultMemoryMB, TimeoutS: 30, MaxPayloadKB: 256, MaxResultKB: DefaultOutputKB, MaxLogKB: DefaultOutputKB},
		Retries:       Retries{MaxAttempts: 1, BackoffS: 5},
		RetentionDays: 7,
	}
}

// WithDefaults returns s with zero fields replaced by their defaults.
func (s FunctionSpec) WithDefaults() FunctionSpec {
	d := DefaultSpec()
	if s.Runtime == "" {
		s.Runtime = d.Runtime
	}
	if s.Limits.MemoryMB == 0 {
		s.Limits.MemoryMB = d.Limits.MemoryMB
	}
	if s.Limits.TimeoutS == 0 {
		s.Limits.TimeoutS = d.Limits.TimeoutS
	}
	if s.Limits.MaxPayloadKB == 0 {
		s.Limits.MaxPayloadKB = d.Limits.MaxPayloadKB
	}
	if s.Limits.MaxResultKB == 0 {
		s.Limits.MaxResultKB = d.Limits.MaxResultKB
	}
	if s.Limits.MaxLogKB == 0 {
		s.Limits.MaxLogKB = d.Limits.MaxLogKB
	}
	if s.Retries.MaxAttempts == 0 {
		s.Retries.MaxAttempts = d.Retries.MaxAttempts
	}
	if s.Retries.BackoffS == 0 {
		s.Retries.BackoffS = d.Retries.BackoffS
	}
	if s.RetentionDays == 0 {
		s.RetentionDays = d.RetentionDays
	}
	return s
}

// Validate checks a spec after WithDefaults; the error names the field.
func (s FunctionSpec) Validate() error {
	switch {
	case s.Runtime != RuntimeWasm && s.Runtime != RuntimeOCI:
		return FieldError("runtime", "must be %q or %q", RuntimeWasm, RuntimeOCI)
	case s.Limits.MemoryMB < 1 || s.Limits.MemoryMB > MaxMemoryMB:
		return FieldError("limits.memory_mb", "must be between 1 and %d", MaxMemoryMB)
	case s.Limits.TimeoutS < 1 || s.Limits.TimeoutS > MaxTimeoutS:
		return FieldError("limits.timeout_s", "must be between 1 and %d", MaxTimeoutS)
	case s.Limits.MaxConcurrency < 0 || s.Limits.MaxConcurrency > MaxConcurrency:
		return FieldError("limits.max_concurrency", "must be between 0 and %d", MaxConcurrency)
	case s.Limits.MaxPayloadKB < 1 || s.Limits.MaxPayloadKB > MaxPayloadKB:
		return FieldError("limits.max_payload_kb", "must be between 1 and %d", MaxPayloadKB)
	case s.Limits.SubmitRate < 0 || s.Limits.SubmitRate > MaxSubmitRate:
		return FieldError("limits.submit_rate", "must be between 0 and %d", MaxSubmitRate)
	case s.Limits.MaxResultKB < 1 || s.Limits.MaxResultKB > MaxOutputKB:
		return FieldError("limits.max_result_kb", "must be between 1 and %d", MaxOutputKB)
	case s.Limits.MaxLogKB < 1 || s.Limits.MaxLogKB > MaxOutputKB:
		return FieldError("limits.max_log_kb", "must be between 1 and %d", MaxOutputKB)
	case s.Retries.MaxAttempts < 1 || s.Retries.MaxAttempts > MaxAttempts:
		return FieldError("retries.max_attempts", "must be between 1 and %d", MaxAttempts)
	case s.Retries.BackoffS < 0 || s.Retries.BackoffS > MaxBackoffS:
		return FieldError("retries.backoff_s", "must be between 0 and %d", MaxBackoffS)
	case s.RetentionDays < 1 || s.RetentionDays > MaxRetention:
		return FieldError("retention_days", "must be between 1 and %d", MaxRetention)
	}
	return nil
}

// Function is a deployed function: its spec and its current code.
type Function struct {
	Project     string       `json:"project"`
	Name        string       `json:"name"`
	Spec        FunctionSpec `json:"spec"`
	CodeDigest  string       `json:"code_digest,omitempty"` // "sha256:<hex>"; empty until code is uploaded
	CodeVersion int          `json:"code_version"`
	CodeSize    int64        `json:"code_size,omitempty"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

// CodeUploadResponse answers PUT …/functions/{fn}/code.
type CodeUploadResponse struct {
	Digest  string `json:"digest"`
	Version int    `json:"version"`
	Size    int64  `json:"size"`
	Scan    string `json:"scan"` // result of intake checks: "ok"
}

// Config is a JSON object of strings (global or function-local).
type Config map[string]string

// SealingKey is the public half of a function's HPKE key pair: clients seal
// payloads to it (client.Seal) and only the function's tasks can open them.
type SealingKey struct {
	KEM       string `json:"kem"`        // "MLKEM768-X25519"
	KDF       string `json:"kdf"`        // "HKDF-SHA256"
	AEAD      string `json:"aead"`       // "AES-256-GCM"
	KeyID     string `json:"key_id"`     // hex of the first 8 bytes of SHA-256 of PublicKey
	PublicKey []byte `json:"public_key"` // base64 in JSON
}
