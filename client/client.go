// Package client is the Go client of the ward HTTP API (docs/api.md). It is
// used by the ward CLI, by programs that submit tasks, and by the end-to-end
// tests. Every method takes a context; failures the server reports come back
// as *APIError, which matches the root package's sentinels with errors.Is
// (errors.Is(err, ward.ErrNotFound)) and converts with errors.As to a
// *ward.Error, so ward.CodeOf works on them.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardhq/ward"
)

// DefaultUserAgent is the User-Agent sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "ward-go-client"

// MaxWait is the longest long-poll the server accepts; WaitTask clamps to it.
const MaxWait = 60 * time.Second

// Caps on what the client reads from the server.
const (
	maxBodyBytes  = 64 << 20 // task bodies and JSON answers
	maxErrorBytes = 64 << 10 // error answers
)

// ErrBadResponse is wrapped by errors about answers that are not what the API
// promises (not the expected JSON, a missing field, a body over the cap).
var ErrBadResponse = errors.New("unexpected response from server")

// Client calls one ward server with one token. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	hc        *http.Client
	userAgent string
	now       func() time.Time
	// minPause is the first pause AwaitTask takes when the server answers a
	// long poll early; it doubles up to maxPause.
	minPause, maxPause time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc. The default
// client has no overall timeout (contexts bound each call) and never follows
// redirects, so the token is never sent anywhere but the configured server.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client for the server at the base URL server (http or https,
// optionally with a path prefix) that authenticates with token. An empty
// token sends no Authorization header (enough for Health). Bad arguments
// give an invalid_argument *ward.Error; the token never appears in errors.
func New(server, token string, opts ...Option) (*Client, error) {
	u, err := parseServer(server)
	if err != nil {
		return nil, err
	}
	if !validToken(token) {
		return nil, &ward.Error{Code: ward.CodeInvalidArgument, Field: "token",
			Message: "token: must be printable ASCII without spaces"}
	}
	c := &Client{
		base:      u,
		token:     token,
		userAgent: DefaultUserAgent,
		now:       time.Now,
		minPause:  100 * time.Millisecond,
		maxPause:  5 * time.Second,
		hc: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, o := range opts {
		o(c)
	}
	if strings.ContainsAny(c.userAgent, "\r\n") {
		return nil, &ward.Error{Code: ward.CodeInvalidArgument, Field: "user_agent",
			Message: "user agent: must not contain line breaks"}
	}
	return c, nil
}

// Server returns the base URL the client talks to.
func (c *Client) Server() string { return c.base.String() }

func parseServer(server string) (*url.URL, error) {
	bad := func(format string, args ...any) error {
		return &ward.Error{Code: ward.CodeInvalidArgument, Field: "server",
			Message: "server: " + fmt.Sprintf(format, args...)}
	}
	if server == "" {
		return nil, bad("no server URL given")
	}
	u, err := url.Parse(server)
	if err != nil {
		return nil, bad("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, bad("scheme must be http or https, e.g. http://127.0.0.1:8080")
	case u.Host == "":
		return nil, bad("no host in URL")
	case u.User != nil:
		return nil, bad("credentials in the URL are not allowed; use a token")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, bad("the URL must not have a query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// validToken reports whether token can go into a header as is: visible ASCII
// only (a JWT is base64url and dots).
func validToken(token string) bool {
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] >= 0x7f {
			return false
		}
	}
	return true
}

// endpoint builds the URL of an API path from its segments; each segment is
// escaped on its own, so a name can never add path elements.
func (c *Client) endpoint(query url.Values, segs ...string) (string, error) {
	var raw, plain strings.Builder
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return "", &ward.Error{Code: ward.CodeInvalidArgument,
				Message: fmt.Sprintf("invalid path segment %q", s)}
		}
		raw.WriteString("/" + url.PathEscape(s))
		plain.WriteString("/" + s)
	}
	u := *c.base
	u.RawPath = c.base.EscapedPath() + raw.String()
	u.Path = c.base.Path + plain.String()
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u.String(), nil
}

// request describes one API call.
type request struct {
	method      string
	segs        []string
	query       url.Values
	body        []byte
	contentType string
	noAuth      bool
	wantJSON    bool // the answer is JSON (sets Accept)
}

// do sends r and returns the successful response's body and headers. A
// non-2xx answer becomes an *APIError.
func (c *Client) do(ctx context.Context, r request) (int, http.Header, []byte, error) {
	target, err := c.endpoint(r.query, r.segs...)
	if err != nil {
		return 0, nil, nil, err
	}
	what := r.method + " " + "/" + strings.Join(r.segs, "/")
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.wantJSON {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" && !r.noAuth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return resp.StatusCode, resp.Header, nil, decodeError(resp.StatusCode, resp.Header.Get("Retry-After"), data, c.now())
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: reading the answer: %w", what, err)
	}
	if len(data) > maxBodyBytes {
		return 0, nil, nil, fmt.Errorf("%s: %w: body over %d bytes", what, ErrBadResponse, maxBodyBytes)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// call sends r, checks the status is one of want and decodes the JSON answer
// into out (when out is not nil), validating it.
func (c *Client) call(ctx context.Context, r request, out validator, want ...int) error {
	_, err := c.callStatus(ctx, r, out, want...)
	return err
}

// callStatus is call that also returns the status answered.
func (c *Client) callStatus(ctx context.Context, r request, out validator, want ...int) (int, error) {
	r.wantJSON = out != nil
	status, _, data, err := c.do(ctx, r)
	if err != nil {
		return status, err
	}
	what := r.method + " /" + strings.Join(r.segs, "/")
	if !slices.Contains(want, status) {
		return status, fmt.Errorf("%s: %w: status %d", what, ErrBadResponse, status)
	}
	if out == nil {
		return status, nil
	}
	if err := decodeStrict(data, out); err != nil {
		return status, fmt.Errorf("%s: %w: %v", what, ErrBadResponse, err)
	}
	return status, nil
}

// jsonBody marshals v for a request body.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &ward.Error{Code: ward.CodeInvalidArgument, Message: "encoding the request: " + err.Error()}
	}
	return b, nil
}

func (c *Client) callJSON(ctx context.Context, method string, segs []string, in any, out validator, want ...int) error {
	r := request{method: method, segs: segs}
	if in != nil {
		b, err := jsonBody(in)
		if err != nil {
			return err
		}
		r.body, r.contentType = b, "application/json"
	}
	return c.call(ctx, r, out, want...)
}

// CreateProject creates a project (admin only).
func (c *Client) CreateProject(ctx context.Context, name string) (ward.Project, error) {
	var p project
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "projects"},
		ward.CreateProjectRequest{Name: name}, &p, http.StatusCreated)
	return ward.Project(p), err
}

// ListProjects lists the projects the token sees: all for an admin, else its own.
func (c *Client) ListProjects(ctx context.Context) ([]ward.Project, error) {
	var l projectList
	err := c.callJSON(ctx, http.MethodGet, []string{"v1", "projects"}, nil, &l, http.StatusOK)
	return l.Projects, err
}

// CreateToken mints a token in a project; the token string is in the answer
// only, never stored by the server.
func (c *Client) CreateToken(ctx context.Context, project string, req ward.CreateTokenRequest) (ward.CreateTokenResponse, error) {
	var t createdToken
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "projects", project, "tokens"}, req, &t, http.StatusCreated)
	return ward.CreateTokenResponse(t), err
}

// RevokeToken revokes the token with the given ID.
func (c *Client) RevokeToken(ctx context.Context, project, id string) error {
	return c.callJSON(ctx, http.MethodDelete, []string{"v1", "projects", project, "tokens", id}, nil, nil, http.StatusNoContent)
}

// PutFunction creates or updates a function's spec; omitted (zero) fields take
// the server's defaults.
func (c *Client) PutFunction(ctx context.Context, project, fn string, spec ward.FunctionSpec) (ward.Function, error) {
	var f function
	err := c.callJSON(ctx, http.MethodPut, []string{"v1", "projects", project, "functions", fn}, spec, &f,
		http.StatusOK, http.StatusCreated)
	return ward.Function(f), err
}

// UploadCode uploads a WebAssembly module as the function's code.
func (c *Client) UploadCode(ctx context.Context, project, fn string, wasm []byte) (ward.CodeUploadResponse, error) {
	return c.upload(ctx, project, fn, wasm, "application/wasm")
}

// UploadImage uploads a container image archive (an OCI image layout or a
// docker save archive, as a tar) as an oci function's code; the answer's
// digest is the image's manifest digest.
func (c *Client) UploadImage(ctx context.Context, project, fn string, archive []byte) (ward.CodeUploadResponse, error) {
	return c.upload(ctx, project, fn, archive, "application/x-tar")
}

func (c *Client) upload(ctx context.Context, project, fn string, code []byte, contentType string) (ward.CodeUploadResponse, error) {
	if code == nil {
		code = []byte{}
	}
	var u codeUpload
	err := c.call(ctx, request{
		method:      http.MethodPut,
		segs:        []string{"v1", "projects", project, "functions", fn, "code"},
		body:        code,
		contentType: contentType,
	}, &u, http.StatusOK)
	return ward.CodeUploadResponse(u), err
}

// GetFunction returns one function.
func (c *Client) GetFunction(ctx context.Context, project, fn string) (ward.Function, error) {
	var f function
	err := c.callJSON(ctx, http.MethodGet, []string{"v1", "projects", project, "functions", fn}, nil, &f, http.StatusOK)
	return ward.Function(f), err
}

// ListFunctions lists a project's functions.
func (c *Client) ListFunctions(ctx context.Context, project string) ([]ward.Function, error) {
	var l functionList
	err := c.callJSON(ctx, http.MethodGet, []string{"v1", "projects", project, "functions"}, nil, &l, http.StatusOK)
	return l.Functions, err
}

// DeleteFunction deletes a function; its tasks stay.
func (c *Client) DeleteFunction(ctx context.Context, project, fn string) error {
	return c.callJSON(ctx, http.MethodDelete, []string{"v1", "projects", project, "functions", fn}, nil, nil, http.StatusNoContent)
}

func configSegs(project, fn string) []string {
	if fn == "" {
		return []string{"v1", "projects", project, "config"}
	}
	return []string{"v1", "projects", project, "functions", fn, "config"}
}

// PutConfig replaces a config object and returns the stored one; fn "" is the
// project's global config, else the function's local config.
func (c *Client) PutConfig(ctx context.Context, project, fn string, cfg ward.Config) (ward.Config, error) {
	if cfg == nil {
		cfg = ward.Config{}
	}
	var out config
	err := c.callJSON(ctx, http.MethodPut, configSegs(project, fn), cfg, &out, http.StatusOK)
	return ward.Config(out), err
}

// GetConfig returns a config object; fn "" is the project's global config.
func (c *Client) GetConfig(ctx context.Context, project, fn string) (ward.Config, error) {
	var out config
	err := c.callJSON(ctx, http.MethodGet, configSegs(project, fn), nil, &out, http.StatusOK)
	return ward.Config(out), err
}

// Submit submits one task. A repeated idempotency key returns the first task.
func (c *Client) Submit(ctx context.Context, project string, req ward.SubmitRequest) (ward.Task, error) {
	var t task
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "projects", project, "tasks"}, req, &t,
		http.StatusAccepted, http.StatusOK)
	return ward.Task(t), err
}

// SubmitBatch submits 1–1000 tasks at once, all or nothing; the tasks come
// back in request order.
func (c *Client) SubmitBatch(ctx context.Context, project string, reqs []ward.SubmitRequest) ([]ward.Task, error) {
	var l taskBatch
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "projects", project, "tasks", "batch"},
		ward.BatchSubmitRequest{Tasks: reqs}, &l, http.StatusAccepted, http.StatusOK)
	if err != nil {
		return nil, err
	}
	if len(l.Tasks) != len(reqs) {
		return nil, fmt.Errorf("POST tasks/batch: %w: %d tasks submitted, %d returned", ErrBadResponse, len(reqs), len(l.Tasks))
	}
	return l.Tasks, nil
}

// ListTasksOptions filters and pages a task listing; zero fields are omitted.
type ListTasksOptions struct {
	Function string
	Status   ward.Status
	Limit    int
	Cursor   string
}

// ListTasks returns one page of task metadata; pass NextCursor back as Cursor
// for the next page.
func (c *Client) ListTasks(ctx context.Context, project string, opts ListTasksOptions) (ward.TaskList, error) {
	q := url.Values{}
	if opts.Function != "" {
		q.Set("function", opts.Function)
	}
	if opts.Status != "" {
		q.Set("status", string(opts.Status))
	}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var l taskList
	err := c.call(ctx, request{method: http.MethodGet, segs: []string{"v1", "projects", project, "tasks"}, query: q},
		&l, http.StatusOK)
	return ward.TaskList(l), err
}

// GetTask returns a task's metadata.
func (c *Client) GetTask(ctx context.Context, project, id string) (ward.Task, error) {
	return c.WaitTask(ctx, project, id, 0)
}

// WaitTask returns a task's metadata after one long-poll request: the server
// answers when the task is terminal or wait has passed. wait ≤ 0 does not
// wait; wait over MaxWait is clamped to it.
func (c *Client) WaitTask(ctx context.Context, project, id string, wait time.Duration) (ward.Task, error) {
	r := request{method: http.MethodGet, segs: []string{"v1", "projects", project, "tasks", id}}
	if wait > 0 {
		r.query = url.Values{"wait": {formatWait(wait)}}
	}
	var t task
	err := c.call(ctx, r, &t, http.StatusOK)
	return ward.Task(t), err
}

// formatWait renders a wait as a Go duration, in whole milliseconds, at most MaxWait.
func formatWait(wait time.Duration) string {
	wait = min(wait, MaxWait)
	wait = max(wait.Round(time.Millisecond), time.Millisecond)
	return wait.String()
}

// AwaitTask waits until the task is terminal or ctx is done, long-polling
// with the longest wait the server allows.
func (c *Client) AwaitTask(ctx context.Context, project, id string) (ward.Task, error) {
	return c.WatchTask(ctx, project, id, MaxWait, nil)
}

// WatchTask waits like AwaitTask with long polls of at most poll each,
// calling progress (when not nil) with the task after every answer, the
// terminal one included. A server that answers a long poll early is not
// hammered: the client pauses, with a growing pause, before asking again.
func (c *Client) WatchTask(ctx context.Context, project, id string, poll time.Duration, progress func(ward.Task)) (ward.Task, error) {
	if poll <= 0 {
		poll = MaxWait
	}
	poll = min(poll, MaxWait)
	pause := c.minPause
	for {
		start := c.now()
		t, err := c.WaitTask(ctx, project, id, poll)
		if err != nil {
			return ward.Task{}, err
		}
		if progress != nil {
			progress(t)
		}
		if t.Status.Terminal() {
			return t, nil
		}
		if c.now().Sub(start) >= poll/2 {
			pause = c.minPause
			continue
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ward.Task{}, fmt.Errorf("waiting for task %s: %w", id, ctx.Err())
		case <-timer.C:
		}
		pause = min(2*pause, c.maxPause)
	}
}

func (c *Client) taskBody(ctx context.Context, project, id, which string, query url.Values) ([]byte, error) {
	_, _, data, err := c.do(ctx, request{method: http.MethodGet, segs: []string{"v1", "projects", project, "tasks", id, which}, query: query})
	if data == nil && err == nil {
		data = []byte{}
	}
	return data, err
}

// Result returns a finished task's result bytes (invalid_state before it finished).
func (c *Client) Result(ctx context.Context, project, id string) ([]byte, error) {
	return c.taskBody(ctx, project, id, "result", nil)
}

// Log returns a task's log (its stderr, with secret values redacted).
func (c *Client) Log(ctx context.Context, project, id string) ([]byte, error) {
	return c.taskBody(ctx, project, id, "log", nil)
}

// Payload returns a task's payload bytes (needs the payload:read scope).
func (c *Client) Payload(ctx context.Context, project, id string) ([]byte, error) {
	return c.taskBody(ctx, project, id, "payload", nil)
}

// CancelTask cancels a queued or running task (invalid_state once finished).
func (c *Client) CancelTask(ctx context.Context, project, id string) (ward.Task, error) {
	var t task
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "projects", project, "tasks", id, "cancel"}, nil, &t, http.StatusOK)
	return ward.Task(t), err
}

// RetryTask re-queues a finished task (invalid_state while queued or running).
func (c *Client) RetryTask(ctx context.Context, project, id string) (ward.Task, error) {
	var t task
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "projects", project, "tasks", id, "retry"}, nil, &t, http.StatusOK)
	return ward.Task(t), err
}

// InvokeResult is the answer of a synchronous invoke.
type InvokeResult struct {
	TaskID string // the task the invoke ran as
	Body   []byte // the result bytes
}

// Invoke runs a function synchronously with payload as its input. When the
// task fails the error is an *APIError whose Code is the task's failure code
// (timeout for a task timeout) and whose TaskID names the task.
func (c *Client) Invoke(ctx context.Context, project, fn string, payload []byte) (InvokeResult, error) {
	return c.invokeQuery(ctx, project, fn, payload, nil)
}

// Health checks that the server is up (GET /healthz, no token sent).
func (c *Client) Health(ctx context.Context) error {
	var h health
	return c.call(ctx, request{method: http.MethodGet, segs: []string{"healthz"}, noAuth: true}, &h, http.StatusOK)
}
