package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/audit"
	"github.com/wardhq/ward/internal/auth"
	"github.com/wardhq/ward/internal/pki"
	"github.com/wardhq/ward/internal/queue"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/sandbox/wasm"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/sqlite"
)

// module returns a module of the sandboxtest suite, failing the test when
// there is none.
func module(t testing.TB, name string) []byte {
	t.Helper()
	m := sandboxtest.Module(name)
	if m == nil {
		t.Fatalf("sandboxtest has no module %q", name)
	}
	return m
}

// testClock is a settable clock shared by every component of a testEnv.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEnv is one test's complete API stack: SQLite in a temporary directory,
// a real issuer and authenticator with a fresh key, the real queue, the
// wasm sandbox as code checker and an audit log.
type testEnv struct {
	t         testing.TB
	ctx       context.Context
	clock     *testClock
	st        *sqlite.Store
	q         *queue.Service
	iss       *auth.Issuer
	authn     *auth.Authenticator
	audit     *audit.Log
	auditPath string
	server    *Server
	srv       *httptest.Server
	rejected  *rejections // the limit rejections the queue told
	ca        *pki.CA     // the cluster CA of the internal runner API

	admin string // an admin token
}

// envOptions adjust a testEnv.
type envOptions struct {
	queue  func(*queue.Service) Queue // wraps the real queue
	ready  func() error
	logger *slog.Logger // nil: errors are shown when the test fails
}

func newEnv(t testing.TB) *testEnv { return newEnvWith(t, envOptions{}) }

func newEnvWith(t testing.TB, opts envOptions) *testEnv {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "ward.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := auth.NewIssuer(key, "ward-test", "ward-api", clock.Now)
	authn := auth.NewAuthenticator(iss, st, clock.Now)
	root, err := seal.LoadOrCreateRootKeyFile(filepath.Join(dir, "root.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.OpenKeystore(ctx, filepath.Join(dir, "keystore.db"), root, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	rejected := &rejections{}
	q := queue.New(queue.Options{Store: st, Now: clock.Now, Tokens: keys, Observer: rejected})
	sb, err := wasm.New(ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	auditPath := filepath.Join(dir, "audit.log")
	al, err := audit.Open(auditPath, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })

	e := &testEnv{t: t, ctx: ctx, clock: clock, st: st, q: q, iss: iss, authn: authn, audit: al, auditPath: auditPath, rejected: rejected}
	var qi Queue = q
	if opts.queue != nil {
		qi = opts.queue(q)
	}
	if opts.logger == nil {
		// Errors are kept and shown when the test fails.
		var logs syncBuffer
		opts.logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
		t.Cleanup(func() {
			if t.Failed() && logs.String() != "" {
				t.Logf("server error log:\n%s", logs.String())
			}
		})
	}
	var ready func(context.Context) error
	if opts.ready != nil {
		ready = func(context.Context) error { return opts.ready() }
	}
	caDir := filepath.Join(dir, "ca")
	if _, err := pki.InitCA(caDir, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if e.ca, err = pki.LoadCA(caDir); err != nil {
		t.Fatal(err)
	}
	e.server = New(Config{
		Store: st, Queue: qi, Auth: authn, Issuer: iss, Code: sb, Audit: al,
		Logger: opts.logger, Now: clock.Now, Ready: ready,
		Runners: q, CA: e.ca,
	})
	e.srv = httptest.NewServer(e.server.Handler())
	t.Cleanup(e.srv.Close)

	e.admin = e.token(ward.RoleAdmin, "")
	for _, p := range []string{"alpha", "beta"} {
		if _, err := st.CreateProject(ctx, &store.CreateProjectParams{Name: p, Now: clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// rejections is a queue.Observer that keeps the limit rejections, as
// "project/function limit" lines.
type rejections struct {
	mu    sync.Mutex
	lines []string
}

func (r *rejections) Submitted(string, string, int) {}
func (r *rejections) Finished(string, string, ward.Status, ward.Code, time.Duration, time.Duration) {
}

func (r *rejections) Rejected(project, function string, limit ward.Code) {
	r.mu.Lock()
	r.lines = append(r.lines, project+"/"+function+" "+string(limit))
	r.mu.Unlock()
}

// take returns the rejections told since the last call.
func (r *rejections) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.lines = nil
	return out
}

// token mints and records a token for role in project.
func (e *testEnv) token(role ward.Role, project string) string {
	tok, _ := e.tokenWithID(role, project, 24*time.Hour)
	return tok
}

func (e *testEnv) tokenWithID(role ward.Role, project string, ttl time.Duration) (string, string) {
	e.t.Helper()
	now := e.clock.Now()
	p := auth.Principal{TokenID: auth.NewTokenID(), Project: project, Role: role, ExpiresAt: now.Add(ttl)}
	s, err := e.iss.Mint(p)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.CreateToken(e.ctx, &store.CreateTokenParams{Token: ward.Token{
		ID: p.TokenID, Project: project, Role: role, CreatedAt: now, ExpiresAt: p.ExpiresAt,
	}}); err != nil {
		e.t.Fatal(err)
	}
	return s, p.TokenID
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. body is nil (none), []byte or string (sent as is) or
// anything else (sent as JSON). hdr holds header name/value pairs.
func (e *testEnv) do(method, path, token string, body any, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// decode decodes a JSON response body into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// wantStatus fails the test unless the response has status.
func (r response) wantStatus(t testing.TB, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// wantError checks an error response's status, code and (if not "") field.
func (r response) wantError(t testing.TB, status int, code ward.Code, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	var b errorBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	if b.Error.Code != code {
		t.Fatalf("code = %q, want %q; body %s", b.Error.Code, code, r.body)
	}
	if b.Error.Message == "" {
		t.Errorf("error without message: %s", r.body)
	}
	if field != "" && b.Error.Field != field {
		t.Fatalf("field = %q, want %q; body %s", b.Error.Field, field, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
}

// function creates a function in project with the given spec and uploads
// the sandboxtest echo module as its code.
func (e *testEnv) function(project, name string, spec ward.FunctionSpec) ward.Function {
	e.t.Helper()
	e.do("PUT", "/v1/projects/"+project+"/functions/"+name, e.admin, spec).wantStatus(e.t, http.StatusCreated)
	e.do("PUT", "/v1/projects/"+project+"/functions/"+name+"/code", e.admin, module(e.t, "echo"),
		"Content-Type", "application/wasm").wantStatus(e.t, http.StatusOK)
	fn, err := e.st.GetFunction(e.ctx, project, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return fn
}

// submit submits a task with token and returns it.
func (e *testEnv) submit(project, token string, req ward.SubmitRequest) ward.Task {
	e.t.Helper()
	var task ward.Task
	e.do("POST", "/v1/projects/"+project+"/tasks", token, req).wantStatus(e.t, http.StatusAccepted).decode(e.t, &task)
	return task
}

// runAll plays a runner: it leases every due task and completes each with
// the result run returns.
func (e *testEnv) runAll(run func(j runner.Job) runner.Result) int {
	e.t.Helper()
	jobs, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "test-runner", Max: 100, FreeMemoryMB: 1 << 20})
	if err != nil {
		e.t.Fatal(err)
	}
	e.complete(jobs, run)
	return len(jobs)
}

func (e *testEnv) complete(jobs []runner.Job, run func(j runner.Job) runner.Result) {
	e.t.Helper()
	if len(jobs) == 0 {
		return
	}
	results := make([]runner.Result, len(jobs))
	for i, j := range jobs {
		results[i] = run(j)
		results[i].TaskID, results[i].LeaseID, results[i].Project = j.TaskID, j.LeaseID, j.Project
	}
	errs, err := e.q.Complete(e.ctx, results)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, err := range errs {
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

// echo succeeds with the payload as result and a log line.
func echo(j runner.Job) runner.Result {
	return runner.Result{Stdout: j.Payload, Stderr: []byte("log of " + j.TaskID + "\n")}
}

// fail fails with code.
func fail(code ward.Code) func(runner.Job) runner.Result {
	return func(runner.Job) runner.Result {
		one := 1
		return runner.Result{Code: code, Message: fmt.Sprintf("failed with %s", code), ExitCode: &one, Stderr: []byte("boom\n")}
	}
}

// auditEntries returns the audit log's lines, verified.
func (e *testEnv) auditEntries() []map[string]any {
	e.t.Helper()
	b, err := os.ReadFile(e.auditPath)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := audit.Verify(bytes.NewReader(b)); err != nil {
		e.t.Fatalf("audit log does not verify: %v", err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// lastAudit returns the last audit entry.
func (e *testEnv) lastAudit() map[string]any {
	e.t.Helper()
	es := e.auditEntries()
	if len(es) == 0 {
		e.t.Fatal("audit log is empty")
	}
	return es[len(es)-1]
}
