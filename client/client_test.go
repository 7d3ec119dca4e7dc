package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
)

const testToken = "tok.secret-value"

// seen is one request as the fake server received it.
type seen struct {
	Method, RawPath, Query string
	Header                 http.Header
	Body                   []byte
}

// reply is what the fake server answers.
type reply struct {
	status int
	header map[string]string
	body   string
}

// fake is an httptest server that records requests and answers from a script.
type fake struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []seen
	// answer returns the reply for the n-th request (0-based).
	answer func(n int, r *http.Request) reply
}

func newFake(t testing.TB, answer func(n int, r *http.Request) reply) *fake {
	t.Helper()
	f := &fake{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		n := len(f.got)
		f.got = append(f.got, seen{Method: r.Method, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		f.mu.Unlock()
		rep := f.answer(n, r)
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		if rep.status == 0 {
			rep.status = http.StatusOK
		}
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.got...)
}

func fixed(status int, body string) func(int, *http.Request) reply {
	return func(int, *http.Request) reply { return reply{status: status, body: body} }
}

func newTestClient(t testing.TB, f *fake, opts ...Option) *Client {
	t.Helper()
	c, err := New(f.srv.URL, testToken, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.minPause, c.maxPause = time.Microsecond, time.Microsecond
	return c
}

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("request body = %s, want %s", got, want)
	}
}

const taskJSON = `{"id":"t_1","project":"p","function":"resize","status":"queued","priority":1,"attempts":0,"max_attempts":3,"timeout_s":30,"created_at":"2026-01-02T03:04:05Z","run_at":"2026-01-02T03:04:05Z","labels":{"k":"v"},"payload_size":2}`

const statsJSON = `{"window_s":90,"at":"2026-01-02T03:04:05Z","functions":[{"function":"resize","queued":3,"delayed":1,"running":2,"submitted":9,"finished":5,"failed":1,"wait_p50_ms":2,"wait_p95_ms":12.5}],"total":{"queued":3,"delayed":1,"running":2,"submitted":9,"finished":5,"failed":1}}`

const functionJSON = `{"project":"p","name":"resize","spec":{"runtime":"wasm","limits":{"memory_mb":64,"timeout_s":30,"max_concurrency":0,"max_payload_kb":256},"retries":{"max_attempts":1,"backoff_s":5},"input":{},"retention_days":7},"code_digest":"sha256:ab","code_version":2,"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}`

func TestRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name      string
		call      func(c *Client) (any, error)
		status    int
		respBody  string
		respHdr   map[string]string
		method    string
		path      string
		query     string
		ctype     string
		reqJSON   string // request body compared as JSON
		reqRaw    string // request body compared as bytes (when reqJSON is empty)
		noAuth    bool
		check     func(t *testing.T, got any)
		wantNoErr bool
	}{
		{
			name:     "CreateProject",
			call:     func(c *Client) (any, error) { return c.CreateProject(ctx, "acme") },
			status:   201,
			respBody: `{"name":"acme","created_at":"2026-01-02T03:04:05Z"}`,
			method:   "POST", path: "/v1/projects", ctype: "application/json", reqJSON: `{"name":"acme"}`,
			check: func(t *testing.T, got any) {
				p := got.(ward.Project)
				if p.Name != "acme" || !p.CreatedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
					t.Errorf("project = %+v", p)
				}
			},
		},
		{
			name:     "ListProjects",
			call:     func(c *Client) (any, error) { return c.ListProjects(ctx) },
			respBody: `{"projects":[{"name":"a","created_at":"2026-01-02T03:04:05Z"},{"name":"b","created_at":"2026-01-02T03:04:05Z"}]}`,
			method:   "GET", path: "/v1/projects",
			check: func(t *testing.T, got any) {
				ps := got.([]ward.Project)
				if len(ps) != 2 || ps[0].Name != "a" || ps[1].Name != "b" {
					t.Errorf("projects = %+v", ps)
				}
			},
		},
		{
			name: "CreateToken",
			call: func(c *Client) (any, error) {
				return c.CreateToken(ctx, "p", ward.CreateTokenRequest{Role: ward.RoleSubmitter, TTL: "1h", Name: "ci"})
			},
			status:   201,
			respBody: `{"token":"new.jwt","id":"tok_1","expires_at":"2026-01-02T04:04:05Z"}`,
			method:   "POST", path: "/v1/projects/p/tokens", ctype: "application/json",
			reqJSON: `{"role":"submitter","ttl":"1h","name":"ci"}`,
			check: func(t *testing.T, got any) {
				tr := got.(ward.CreateTokenResponse)
				if tr.Token != "new.jwt" || tr.ID != "tok_1" || tr.ExpiresAt.IsZero() {
					t.Errorf("token = %+v", tr)
				}
			},
		},
		{
			name:   "RevokeToken",
			call:   func(c *Client) (any, error) { return nil, c.RevokeToken(ctx, "p", "tok_1") },
			status: 204,
			method: "DELETE", path: "/v1/projects/p/tokens/tok_1",
		},
		{
			name: "PutFunction",
			call: func(c *Client) (any, error) {
				return c.PutFunction(ctx, "p", "resize", ward.FunctionSpec{Limits: ward.Limits{MemoryMB: 128}})
			},
			status: 201, respBody: functionJSON,
			method: "PUT", path: "/v1/projects/p/functions/resize", ctype: "application/json",
			reqJSON: `{"runtime":"","limits":{"memory_mb":128,"timeout_s":0,"max_concurrency":0,"max_payload_kb":0},"retries":{"max_attempts":0,"backoff_s":0},"input":{},"retention_days":0}`,
			check: func(t *testing.T, got any) {
				f := got.(ward.Function)
				if f.Name != "resize" || f.CodeVersion != 2 || f.Spec.Limits.MemoryMB != 64 {
					t.Errorf("function = %+v", f)
				}
			},
		},
		{
			name: "UploadCode",
			call: func(c *Client) (any, error) {
				return c.UploadCode(ctx, "p", "resize", []byte("\x00asm\x01\x00\x00\x00"))
			},
			respBody: `{"digest":"sha256:ab","version":3,"size":8,"scan":"ok"}`,
			method:   "PUT", path: "/v1/projects/p/functions/resize/code", ctype: "application/wasm",
			reqRaw: "\x00asm\x01\x00\x00\x00",
			check: func(t *testing.T, got any) {
				if u := got.(ward.CodeUploadResponse); u != (ward.CodeUploadResponse{Digest: "sha256:ab", Version: 3, Size: 8, Scan: "ok"}) {
					t.Errorf("upload = %+v", u)
				}
			},
		},
		{
			name:     "GetFunction",
			call:     func(c *Client) (any, error) { return c.GetFunction(ctx, "p", "resize") },
			respBody: functionJSON,
			method:   "GET", path: "/v1/projects/p/functions/resize",
			check: func(t *testing.T, got any) {
				if f := got.(ward.Function); f.CodeDigest != "sha256:ab" {
					t.Errorf("function = %+v", f)
				}
			},
		},
		{
			name:     "ListFunctions",
			call:     func(c *Client) (any, error) { return c.ListFunctions(ctx, "p") },
			respBody: `{"functions":[` + functionJSON + `]}`,
			method:   "GET", path: "/v1/projects/p/functions",
			check: func(t *testing.T, got any) {
				if fs := got.([]ward.Function); len(fs) != 1 || fs[0].Name != "resize" {
					t.Errorf("functions = %+v", fs)
				}
			},
		},
		{
			name:   "DeleteFunction",
			call:   func(c *Client) (any, error) { return nil, c.DeleteFunction(ctx, "p", "resize") },
			status: 204,
			method: "DELETE", path: "/v1/projects/p/functions/resize",
		},
		{
			name:     "PutConfig global",
			call:     func(c *Client) (any, error) { return c.PutConfig(ctx, "p", "", ward.Config{"A": "1"}) },
			respBody: `{"A":"1"}`,
			method:   "PUT", path: "/v1/projects/p/config", ctype: "application/json", reqJSON: `{"A":"1"}`,
			check: func(t *testing.T, got any) {
				if c := got.(ward.Config); !reflect.DeepEqual(c, ward.Config{"A": "1"}) {
					t.Errorf("config = %v", c)
				}
			},
		},
		{
			name:     "PutConfig nil is an empty object",
			call:     func(c *Client) (any, error) { return c.PutConfig(ctx, "p", "resize", nil) },
			respBody: `{}`,
			method:   "PUT", path: "/v1/projects/p/functions/resize/config", ctype: "application/json", reqJSON: `{}`,
		},
		{
			name:     "GetConfig local",
			call:     func(c *Client) (any, error) { return c.GetConfig(ctx, "p", "resize") },
			respBody: `{"B":"2"}`,
			method:   "GET", path: "/v1/projects/p/functions/resize/config",
			check: func(t *testing.T, got any) {
				if c := got.(ward.Config); c["B"] != "2" {
					t.Errorf("config = %v", c)
				}
			},
		},
		{
			name: "Submit",
			call: func(c *Client) (any, error) {
				return c.Submit(ctx, "p", ward.SubmitRequest{Function: "resize", Payload: json.RawMessage(`{"x":1}`), Priority: 1, Labels: map[string]string{"k": "v"}})
			},
			status: 202, respBody: taskJSON,
			method: "POST", path: "/v1/projects/p/tasks", ctype: "application/json",
			reqJSON: `{"function":"resize","payload":{"x":1},"priority":1,"labels":{"k":"v"}}`,
			check: func(t *testing.T, got any) {
				tk := got.(ward.Task)
				if tk.ID != "t_1" || tk.Status != ward.StatusQueued || tk.MaxAttempts != 3 || tk.Labels["k"] != "v" {
					t.Errorf("task = %+v", tk)
				}
			},
		},
		{
			name: "Submit repeated idempotency key answers 200",
			call: func(c *Client) (any, error) {
				return c.Submit(ctx, "p", ward.SubmitRequest{Function: "resize", IdempotencyKey: "k1"})
			},
			status: 200, respBody: taskJSON,
			method: "POST", path: "/v1/projects/p/tasks", ctype: "application/json",
			reqJSON: `{"function":"resize","idempotency_key":"k1"}`,
		},
		{
			name: "SubmitBatch",
			call: func(c *Client) (any, error) {
				return c.SubmitBatch(ctx, "p", []ward.SubmitRequest{{Function: "a"}, {Function: "b", PayloadB64: []byte{0xff}}})
			},
			status: 202, respBody: `{"tasks":[` + taskJSON + `,` + strings.Replace(taskJSON, "t_1", "t_2", 1) + `]}`,
			method: "POST", path: "/v1/projects/p/tasks/batch", ctype: "application/json",
			reqJSON: `{"tasks":[{"function":"a"},{"function":"b","payload_b64":"/w=="}]}`,
			check: func(t *testing.T, got any) {
				ts := got.([]ward.Task)
				if len(ts) != 2 || ts[0].ID != "t_1" || ts[1].ID != "t_2" {
					t.Errorf("tasks = %+v", ts)
				}
			},
		},
		{
			name: "ListTasks",
			call: func(c *Client) (any, error) {
				return c.ListTasks(ctx, "p", ListTasksOptions{Function: "resize", Status: ward.StatusFailed, Limit: 5, Cursor: "c/1+2"})
			},
			respBody: `{"tasks":[` + taskJSON + `],"next_cursor":"c2"}`,
			method:   "GET", path: "/v1/projects/p/tasks", query: "cursor=c%2F1%2B2&function=resize&limit=5&status=failed",
			check: func(t *testing.T, got any) {
				l := got.(ward.TaskList)
				if len(l.Tasks) != 1 || l.NextCursor != "c2" {
					t.Errorf("list = %+v", l)
				}
			},
		},
		{
			name: "Stats",
			call: func(c *Client) (any, error) {
				return c.Stats(ctx, "p", StatsOptions{Window: 90 * time.Second, Function: "resize"})
			},
			respBody: statsJSON,
			method:   "GET", path: "/v1/projects/p/stats", query: "function=resize&window=1m30s",
			check: func(t *testing.T, got any) {
				s := got.(ward.Stats)
				if s.WindowS != 90 || len(s.Functions) != 1 || s.Functions[0].Function != "resize" || s.Functions[0].Queued != 3 ||
					s.Functions[0].WaitP95Ms == nil || *s.Functions[0].WaitP95Ms != 12.5 || s.Total.Failed != 1 || s.Total.WaitP50Ms != nil {
					t.Errorf("stats = %+v", s)
				}
			},
		},
		{
			name:     "Stats default window",
			call:     func(c *Client) (any, error) { return c.Stats(ctx, "p", StatsOptions{}) },
			respBody: `{"window_s":60,"at":"2026-01-02T03:04:05Z","functions":[],"total":{"queued":0,"delayed":0,"running":0,"submitted":0,"finished":0,"failed":0}}`,
			method:   "GET", path: "/v1/projects/p/stats",
		},
		{
			name:     "ListTasks empty options and null list",
			call:     func(c *Client) (any, error) { return c.ListTasks(ctx, "p", ListTasksOptions{}) },
			respBody: `{"tasks":null}`,
			method:   "GET", path: "/v1/projects/p/tasks",
		},
		{
			name:     "GetTask",
			call:     func(c *Client) (any, error) { return c.GetTask(ctx, "p", "t_1") },
			respBody: taskJSON,
			method:   "GET", path: "/v1/projects/p/tasks/t_1",
		},
		{
			name:     "WaitTask",
			call:     func(c *Client) (any, error) { return c.WaitTask(ctx, "p", "t_1", 30*time.Second) },
			respBody: taskJSON,
			method:   "GET", path: "/v1/projects/p/tasks/t_1", query: "wait=30s",
		},
		{
			name:     "WaitTask clamps to MaxWait",
			call:     func(c *Client) (any, error) { return c.WaitTask(ctx, "p", "t_1", 5*time.Minute) },
			respBody: taskJSON,
			method:   "GET", path: "/v1/projects/p/tasks/t_1", query: "wait=1m0s",
		},
		{
			name:     "Result",
			call:     func(c *Client) (any, error) { return c.Result(ctx, "p", "t_1") },
			respBody: "\x00raw\xffbytes",
			method:   "GET", path: "/v1/projects/p/tasks/t_1/result",
			check: func(t *testing.T, got any) {
				if b := got.([]byte); string(b) != "\x00raw\xffbytes" {
					t.Errorf("result = %q", b)
				}
			},
		},
		{
			name:     "Result empty is not nil",
			call:     func(c *Client) (any, error) { return c.Result(ctx, "p", "t_1") },
			respBody: "",
			method:   "GET", path: "/v1/projects/p/tasks/t_1/result",
			check: func(t *testing.T, got any) {
				if b := got.([]byte); b == nil || len(b) != 0 {
					t.Errorf("result = %#v", b)
				}
			},
		},
		{
			name:     "Log",
			call:     func(c *Client) (any, error) { return c.Log(ctx, "p", "t_1") },
			respBody: "line 1\n",
			method:   "GET", path: "/v1/projects/p/tasks/t_1/log",
			check: func(t *testing.T, got any) {
				if b := got.([]byte); string(b) != "line 1\n" {
					t.Errorf("log = %q", b)
				}
			},
		},
		{
			name:     "Payload",
			call:     func(c *Client) (any, error) { return c.Payload(ctx, "p", "t_1") },
			respBody: `{"x":1}`,
			method:   "GET", path: "/v1/projects/p/tasks/t_1/payload",
		},
		{
			name:     "CancelTask",
			call:     func(c *Client) (any, error) { return c.CancelTask(ctx, "p", "t_1") },
			respBody: strings.Replace(taskJSON, "queued", "cancelled", 1),
			method:   "POST", path: "/v1/projects/p/tasks/t_1/cancel",
			check: func(t *testing.T, got any) {
				if tk := got.(ward.Task); tk.Status != ward.StatusCancelled {
					t.Errorf("status = %s", tk.Status)
				}
			},
		},
		{
			name:     "RetryTask",
			call:     func(c *Client) (any, error) { return c.RetryTask(ctx, "p", "t_1") },
			respBody: taskJSON,
			method:   "POST", path: "/v1/projects/p/tasks/t_1/retry",
		},
		{
			name:     "Invoke JSON payload",
			call:     func(c *Client) (any, error) { return c.Invoke(ctx, "p", "resize", []byte(`{"x":1}`)) },
			respBody: `{"ok":true}`, respHdr: map[string]string{"Ward-Task-Id": "t_9"},
			method: "POST", path: "/v1/projects/p/functions/resize/invoke", ctype: "application/json", reqRaw: `{"x":1}`,
			check: func(t *testing.T, got any) {
				r := got.(InvokeResult)
				if r.TaskID != "t_9" || string(r.Body) != `{"ok":true}` {
					t.Errorf("invoke = %+v", r)
				}
			},
		},
		{
			name:     "Invoke binary payload",
			call:     func(c *Client) (any, error) { return c.Invoke(ctx, "p", "resize", []byte{0xff, 0}) },
			respBody: "", respHdr: map[string]string{"Ward-Task-Id": "t_9"},
			method: "POST", path: "/v1/projects/p/functions/resize/invoke", ctype: "application/octet-stream", reqRaw: "\xff\x00",
		},
		{
			name:     "Health",
			call:     func(c *Client) (any, error) { return nil, c.Health(ctx) },
			respBody: `{"status":"ok"}`,
			method:   "GET", path: "/healthz", noAuth: true,
		},
		{
			name:     "names are escaped as one segment",
			call:     func(c *Client) (any, error) { return c.GetFunction(ctx, "a b", "x/../y?z") },
			respBody: functionJSON,
			method:   "GET", path: "/v1/projects/a%20b/functions/x%2F..%2Fy%3Fz",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(int, *http.Request) reply {
				return reply{status: tt.status, body: tt.respBody, header: tt.respHdr}
			})
			c := newTestClient(t, f, WithUserAgent("ward-test/1"))
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.RawPath != tt.path || r.Query != tt.query {
				t.Errorf("request = %s %s ?%s, want %s %s ?%s", r.Method, r.RawPath, r.Query, tt.method, tt.path, tt.query)
			}
			wantAuth := "Bearer " + testToken
			if tt.noAuth {
				wantAuth = ""
			}
			if a := r.Header.Get("Authorization"); a != wantAuth {
				t.Errorf("Authorization = %q, want %q", a, wantAuth)
			}
			if ua := r.Header.Get("User-Agent"); ua != "ward-test/1" {
				t.Errorf("User-Agent = %q", ua)
			}
			wantAccept := "application/json"
			if _, raw := got.([]byte); raw || tt.name == "RevokeToken" || tt.name == "DeleteFunction" || strings.HasPrefix(tt.name, "Invoke") {
				wantAccept = ""
			}
			if a := r.Header.Get("Accept"); a != wantAccept {
				t.Errorf("Accept = %q, want %q", a, wantAccept)
			}
			if ct := r.Header.Get("Content-Type"); ct != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", ct, tt.ctype)
			}
			switch {
			case tt.reqJSON != "":
				jsonEqual(t, r.Body, tt.reqJSON)
			case string(r.Body) != tt.reqRaw:
				t.Errorf("request body = %q, want %q", r.Body, tt.reqRaw)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		rep    reply
		call   func(c *Client) error
		want   APIError
		target error // errors.Is must match
	}{
		{
			name: "not found",
			rep:  reply{status: 404, body: `{"error":{"code":"not_found","message":"task t_1 not found"}}`},
			call: func(c *Client) error { _, err := c.GetTask(ctx, "p", "t_1"); return err },
			want: APIError{Status: 404, Code: ward.CodeNotFound, Message: "task t_1 not found"}, target: ward.ErrNotFound,
		},
		{
			name: "field",
			rep:  reply{status: 400, body: `{"error":{"code":"invalid_argument","message":"tasks[3].priority: out of range","field":"tasks[3].priority"}}`},
			call: func(c *Client) error {
				_, err := c.SubmitBatch(ctx, "p", []ward.SubmitRequest{{Function: "f"}})
				return err
			},
			want: APIError{Status: 400, Code: ward.CodeInvalidArgument, Message: "tasks[3].priority: out of range", Field: "tasks[3].priority"},
		},
		{
			name: "busy with Retry-After",
			rep:  reply{status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"error":{"code":"function_concurrency","message":"busy"}}`},
			call: func(c *Client) error { _, err := c.Invoke(ctx, "p", "f", nil); return err },
			want: APIError{Status: 429, Code: ward.CodeFunctionBusy, Message: "busy", RetryAfter: 7 * time.Second}, target: ward.ErrFunctionBusy,
		},
		{
			name: "invoke task failed",
			rep:  reply{status: 502, body: `{"error":{"code":"exit_status","message":"exit status 3"},"task_id":"t_7"}`},
			call: func(c *Client) error { _, err := c.Invoke(ctx, "p", "f", []byte("x")); return err },
			want: APIError{Status: 502, Code: ward.CodeExitStatus, Message: "exit status 3", TaskID: "t_7"},
		},
		{
			name: "invoke timeout",
			rep:  reply{status: 504, body: `{"error":{"code":"timeout","message":"ran past 30s"},"task_id":"t_8"}`},
			call: func(c *Client) error { _, err := c.Invoke(ctx, "p", "f", []byte("x")); return err },
			want: APIError{Status: 504, Code: ward.CodeTimeout, Message: "ran past 30s", TaskID: "t_8"},
		},
		{
			name: "conflict on result",
			rep:  reply{status: 409, body: `{"error":{"code":"invalid_state","message":"task t_1 is running"}}`},
			call: func(c *Client) error { _, err := c.Result(ctx, "p", "t_1"); return err },
			want: APIError{Status: 409, Code: ward.CodeInvalidState, Message: "task t_1 is running"}, target: ward.ErrInvalidState,
		},
		{
			name: "already exists",
			rep:  reply{status: 409, body: `{"error":{"code":"already_exists","message":"project a exists"}}`},
			call: func(c *Client) error { _, err := c.CreateProject(ctx, "a"); return err },
			want: APIError{Status: 409, Code: ward.CodeAlreadyExists, Message: "project a exists"}, target: ward.ErrAlreadyExists,
		},
		{
			name: "proxy page without JSON",
			rep:  reply{status: 503, header: map[string]string{"Retry-After": "2"}, body: "<html>down " + testToken + "</html>"},
			call: func(c *Client) error { _, err := c.ListProjects(ctx); return err },
			want: APIError{Status: 503, Code: ward.CodeUnavailable, Message: "unexpected answer: HTTP 503 Service Unavailable", RetryAfter: 2 * time.Second},
		},
		{
			name: "empty 401",
			rep:  reply{status: 401},
			call: func(c *Client) error { return c.DeleteFunction(ctx, "p", "f") },
			want: APIError{Status: 401, Code: ward.CodeUnauthenticated, Message: "unexpected answer: HTTP 401 Unauthorized"},
		},
		{
			name: "garbage code falls back to the status",
			rep:  reply{status: 403, body: `{"error":{"code":"\u001b[31mEVIL","message":"no\u001b[2Jpe"}}`},
			call: func(c *Client) error { _, err := c.ListProjects(ctx); return err },
			want: APIError{Status: 403, Code: ward.CodeForbidden, Message: "no [2Jpe"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(int, *http.Request) reply { return tt.rep })
			c := newTestClient(t, f)
			err := tt.call(c)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not an *APIError", err, err)
			}
			if *ae != tt.want {
				t.Errorf("APIError = %+v, want %+v", *ae, tt.want)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.target)
			}
			if errors.Is(err, &ward.Error{Code: "some_other_code"}) {
				t.Errorf("errors.Is matched a different code")
			}
			if got := ward.CodeOf(err); got != tt.want.Code {
				t.Errorf("ward.CodeOf = %q, want %q", got, tt.want.Code)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q contains the token", err)
			}
			if !strings.HasPrefix(err.Error(), string(tt.want.Code)+": ") {
				t.Errorf("Error() = %q, want the code first", err)
			}
		})
	}
}

func TestBadResponses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		rep  reply
		call func(c *Client) error
	}{
		{"html", reply{body: "<html>hi</html>"}, func(c *Client) error { _, err := c.GetTask(ctx, "p", "t_1"); return err }},
		{"null", reply{body: "null"}, func(c *Client) error { _, err := c.GetTask(ctx, "p", "t_1"); return err }},
		{"array", reply{body: "[]"}, func(c *Client) error { _, err := c.GetConfig(ctx, "p", ""); return err }},
		{"trailing data", reply{body: taskJSON + "{}"}, func(c *Client) error { _, err := c.GetTask(ctx, "p", "t_1"); return err }},
		{"task without id", reply{body: `{"status":"queued"}`}, func(c *Client) error { _, err := c.GetTask(ctx, "p", "t_1"); return err }},
		{"unknown status", reply{body: strings.Replace(taskJSON, "queued", "sleeping", 1)}, func(c *Client) error { _, err := c.GetTask(ctx, "p", "t_1"); return err }},
		{"empty object is not a list", reply{body: `{}`}, func(c *Client) error { _, err := c.ListTasks(ctx, "p", ListTasksOptions{}); return err }},
		{"list key in other case", reply{body: `{"Projects":[]}`}, func(c *Client) error { _, err := c.ListProjects(ctx); return err }},
		{"config with a number", reply{body: `{"a":1}`}, func(c *Client) error { _, err := c.GetConfig(ctx, "p", ""); return err }},
		{"function without name", reply{body: `{"project":"p"}`}, func(c *Client) error { _, err := c.GetFunction(ctx, "p", "f"); return err }},
		{"token without token", reply{status: 201, body: `{"id":"x"}`}, func(c *Client) error {
			_, err := c.CreateToken(ctx, "p", ward.CreateTokenRequest{Role: ward.RoleViewer})
			return err
		}},
		{"upload without digest", reply{body: `{"version":1}`}, func(c *Client) error { _, err := c.UploadCode(ctx, "p", "f", nil); return err }},
		{"wrong 2xx status", reply{status: 200, body: `{"name":"a","created_at":"2026-01-02T03:04:05Z"}`}, func(c *Client) error { _, err := c.CreateProject(ctx, "a"); return err }},
		{"batch count mismatch", reply{status: 202, body: `{"tasks":[]}`}, func(c *Client) error {
			_, err := c.SubmitBatch(ctx, "p", []ward.SubmitRequest{{Function: "f"}})
			return err
		}},
		{"invoke without task id", reply{body: "ok"}, func(c *Client) error { _, err := c.Invoke(ctx, "p", "f", nil); return err }},
		{"invoke with a bad task id", reply{body: "ok", header: map[string]string{"Ward-Task-Id": "../t_1"}}, func(c *Client) error { _, err := c.Invoke(ctx, "p", "f", nil); return err }},
		{"stats without functions", reply{body: `{"window_s":60,"at":"2026-01-02T03:04:05Z","total":{}}`}, func(c *Client) error { _, err := c.Stats(ctx, "p", StatsOptions{}); return err }},
		{"stats without a window", reply{body: strings.Replace(statsJSON, `"window_s":90`, `"window_s":0`, 1)}, func(c *Client) error { _, err := c.Stats(ctx, "p", StatsOptions{}); return err }},
		{"stats row without a name", reply{body: strings.Replace(statsJSON, `"function":"resize",`, ``, 1)}, func(c *Client) error { _, err := c.Stats(ctx, "p", StatsOptions{}); return err }},
		{"stats with a negative count", reply{body: strings.Replace(statsJSON, `"queued":3`, `"queued":-3`, 1)}, func(c *Client) error { _, err := c.Stats(ctx, "p", StatsOptions{}); return err }},
		{"stats with more failed than finished", reply{body: strings.Replace(statsJSON, `"failed":1}}`, `"failed":6}}`, 1)}, func(c *Client) error { _, err := c.Stats(ctx, "p", StatsOptions{}); return err }},
		{"stats with a negative wait", reply{body: strings.Replace(statsJSON, `"wait_p50_ms":2`, `"wait_p50_ms":-2`, 1)}, func(c *Client) error { _, err := c.Stats(ctx, "p", StatsOptions{}); return err }},
		{"health not ok", reply{body: `{"status":"starting"}`}, func(c *Client) error { return c.Health(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(int, *http.Request) reply { return tt.rep })
			c := newTestClient(t, f)
			err := tt.call(c)
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error = %v, want ErrBadResponse", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		server, token string
		ok            bool
		base          string
	}{
		{"http://127.0.0.1:8080", "t", true, "http://127.0.0.1:8080"},
		{"https://ward.example/prefix/", "", true, "https://ward.example/prefix"},
		{"", "t", false, ""},
		{"127.0.0.1:8080", "t", false, ""},
		{"ftp://host", "t", false, ""},
		{"http://", "t", false, ""},
		{"http://user:pw@host", "t", false, ""},
		{"http://host/?a=b", "t", false, ""},
		{"http://host/#x", "t", false, ""},
		{"http://host", "bad token", false, ""},
		{"http://host", "bad\ntoken", false, ""},
		{"http://host", "bäd", false, ""},
	}
	for _, tt := range tests {
		c, err := New(tt.server, tt.token)
		if !tt.ok {
			if ward.CodeOf(err) != ward.CodeInvalidArgument {
				t.Errorf("New(%q, %q) error = %v, want invalid_argument", tt.server, tt.token, err)
			}
			if err != nil && tt.token != "t" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error %q contains the token", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tt.server, err)
			continue
		}
		if c.Server() != tt.base {
			t.Errorf("Server() = %q, want %q", c.Server(), tt.base)
		}
	}
	if _, err := New("http://host", "t", WithUserAgent("a\r\nX-Evil: 1")); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("user agent with CRLF: error = %v", err)
	}
}

func TestPathPrefix(t *testing.T) {
	t.Parallel()
	f := newFake(t, fixed(200, `{"projects":[]}`))
	c, err := New(f.srv.URL+"/ward/", testToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListProjects(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := f.requests()[0].RawPath; p != "/ward/v1/projects" {
		t.Errorf("path = %q", p)
	}
}

func TestBadPathSegments(t *testing.T) {
	t.Parallel()
	f := newFake(t, fixed(200, taskJSON))
	c := newTestClient(t, f)
	ctx := context.Background()
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.GetTask(ctx, "p", id); ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Errorf("GetTask(%q) error = %v, want invalid_argument", id, err)
		}
	}
	if _, err := c.ListFunctions(ctx, ""); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("empty project: error = %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent for bad segments", n)
	}
}

func TestNoRedirects(t *testing.T) {
	t.Parallel()
	elsewhere := newFake(t, fixed(200, `{"projects":[]}`))
	f := newFake(t, func(int, *http.Request) reply {
		return reply{status: http.StatusFound, header: map[string]string{"Location": elsewhere.srv.URL + "/v1/projects"}}
	})
	c := newTestClient(t, f)
	_, err := c.ListProjects(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusFound {
		t.Fatalf("error = %v, want an APIError with status 302", err)
	}
	if n := len(elsewhere.requests()); n != 0 {
		t.Errorf("the redirect was followed (%d requests)", n)
	}
}

func TestWithHTTPClient(t *testing.T) {
	t.Parallel()
	f := newFake(t, fixed(200, `{"status":"ok"}`))
	used := false
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := newTestClient(t, f, WithHTTPClient(hc))
	if err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !used {
		t.Error("the given http.Client was not used")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportErrorHasNoToken(t *testing.T) {
	t.Parallel()
	f := newFake(t, fixed(200, ""))
	c := newTestClient(t, f)
	f.srv.Close()
	_, err := c.ListProjects(context.Background())
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error %q contains the token", err)
	}
}

func TestAwaitTask(t *testing.T) {
	t.Parallel()
	states := []string{"queued", "running", "running", "succeeded"}
	f := newFake(t, func(n int, r *http.Request) reply {
		return reply{body: strings.Replace(taskJSON, "queued", states[min(n, len(states)-1)], 1)}
	})
	c := newTestClient(t, f)
	var seenStates []ward.Status
	tk, err := c.WatchTask(context.Background(), "p", "t_1", 10*time.Second, func(t ward.Task) { seenStates = append(seenStates, t.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != ward.StatusSucceeded {
		t.Errorf("status = %s", tk.Status)
	}
	want := []ward.Status{"queued", "running", "running", "succeeded"}
	if !reflect.DeepEqual(seenStates, want) {
		t.Errorf("progress = %v, want %v", seenStates, want)
	}
	for _, r := range f.requests() {
		if r.Query != "wait=10s" {
			t.Errorf("query = %q, want wait=10s", r.Query)
		}
	}

	f2 := newFake(t, fixed(200, strings.Replace(taskJSON, "queued", "failed", 1)))
	tk, err = newTestClient(t, f2).AwaitTask(context.Background(), "p", "t_1")
	if err != nil || tk.Status != ward.StatusFailed {
		t.Fatalf("AwaitTask = %v, %v", tk.Status, err)
	}
	if q := f2.requests()[0].Query; q != "wait=1m0s" {
		t.Errorf("AwaitTask query = %q", q)
	}
}

func TestAwaitTaskStopsWithContext(t *testing.T) {
	t.Parallel()
	f := newFake(t, fixed(200, taskJSON))
	c := newTestClient(t, f)
	c.minPause, c.maxPause = time.Hour, time.Hour // only the context can end the pause
	ctx, cancel := context.WithCancel(context.Background())
	_, err := c.WatchTask(ctx, "p", "t_1", time.Minute, func(ward.Task) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestAwaitTaskError(t *testing.T) {
	t.Parallel()
	f := newFake(t, fixed(404, `{"error":{"code":"not_found","message":"no"}}`))
	_, err := newTestClient(t, f).AwaitTask(context.Background(), "p", "t_1")
	if !errors.Is(err, ward.ErrNotFound) {
		t.Fatalf("error = %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"5", 5 * time.Second},
		{" 5 ", 5 * time.Second},
		{"-3", 0},
		{"abc", 0},
		{"99999999999999999999", 0},
		{"999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Add(1000 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestResponseCap(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("a"), maxBodyBytes+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) }))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Result(context.Background(), "p", "t_1"); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("error = %v, want ErrBadResponse", err)
	}
}
