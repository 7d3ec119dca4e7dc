package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wardhq/ward"
)

// APIError is a non-2xx answer from the server. errors.Is matches it against
// a *ward.Error with the same Code (the root package's sentinels), and
// errors.As converts it to a *ward.Error.
type APIError struct {
	Status     int           // HTTP status
	Code       ward.Code     // the API's stable code; derived from Status if the body had none
	Message    string        // the server's message, stripped of control characters
	Field      string        // the request field at fault, when one is
	TaskID     string        // the task a failed synchronous invoke ran as
	RetryAfter time.Duration // from the Retry-After header (429, 503), else 0
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	s := string(e.Code) + ": " + msg
	if e.TaskID != "" {
		s += " (task " + e.TaskID + ")"
	}
	return s
}

// Is reports whether target is a *ward.Error or *APIError with e's code.
func (e *APIError) Is(target error) bool {
	switch t := target.(type) {
	case *ward.Error:
		return t.Code == e.Code
	case *APIError:
		return t.Code == e.Code
	}
	return false
}

// As converts e to a *ward.Error when target is a **ward.Error.
func (e *APIError) As(target any) bool {
	p, ok := target.(**ward.Error)
	if ok {
		*p = &ward.Error{Code: e.Code, Message: e.Message, Field: e.Field}
	}
	return ok
}

// Bounds on what an error answer may put into an APIError.
const (
	maxMessageLen = 1024
	maxFieldLen   = 256
	maxCodeLen    = 64
	maxRetryAfter = 24 * time.Hour
)

// errorBody is the JSON shape of an API error answer.
type errorBody struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
	TaskID string `json:"task_id"`
}

// decodeError turns a non-2xx answer into an *APIError. It never fails: a
// body that is not the API's error JSON gives a code derived from the status
// and a generic message (the body is not quoted: it may echo anything).
func decodeError(status int, retryAfter string, body []byte, now time.Time) *APIError {
	e := &APIError{Status: status, RetryAfter: parseRetryAfter(retryAfter, now)}
	var b errorBody
	if err := json.Unmarshal(body, &b); err == nil && b.Error != nil {
		if validCode(b.Error.Code) {
			e.Code = ward.Code(b.Error.Code)
		}
		e.Message = clean(b.Error.Message, maxMessageLen)
		e.Field = clean(b.Error.Field, maxFieldLen)
		if validID(b.TaskID) {
			e.TaskID = b.TaskID
		}
	}
	if e.Code == "" {
		e.Code = codeForStatus(status)
		if e.Message == "" {
			e.Message = fmt.Sprintf("unexpected answer: HTTP %d %s", status, http.StatusText(status))
		}
	}
	return e
}

// codeForStatus guesses a code for an error answer without one (a proxy's
// page, an empty body).
func codeForStatus(status int) ward.Code {
	switch status {
	case http.StatusBadRequest:
		return ward.CodeInvalidArgument
	case http.StatusUnauthorized:
		return ward.CodeUnauthenticated
	case http.StatusForbidden:
		return ward.CodeForbidden
	case http.StatusNotFound:
		return ward.CodeNotFound
	case http.StatusMethodNotAllowed:
		return ward.CodeMethodNotAllowed
	case http.StatusConflict:
		return ward.CodeInvalidState
	case http.StatusRequestEntityTooLarge:
		return ward.CodeBodyTooLarge
	case http.StatusUnsupportedMediaType:
		return ward.CodeUnsupportedMedia
	case http.StatusTooManyRequests:
		return ward.CodeFunctionBusy
	case http.StatusBadGateway:
		return ward.CodeTaskFailed
	case http.StatusServiceUnavailable:
		return ward.CodeUnavailable
	case http.StatusGatewayTimeout:
		return ward.CodeTimeout
	}
	return ward.CodeInternal
}

// validCode reports whether s is a plausible stable code: snake_case ASCII.
func validCode(s string) bool {
	if s == "" || len(s) > maxCodeLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// clean makes server text safe to print: control and format characters
// (such as bidi overrides) become spaces,
// invalid UTF-8 becomes U+FFFD, and it is cut to at most max bytes.
func clean(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// Anything unreadable or in the past is 0; the result is capped at a day.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
