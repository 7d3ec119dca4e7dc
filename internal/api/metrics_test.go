package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
)

// requestLog is a RequestObserver that keeps "route status" lines.
type requestLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *requestLog) Request(route string, status int, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d < 0 {
		route += " (negative duration)"
	}
	l.lines = append(l.lines, fmt.Sprintf("%s %d", route, status))
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// withMetricsServer serves e's stack again with a metrics handler and a
// request observer; e.do then talks to it.
func withMetricsServer(e *testEnv, h http.Handler, obs RequestObserver) {
	s := New(Config{
		Store: e.st, Queue: e.q, Auth: e.authn, Issuer: e.iss, Code: e.server.code, Audit: e.audit,
		Now: e.clock.Now, Runners: e.q, Metrics: h, Requests: obs,
	})
	e.srv = httptest.NewServer(s.Handler())
	e.t.Cleanup(e.srv.Close)
}

// TestMetricsRoute: GET /metrics answers admin tokens only; project tokens,
// even those holding metrics:read, get 403; no token 401.
func TestMetricsRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Without a metrics handler the route says so.
	e.do("GET", "/metrics", e.admin, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")

	withMetricsServer(e, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "ward_test_metric 1")
	}), nil)
	r := e.do("GET", "/metrics", e.admin, nil).wantStatus(t, http.StatusOK)
	if string(r.body) != "ward_test_metric 1\n" {
		t.Fatalf("admin got %q", r.body)
	}
	for _, role := range []ward.Role{ward.RoleOwner, ward.RoleDeveloper, ward.RoleSubmitter, ward.RoleViewer} {
		e.do("GET", "/metrics", e.token(role, "alpha"), nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	}
	e.do("GET", "/metrics", e.token(ward.RoleRunner, ""), nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	e.do("GET", "/metrics", "", nil).wantError(t, http.StatusUnauthorized, ward.CodeUnauthenticated, "")
	e.do("GET", "/metrics", "not-a-token", nil).wantError(t, http.StatusUnauthorized, ward.CodeUnauthenticated, "")
	e.do("POST", "/metrics", e.admin, nil).wantError(t, http.StatusMethodNotAllowed, ward.CodeMethodNotAllowed, "")
}

// TestRequestMetrics: every request is told with its route pattern, never
// its path, and the status it got; a path no route matches is told as "".
func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	log := &requestLog{}
	withMetricsServer(e, nil, log)
	e.function("alpha", "fn", ward.DefaultSpec())
	viewer := e.token(ward.RoleViewer, "alpha")
	log.take()

	e.do("POST", "/v1/projects/alpha/tasks", e.admin, ward.SubmitRequest{Function: "fn", DelayS: 60}).wantStatus(t, http.StatusAccepted)
	e.do("POST", "/v1/projects/alpha/tasks", e.admin, ward.SubmitRequest{Function: "nope"}).wantStatus(t, http.StatusNotFound)
	e.do("POST", "/v1/projects/alpha/tasks", viewer, ward.SubmitRequest{Function: "fn"}).wantStatus(t, http.StatusForbidden)
	e.do("GET", "/v1/projects/beta/tasks/t_0123", viewer, nil).wantStatus(t, http.StatusNotFound)
	e.do("GET", "/no/such/route", e.admin, nil).wantStatus(t, http.StatusNotFound)
	e.do("DELETE", "/healthz", "", nil).wantStatus(t, http.StatusMethodNotAllowed)
	e.do("GET", "/healthz", "", nil).wantStatus(t, http.StatusOK)
	e.do("GET", "/metrics", e.admin, nil).wantStatus(t, http.StatusNotFound)

	want := []string{
		"POST /v1/projects/{p}/tasks 202",
		"POST /v1/projects/{p}/tasks 404",
		"POST /v1/projects/{p}/tasks 403",
		"GET /v1/projects/{p}/tasks/{id} 404",
		" 404",
		" 405",
		"GET /healthz 200",
		"GET /metrics 404",
	}
	got := log.take()
	if !slices.Equal(got, want) {
		t.Fatalf("requests told:\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
