// Package ward holds the domain types of the ward task platform: projects,
// functions, tasks, their states and the stable error codes shared by every
// layer. It depends on the standard library only.
package ward

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Code is a stable, machine-readable error code. API errors and task failures
// both carry one; the HTTP status for a code is chosen in internal/api only.
type Code string

// Codes for API and platform errors.
const (
	CodeInvalidJSON      Code = "invalid_json"      // the body is not well-formed JSON
	CodeUnknownField     Code = "unknown_field"     // the body names a field the API does not know
	CodeInvalidArgument  Code = "invalid_argument"  // a field's value is out of range or malformed
	CodeNotFound         Code = "not_found"         // no such resource (or not visible to the caller)
	CodeAlreadyExists    Code = "already_exists"    // the resource exists
	CodeInvalidState     Code = "invalid_state"     // the resource is not in a state that allows the call
	CodeUnauthenticated  Code = "unauthenticated"   // no valid token
	CodeForbidden        Code = "forbidden"         // the token lacks the scope
	CodeBodyTooLarge     Code = "body_too_large"    // the request body exceeds the API's cap
	CodePayloadTooLarge  Code = "payload_too_large" // the payload exceeds the function's max_payload_kb
	CodeInvalidModule    Code = "invalid_module"    // uploaded code is not a valid module
	CodeInvalidImage     Code = "invalid_image"     // an uploaded archive is not a usable container image
	CodeDigestMismatch   Code = "digest_mismatch"   // an image blob's content does not match its digest
	CodeUnsafeLayer      Code = "unsafe_layer"      // an image layer holds a path or link that leaves the root, or a device node
	CodeNoCommand        Code = "image_no_command"  // an image's config names no command to run
	CodeRuntimeMismatch  Code = "runtime_mismatch"  // code or a change that does not fit the function's runtime
	CodeNoCode           Code = "no_code"           // the function has no code yet
	CodeUnsupportedMedia Code = "unsupported_media_type"
	CodeMethodNotAllowed Code = "method_not_allowed"
	CodeFunctionBusy     Code = "function_concurrency"    // the function's max_concurrency is reached
	CodeFunctionRate     Code = "function_rate"           // the function's submit_rate is reached
	CodeProjectQueued    Code = "project_queued_quota"    // the project's max_queued tasks are queued
	CodeProjectFunctions Code = "project_functions_quota" // the project has its max_functions
	CodeProjectRunning   Code = "project_running_quota"   // the project's max_running tasks are running (invoke)
	CodeProjectStorage   Code = "project_storage_quota"   // the request would take the project past its max_stored_mb
	CodeStaleLease       Code = "stale_lease"             // a lease that is no longer held
	CodeTaskFailed       Code = "task_failed"             // a synchronous invoke whose task failed
	CodeUnavailable      Code = "unavailable"             // the service is shutting down or not ready
	CodeInternal         Code = "internal"                // anything else; details are logged, not returned
)

// Codes for why a task failed (Task.Error.Code).
const (
	CodeExitStatus   Code = "exit_status"   // the task exited non-zero
	CodeTimeout      Code = "timeout"       // the task ran past its timeout
	CodeMemoryLimit  Code = "memory_limit"  // the task hit its own memory limit
	CodeNodePressure Code = "node_pressure" // the node, not the task, ran out of memory
	CodeTrap         Code = "trap"          // a wasm trap or runtime panic
	CodeOutputLimit  Code = "output_limit"  // stdout exceeded its cap
	CodeLeaseExpired Code = "lease_expired" // the runner holding the task vanished
	CodeCodeRejected Code = "code_rejected" // the code failed verification at dispatch
	CodeCancelled    Code = "cancelled"     // the task was cancelled
)

// PlatformFailure reports whether a task failure code is the platform's fault
// rather than the task's; such failures are retried on their own.
func (c Code) PlatformFailure() bool {
	return c == CodeLeaseExpired || c == CodeNodePressure
}

// Error is an error with a stable code. Field, when set, names the request
// field at fault. Message never contains secret or payload values.
// RetryAfter, for a limit that says "later", is when a retry may succeed.
type Error struct {
	Code       Code
	Message    string
	Field      string
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message
}

// Is makes errors.Is match any *Error with the same code, so sentinels such
// as ErrNotFound identify a class of errors.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrNotFound      = &Error{Code: CodeNotFound}
	ErrAlreadyExists = &Error{Code: CodeAlreadyExists}
	ErrInvalidState  = &Error{Code: CodeInvalidState}
	ErrStaleLease    = &Error{Code: CodeStaleLease}
	ErrFunctionBusy  = &Error{Code: CodeFunctionBusy}
)

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an invalid_argument *Error naming the field at fault.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or CodeInternal when err carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ValidName reports whether s is a valid project or function name: lowercase
// letters, digits and '-', 1–63 characters, not starting with '-'.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Digest returns the content address of code: "sha256:" and the lowercase
// hex of its SHA-256.
func Digest(code []byte) string {
	sum := sha256.Sum256(code)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DigestHex returns the hex part of a digest of the form "sha256:" and 64
// lowercase hex digits, or false for anything else.
func DigestHex(digest string) (string, bool) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || !IsSHA256Hex(h) {
		return "", false
	}
	return h, true
}

// IsSHA256Hex reports whether h is 64 lowercase hex digits.
func IsSHA256Hex(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for i := range len(h) {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
