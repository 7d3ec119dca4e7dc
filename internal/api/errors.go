package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/privacy"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/seal/box"
)

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
	// TaskID names the task of a failed synchronous invoke.
	TaskID string `json:"task_id,omitempty"`
	// retryAfter is sent as Retry-After with a 429.
	retryAfter time.Duration
}

type errorDetail struct {
	Code    ward.Code `json:"code"`
	Message string    `json:"message"`
	Field   string    `json:"field,omitempty"`
}

// statusOf maps a stable error code to its HTTP status (docs/api.md). This is
// the only place codes meet statuses.
func statusOf(c ward.Code) int {
	switch c {
	case ward.CodeInvalidJSON, ward.CodeUnknownField, ward.CodeInvalidArgument, ward.CodeInvalidModule,
		ward.CodeInvalidImage, ward.CodeDigestMismatch, ward.CodeUnsafeLayer, ward.CodeNoCommand,
		box.CodeMalformed, box.CodeKeyMismatch, box.CodeInvalidKey,
		privacy.CodeNotJSON, privacy.CodeNotAllowed, privacy.CodeNotScalar, privacy.CodeSchema:
		return http.StatusBadRequest
	case ward.CodeUnauthenticated, ward.CodeJoinTokenInvalid:
		return http.StatusUnauthorized
	case ward.CodeForbidden:
		return http.StatusForbidden
	case ward.CodeNotFound:
		return http.StatusNotFound
	case ward.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case ward.CodeAlreadyExists, ward.CodeInvalidState, ward.CodeStaleLease, ward.CodeNoCode, ward.CodeRunnerDraining,
		ward.CodeRuntimeMismatch, ward.CodeProjectFunctions:
		return http.StatusConflict
	case ward.CodeBodyTooLarge, ward.CodePayloadTooLarge, ward.CodeProjectStorage:
		return http.StatusRequestEntityTooLarge
	case ward.CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case ward.CodeFunctionBusy, ward.CodeFunctionRate, ward.CodeProjectQueued, ward.CodeProjectRunning:
		return http.StatusTooManyRequests
	case ward.CodeUnavailable:
		return http.StatusServiceUnavailable
	case ward.CodeTimeout:
		return http.StatusGatewayTimeout
	case seal.CodeKeyDestroyed:
		// The data existed and is gone for good (retention, project deletion).
		return http.StatusGone
	case ward.CodeTaskFailed, ward.CodeExitStatus, ward.CodeMemoryLimit, ward.CodeNodePressure, ward.CodeTrap,
		ward.CodeOutputLimit, ward.CodeLeaseExpired, ward.CodeCodeRejected, ward.CodeCancelled:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// retryAfter returns the Retry-After header value for d: whole seconds,
// rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

// writeError writes err as a JSON error response. An error without a code,
// or with code internal, is logged with its cause and answered with a
// generic message naming only the request ID.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var we *ward.Error
	if !errors.As(err, &we) || we.Code == ward.CodeInternal {
		s.log.ErrorContext(r.Context(), "internal error", "request_id", requestID(r.Context()),
			"method", r.Method, "path", r.URL.Path, "err", err)
		we = &ward.Error{Code: ward.CodeInternal, Message: "internal error (request " + requestID(r.Context()) + ")"}
	}
	s.writeErrorBody(w, r, statusOf(we.Code), errorBody{Error: errorDetail{Code: we.Code, Message: we.Error(), Field: we.Field}, retryAfter: we.RetryAfter})
}

// writeErrorBody writes an error body with a status, adding the headers some
// codes call for.
func (s *Server) writeErrorBody(w http.ResponseWriter, r *http.Request, status int, b errorBody) {
	if sw, ok := w.(interface{ setOutcome(ward.Code) }); ok {
		sw.setOutcome(b.Error.Code)
	}
	if b.Error.Code == ward.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retryAfter(b.retryAfter))
	}
	s.writeJSON(w, r, status, b)
}

// writeJSON writes v as a JSON response.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.ErrorContext(r.Context(), "encode response", "request_id", requestID(r.Context()), "err", err)
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if _, err := w.Write(append(b, '\n')); err != nil {
		s.log.DebugContext(r.Context(), "write response", "request_id", requestID(r.Context()), "err", err)
	}
}
