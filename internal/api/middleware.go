package api

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/audit"
	"github.com/wardhq/ward/internal/auth"
)

// requestIDHeader carries the request ID in every response.
const requestIDHeader = "Ward-Request-Id"

type ctxKey int

const requestIDKey ctxKey = iota

// requestID returns the request's ID, or "" outside a request.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// newRequestID returns 16 random hex digits. IDs are made here, never taken
// from the client, so logs can trust them.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set(requestIDHeader, id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// withServe wraps the handlers of one API: a panic becomes a logged 500
// that reveals nothing; then each request is logged in one line and told
// to obs (when not nil), a recovered panic's 500 included. The route is
// the pattern the inner mux set on the request ("" when none matched).
func (s *Server) withServe(next http.Handler, obs RequestObserver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "request_id", requestID(r.Context()),
					"method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if sw.status != 0 {
					// The response has begun; all we can do is cut it short.
					panic(http.ErrAbortHandler)
				}
				s.writeError(sw, r, errors.New("panic")) // logged above; answered as a generic internal error
			}
			status := cmp.Or(sw.status, http.StatusOK)
			d := time.Since(start)
			s.log.InfoContext(r.Context(), "request", "request_id", requestID(r.Context()), "method", r.Method,
				"route", r.Pattern, "path", r.URL.Path, "status", status, "bytes", sw.bytes, "duration", d)
			if obs != nil {
				obs.Request(r.Pattern, status, d)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// call is what a handler knows about an authorized request.
type call struct {
	principal auth.Principal
	project   string // the {p} path value, checked to exist and be visible
	// resource names what an audited call acted on; handlers set it when
	// the path does not say (a new token's ID, a new project's name).
	resource string
}

// wrap authenticates, authorizes and, for audited routes, audits a route.
// The checks run in this order: a valid token (401), the route's scope (403:
// it depends on the token alone, so it reveals nothing about the target),
// the project being visible to the token and existing (404 either way, so
// another project's resources look absent).
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authn.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			if ward.CodeOf(err) != ward.CodeInternal {
				err = errUnauthenticated()
			}
			s.writeError(w, r, err)
			return
		}
		c := &call{principal: p}
		if !rt.audited {
			if err := s.authorize(r, rt, c); err != nil {
				s.writeError(w, r, err)
				return
			}
			if err := rt.h(w, r, c); err != nil {
				s.writeError(w, r, err)
			}
			return
		}

		// An audited call is answered only after its record is written: the
		// response is buffered, and a failed record turns it into a 500.
		bw := &bufferedWriter{w: w, header: http.Header{}}
		err = s.authorize(r, rt, c)
		if err == nil {
			err = rt.h(bw, r, c)
		}
		if bw.streamed {
			// The handler recorded the call and answered as a stream.
			return
		}
		if err != nil {
			s.writeError(bw, r, err)
		}
		if err := s.recordOrWithhold(r, c, bw.outcome()); err != nil {
			s.writeError(w, r, err)
			return
		}
		bw.flush()
	})
}

// stream lets the handler of an audited route answer as a stream: the call
// is recorded now, before anything is sent, and the writer returned
// writes straight to the client. Outside an audited route it returns w.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, c *call) (http.ResponseWriter, error) {
	bw, ok := w.(*bufferedWriter)
	if !ok {
		return w, nil
	}
	if err := s.recordOrWithhold(r, c, audit.OutcomeOK); err != nil {
		return nil, err
	}
	bw.streamed = true
	return bw.w, nil
}

// recordOrWithhold records an audited call; when the record fails, the
// answer is withheld and an internal error returned to send instead.
func (s *Server) recordOrWithhold(r *http.Request, c *call, outcome string) error {
	if err := s.record(r, c, outcome); err != nil {
		s.log.ErrorContext(r.Context(), "audit record failed; response withheld", "request_id", requestID(r.Context()),
			"route", r.Pattern, "err", err)
		return errInternal()
	}
	return nil
}

// authorize runs a route's scope and project checks.
func (s *Server) authorize(r *http.Request, rt route, c *call) error {
	if rt.scope != "" && !c.principal.Can(rt.scope) {
		return ward.Errorf(ward.CodeForbidden, "this token's role (%s) lacks the %s scope", c.principal.Role, rt.scope)
	}
	if !rt.inProject() {
		return nil
	}
	p := r.PathValue("p")
	if !c.principal.InProject(p) {
		return errProjectNotFound(p)
	}
	if _, err := s.st.GetProject(r.Context(), p); err != nil {
		if errors.Is(err, ward.ErrNotFound) {
			return errProjectNotFound(p)
		}
		return err
	}
	c.project = p
	return nil
}

// record writes an audit event for an audited call.
func (s *Server) record(r *http.Request, c *call, outcome string) error {
	res := c.resource
	if res == "" {
		res = firstNonEmpty(r.PathValue("id"), r.PathValue("fn"))
	}
	return s.recordAs(r, c, r.Pattern, res, outcome)
}

// recordAs writes an audit event of the call's principal and project.
func (s *Server) recordAs(r *http.Request, c *call, action, resource, outcome string) error {
	// A client that has gone does not cancel the record: what it did (a
	// token minted, code stored) happened all the same.
	return s.audit.Record(context.WithoutCancel(r.Context()), audit.Event{
		Actor:    c.principal.TokenID,
		Role:     string(c.principal.Role),
		Action:   action,
		Project:  firstNonEmpty(c.project, r.PathValue("p")),
		Resource: resource,
		Outcome:  outcome,
	})
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// bufferedWriter holds a response until it is flushed.
type bufferedWriter struct {
	w      http.ResponseWriter
	header http.Header
	status int
	code   ward.Code // the error code written, if any
	buf    bytes.Buffer
	// streamed is set by stream: the call was recorded and answered on w
	// directly (a followed log).
	streamed bool
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.buf.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (b *bufferedWriter) Unwrap() http.ResponseWriter { return b.w }

// setOutcome is called by writeErrorBody with the error code it writes.
func (b *bufferedWriter) setOutcome(c ward.Code) { b.code = c }

// outcome is the audit outcome: "ok" or the error code.
func (b *bufferedWriter) outcome() string {
	switch {
	case b.code != "":
		return string(b.code)
	case b.status == 0 || b.status < 400:
		return audit.OutcomeOK
	}
	return http.StatusText(b.status)
}

// flush sends the held response.
func (b *bufferedWriter) flush() {
	h := b.w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	b.w.WriteHeader(b.status)
	_, _ = b.w.Write(b.buf.Bytes()) // a client gone mid-response is not an error of ours
}

// Errors used in several places.

func errUnauthenticated() error {
	return &ward.Error{Code: ward.CodeUnauthenticated, Message: "missing, invalid or expired token"}
}

func errInternal() error { return &ward.Error{Code: ward.CodeInternal, Message: "internal error"} }

func errUnavailable() error {
	return &ward.Error{Code: ward.CodeUnavailable, Message: "the server is not ready"}
}

func errNoRoute() error { return &ward.Error{Code: ward.CodeNotFound, Message: "no such route"} }

func errMethodNotAllowed(method string) error {
	return ward.Errorf(ward.CodeMethodNotAllowed, "method %s is not allowed on this route", method)
}

func errProjectNotFound(p string) error {
	return ward.Errorf(ward.CodeNotFound, "project %s not found", p)
}
