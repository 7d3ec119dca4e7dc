package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
)

// syncBuffer is a bytes.Buffer safe for the spinner goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cli runs the ward CLI in-process.
type cli struct {
	env   map[string]string
	stdin string
	tty   bool
}

type result struct {
	stdout, stderr string
	code           int
}

// newCLI returns a CLI configured for server with the good token through
// the environment, and its own context file path.
func newCLI(t *testing.T, server string) *cli {
	t.Helper()
	env := map[string]string{"WARD_CONFIG": filepath.Join(t.TempDir(), "ward", "config.json")}
	if server != "" {
		env["WARD_SERVER"] = server
		env["WARD_TOKEN"] = goodToken
	}
	return &cli{env: env}
}

func (c *cli) run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb syncBuffer
	cache := t.TempDir()
	g := &globals{
		stdin:     strings.NewReader(c.stdin),
		stdout:    &out,
		stderr:    &errb,
		stderrTTY: c.tty,
		getenv:    func(k string) string { return c.env[k] },
		now:       func() time.Time { return fakeTime },
		cacheDir:  func() (string, error) { return cache, nil },
	}
	code := run(context.Background(), g, args)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func (r result) wantCode(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func TestResolveSettings(t *testing.T) {
	t.Parallel()
	fileCtx := client.Context{Server: "http://file:1", Token: "file-token"}
	tests := []struct {
		name    string
		flags   flagValues
		env     map[string]string
		file    *client.Context // nil: no file
		fileErr error
		want    settings
		wantErr bool
	}{
		{
			name:  "context file only",
			flags: flagValues{Output: "table", Project: "default"},
			file:  &fileCtx,
			want:  settings{Server: "http://file:1", Token: "file-token", Project: "default", Output: "table"},
		},
		{
			name:  "environment beats the file",
			flags: flagValues{Output: "json", Project: "default"},
			env:   map[string]string{"WARD_SERVER": "http://env:1", "WARD_TOKEN": "env-token", "WARD_PROJECT": "envproj"},
			file:  &fileCtx,
			want:  settings{Server: "http://env:1", Token: "env-token", Project: "envproj", ProjectSet: true, Output: "json"},
		},
		{
			name:  "flags beat the environment",
			flags: flagValues{Server: "http://flag:1", Token: "flag-token", Project: "flagproj", ProjectSet: true, Output: "table"},
			env:   map[string]string{"WARD_SERVER": "http://env:1", "WARD_TOKEN": "env-token", "WARD_PROJECT": "envproj"},
			want:  settings{Server: "http://flag:1", Token: "flag-token", Project: "flagproj", ProjectSet: true, Output: "table"},
		},
		{
			name:  "an explicit --project default beats WARD_PROJECT",
			flags: flagValues{Project: "default", ProjectSet: true, Output: "table"},
			env:   map[string]string{"WARD_PROJECT": "envproj", "WARD_SERVER": "http://env:1", "WARD_TOKEN": "t"},
			want:  settings{Server: "http://env:1", Token: "t", Project: "default", ProjectSet: true, Output: "table"},
		},
		{
			name:  "the file's token is not sent to another server",
			flags: flagValues{Server: "http://other:1", Project: "default", Output: "table"},
			file:  &fileCtx,
			want:  settings{Server: "http://other:1", Project: "default", Output: "table"},
		},
		{
			name:  "the file's token for the same server, trailing slash aside",
			flags: flagValues{Server: "http://file:1/", Project: "default", Output: "table"},
			file:  &fileCtx,
			want:  settings{Server: "http://file:1/", Token: "file-token", Project: "default", Output: "table"},
		},
		{
			name:  "token from env, server from the file",
			flags: flagValues{Project: "default", Output: "table"},
			env:   map[string]string{"WARD_TOKEN": "env-token"},
			file:  &fileCtx,
			want:  settings{Server: "http://file:1", Token: "env-token", Project: "default", Output: "table"},
		},
		{
			name:  "no file at all",
			flags: flagValues{Project: "default", Output: "table"},
			want:  settings{Project: "default", Output: "table"},
		},
		{
			name:    "an unreadable file is reported later, not now",
			flags:   flagValues{Project: "default", Output: "table"},
			fileErr: os.ErrPermission,
			want:    settings{Project: "default", Output: "table", ContextErr: os.ErrPermission},
		},
		{
			name:    "bad output",
			flags:   flagValues{Project: "default", Output: "yaml"},
			wantErr: true,
		},
		{
			name:    "bad project",
			flags:   flagValues{Project: "Bad_Name", ProjectSet: true, Output: "table"},
			wantErr: true,
		},
		{
			name:    "bad project from the environment",
			flags:   flagValues{Project: "default", Output: "table"},
			env:     map[string]string{"WARD_PROJECT": "-x"},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loaded := false
			load := func() (client.Context, error) {
				loaded = true
				switch {
				case tt.fileErr != nil:
					return client.Context{}, tt.fileErr
				case tt.file == nil:
					return client.Context{}, os.ErrNotExist
				}
				return *tt.file, nil
			}
			got, err := resolveSettings(tt.flags, func(k string) string { return tt.env[k] }, load)
			if tt.wantErr {
				if _, ok := err.(usageError); !ok {
					t.Fatalf("error = %v (%T), want a usageError", err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("settings = %+v, want %+v", got, tt.want)
			}
			if tt.flags.Server != "" && tt.flags.Token != "" && loaded {
				t.Error("the context file was read although flags gave everything")
			}
		})
	}
}

func TestSubmitRequest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "p.json")
	binFile := filepath.Join(dir, "p.bin")
	emptyFile := filepath.Join(dir, "empty")
	bigFile := filepath.Join(dir, "big")
	for name, content := range map[string][]byte{
		jsonFile: []byte(`{"a": [1, 2]}`), binFile: {0xff, 0x00, 'x'}, emptyFile: nil,
		bigFile: bytes.Repeat([]byte{'1'}, maxPayloadBytes+1),
	} {
		if err := os.WriteFile(name, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		flags    submitFlags
		stdin    string
		want     ward.SubmitRequest
		wantCode ward.Code // for a *ward.Error
		usage    bool      // for a usageError
	}{
		{
			name:  "JSON payload and every option",
			flags: submitFlags{payload: `{"x": 1}`, payloadSet: true, priority: 2, timeout: 10, maxAttempts: 3, delay: 1500 * time.Millisecond, labels: []string{"a=1", "b=x=y"}, idempotencyKey: "k"},
			want: ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`{"x": 1}`), Priority: 2, TimeoutS: 10, MaxAttempts: 3,
				DelayS: 2, Labels: map[string]string{"a": "1", "b": "x=y"}, IdempotencyKey: "k"},
		},
		{name: "no payload", want: ward.SubmitRequest{Function: "fn"}},
		{name: "JSON file", flags: submitFlags{payloadFile: jsonFile}, want: ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`{"a": [1, 2]}`)}},
		{name: "binary file", flags: submitFlags{payloadFile: binFile}, want: ward.SubmitRequest{Function: "fn", PayloadB64: []byte{0xff, 0x00, 'x'}}},
		{name: "empty file", flags: submitFlags{payloadFile: emptyFile}, want: ward.SubmitRequest{Function: "fn"}},
		{name: "stdin", flags: submitFlags{payloadFile: "-"}, stdin: "plain text", want: ward.SubmitRequest{Function: "fn", PayloadB64: []byte("plain text")}},
		{name: "stdin JSON", flags: submitFlags{payloadFile: "-"}, stdin: `[1]`, want: ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`[1]`)}},
		{name: "both payload flags", flags: submitFlags{payload: `{}`, payloadSet: true, payloadFile: jsonFile}, usage: true},
		{name: "payload not JSON", flags: submitFlags{payload: `{x`, payloadSet: true}, usage: true},
		{name: "empty payload flag", flags: submitFlags{payload: ``, payloadSet: true}, usage: true},
		{name: "negative delay", flags: submitFlags{delay: -time.Second}, usage: true},
		{name: "bad label", flags: submitFlags{labels: []string{"novalue"}}, usage: true},
		{name: "duplicate label", flags: submitFlags{labels: []string{"a=1", "a=2"}}, usage: true},
		{name: "missing file", flags: submitFlags{payloadFile: filepath.Join(dir, "nope")}, wantCode: ward.CodeInvalidArgument},
		{name: "file too big", flags: submitFlags{payloadFile: bigFile}, wantCode: ward.CodePayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.flags.request("fn", strings.NewReader(tt.stdin))
			switch {
			case tt.usage:
				if _, ok := err.(usageError); !ok {
					t.Fatalf("error = %v (%T), want a usageError", err, err)
				}
			case tt.wantCode != "":
				if ward.CodeOf(err) != tt.wantCode {
					t.Fatalf("error = %v, want code %s", err, tt.wantCode)
				}
			case err != nil:
				t.Fatal(err)
			case !reflect.DeepEqual(got, tt.want):
				t.Errorf("request = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseKV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		k, v    string
		wantErr bool
	}{
		{"a=b", "a", "b", false},
		{"a=", "a", "", false},
		{"a=b=c", "a", "b=c", false},
		{"KEY_1=with space", "KEY_1", "with space", false},
		{"=b", "", "", true},
		{"ab", "", "", true},
		{"", "", "", true},
		{"a b=c", "", "", true},
		{"a\x1b=c", "", "", true},
	}
	for _, tt := range tests {
		k, v, err := parseKV(tt.in)
		if tt.wantErr {
			if _, ok := err.(usageError); !ok {
				t.Errorf("parseKV(%q) error = %v, want a usageError", tt.in, err)
			}
			continue
		}
		if err != nil || k != tt.k || v != tt.v {
			t.Errorf("parseKV(%q) = %q, %q, %v; want %q, %q", tt.in, k, v, err, tt.k, tt.v)
		}
	}
	if _, err := parseKVs([]string{"a=1", "a=1"}); err == nil {
		t.Error("parseKVs accepted a duplicate key")
	}
	m, err := parseKVs([]string{"a=1", "b=2"})
	if err != nil || !reflect.DeepEqual(m, map[string]string{"a": "1", "b": "2"}) {
		t.Errorf("parseKVs = %v, %v", m, err)
	}
}

func FuzzParseKV(f *testing.F) {
	for _, s := range []string{"a=b", "=", "a==", "no-equals", "k=secret-value-here", "ä=ü", "a\tb=c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := parseKV(s)
		if err != nil {
			if _, ok := err.(usageError); !ok {
				t.Fatalf("error %v is not a usageError", err)
			}
			if key, val, ok := strings.Cut(s, "="); ok && len(val) >= 8 && !strings.Contains(key, val) && strings.Contains(err.Error(), val) {
				t.Fatalf("error %q quotes the value", err)
			}
			return
		}
		if k == "" || strings.Contains(k, "=") || k+"="+v != s {
			t.Fatalf("parseKV(%q) = %q, %q", s, k, v)
		}
	})
}

func TestSpinner(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	ticks := make(chan time.Time)
	now := fakeTime
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sp := startSpinner(&out, "t_1", ward.StatusQueued, clock, ticks)
	mu.Lock()
	now = now.Add(1500 * time.Millisecond)
	mu.Unlock()
	sp.set(ward.StatusRunning)
	ticks <- time.Time{}
	sp.stop()
	got := out.String()
	want := spinnerLine(0, "t_1", ward.StatusQueued, 0) + spinnerLine(1, "t_1", ward.StatusRunning, 1500*time.Millisecond) + "\r\x1b[K"
	if got != want {
		t.Errorf("spinner wrote %q, want %q", got, want)
	}
	if line := spinnerLine(1, "t_1", ward.StatusRunning, 1500*time.Millisecond); !strings.Contains(line, "t_1 running 1.5s") {
		t.Errorf("spinnerLine = %q", line)
	}
	if line := spinnerLine(0, safe("t_\x1b[2J"), "queued", 0); strings.Contains(line, "\x1b[2J") {
		t.Errorf("spinnerLine passes escape sequences: %q", line)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	tests := [][]string{
		{"bogus"},
		{"task", "bogus"},
		{"task", "submit"},
		{"task", "submit", "fn", "--payload", "{x"},
		{"task", "submit", "fn", "--priority", "high"},
		{"task", "list", "--status", "sleeping"},
		{"task", "list", "--limit", "-1"},
		{"project", "list", "--nope"},
		{"project", "set"},
		{"project", "set", "--max-running", "many"},
		{"project", "set", "--max-stored-mb", "1.5"},
		{"project", "set", "Bad_Name", "--max-running", "1"},
		{"project", "list", "-o", "yaml"},
		{"--project", "Bad", "project", "list"},
		{"token", "create"},
		{"token", "create", "--role", "king"},
		{"token", "create", "--role", "viewer", "--ttl", "soon"},
		{"config", "set", "novalue"},
		{"config", "set"},
		{"deploy", "Bad_Name", "x.wasm"},
		{"login", "http://x"},
		{"runner", "drain"},
		{"runner", "join", "https://x:7071"}, // no token
		{"runner", "run"},
		{"runner", "run", "https://x:7071", "--max-tasks", "-1"},
		{"runner", "run", "https://x:7071", "--max-age", "soon"},
		{"server", "--addr", "127.0.0.1:7070", "--internal-addr", "127.0.0.1:7070"},
		{"server", "--internal-addr", ""},
		{"server", "ca", "stage"}, // no --keys
	}
	for _, args := range tests {
		c := newCLI(t, api.srv.URL)
		delete(c.env, "WARD_TOKEN")
		r := c.run(t, args...)
		if r.code != 2 {
			t.Errorf("ward %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), r.code, r.stderr)
		}
		if !strings.HasPrefix(r.stderr, "ward: ") || !strings.Contains(r.stderr, "--help") {
			t.Errorf("ward %s: stderr = %q", strings.Join(args, " "), r.stderr)
		}
	}
	for _, req := range api.requests() {
		if req.Method != "GET" {
			t.Errorf("a usage error still sent %s %s", req.Method, req.Path)
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"task"}, {"task", "submit", "--help"}, {"deploy", "-h"}} {
		r := newCLI(t, "").run(t, args...)
		r.wantCode(t, 0)
		if !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("ward %v: no usage in %q", args, r.stdout)
		}
	}
}

func TestNoServer(t *testing.T) {
	t.Parallel()
	r := newCLI(t, "").run(t, "project", "list")
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: invalid_argument: no server configured") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestBrokenContextFile(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "")
	path := c.env["WARD_CONFIG"]
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"server":`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := c.run(t, "project", "list")
	r.wantCode(t, 1)
	if !strings.Contains(r.stderr, "reading ward config") {
		t.Errorf("stderr = %q", r.stderr)
	}
	// Flags that give everything do not need the file.
	api := newFakeAPI(t)
	r = c.run(t, "--server", api.srv.URL, "--token", goodToken, "project", "list")
	r.wantCode(t, 0)
}

func TestLogin(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, "")
	r := c.run(t, "login", api.srv.URL+"/", "--token", "wrong")
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: unauthenticated: ") {
		t.Errorf("stderr = %q", r.stderr)
	}
	if strings.Contains(r.stderr, "wrong") {
		t.Errorf("stderr %q contains the token", r.stderr)
	}
	path := c.env["WARD_CONFIG"]
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a failed login wrote the context file (stat: %v)", err)
	}

	r = c.run(t, "login", api.srv.URL+"/", "--token", goodToken)
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "Logged in to "+api.srv.URL) {
		t.Errorf("stdout = %q", r.stdout)
	}
	saved, err := client.LoadContext(path)
	if err != nil {
		t.Fatal(err)
	}
	if saved != (client.Context{Server: api.srv.URL, Token: goodToken}) {
		t.Errorf("saved %+v", saved)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("context file mode %o", st.Mode().Perm())
	}

	// Later commands use the saved context.
	r = c.run(t, "project", "list")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "acme") {
		t.Errorf("stdout = %q", r.stdout)
	}
	if got := api.last(t, "GET").Auth; got != "Bearer "+goodToken {
		t.Errorf("Authorization = %q", got)
	}
}

func TestSavedTokenNotSentElsewhere(t *testing.T) {
	t.Parallel()
	home, other := newFakeAPI(t), newFakeAPI(t)
	c := newCLI(t, "")
	if err := client.SaveContext(c.env["WARD_CONFIG"], client.Context{Server: home.srv.URL, Token: goodToken}); err != nil {
		t.Fatal(err)
	}
	r := c.run(t, "--server", other.srv.URL, "project", "list")
	r.wantCode(t, 1)
	if got := other.last(t, "GET").Auth; got != "" {
		t.Errorf("the saved token went to another server: Authorization = %q", got)
	}
}

// TestProjectSetQuotas checks project set sends every quota, the ones
// given changed and the others as they were, and that project list and get
// show the quotas and the bytes stored.
func TestProjectSetQuotas(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	patch := func() ward.ProjectSettings {
		t.Helper()
		var s ward.ProjectSettings
		if err := json.Unmarshal(api.last(t, "PATCH").Body, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	r := c.run(t, "project", "set", "--max-running", "4", "--max-stored-mb", "2048")
	r.wantCode(t, 0)
	// Only the quotas given are sent: the server keeps the others.
	if s := patch(); s.Quotas == nil || s.Quotas.MaxQueued != nil || s.Quotas.MaxFunctions != nil ||
		s.Quotas.Apply(ward.Quotas{MaxQueued: 100}) != (ward.Quotas{MaxQueued: 100, MaxRunning: 4, MaxStoredMB: 2048}) || s.RetentionDays != 0 {
		t.Errorf("PATCH = %+v; want max_running and max_stored_mb set, max_queued not sent", s)
	}
	if !regexp.MustCompile(`(?m)^default +7 +100 +- +4 +2048 +123456 `).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "MAX_RUNNING") || !strings.Contains(r.stdout, "STORED_BYTES") {
		t.Errorf("stdout = %q", r.stdout)
	}

	c.run(t, "project", "set", "--max-stored-mb", "0").wantCode(t, 0)
	if s := patch(); s.Quotas == nil || s.Quotas.MaxStoredMB == nil || *s.Quotas.MaxStoredMB != 0 ||
		s.Quotas.Apply(ward.Quotas{MaxQueued: 100, MaxRunning: 4, MaxStoredMB: 2048}) != (ward.Quotas{MaxQueued: 100, MaxRunning: 4}) {
		t.Errorf("PATCH = %+v; want max_stored_mb lifted, the others not sent", s.Quotas)
	}
	c.run(t, "project", "set", "--retention-days", "3").wantCode(t, 0)
	if s := patch(); s.Quotas != nil || s.RetentionDays != 3 {
		t.Errorf("PATCH = %+v; want retention only", s)
	}

	r = c.run(t, "project", "set", "--max-running", "1000001")
	r.wantCode(t, 1)
	if !strings.Contains(r.stderr, "quotas.max_running") {
		t.Errorf("stderr = %q", r.stderr)
	}

	r = c.run(t, "-o", "json", "project", "get")
	r.wantCode(t, 0)
	var p ward.Project
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Usage.StoredBytes != 123456 || p.Quotas.MaxRunning != 4 {
		t.Errorf("project get -o json = %q (%v)", r.stdout, err)
	}
	if !strings.Contains(r.stdout, `"stored_bytes": 123456`) || !strings.Contains(r.stdout, `"max_stored_mb": 0`) {
		t.Errorf("project get -o json = %q", r.stdout)
	}
}

func TestProjectAndToken(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)

	r := c.run(t, "project", "create", "newproj")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "newproj") || !strings.Contains(r.stdout, "2026-03-04T05:06:07Z") {
		t.Errorf("stdout = %q", r.stdout)
	}
	if body := string(api.last(t, "POST").Body); body != `{"name":"newproj"}` {
		t.Errorf("body = %s", body)
	}

	r = c.run(t, "project", "create", "acme")
	r.wantCode(t, 1)
	if r.stderr != "ward: already_exists: project acme already exists\n" {
		t.Errorf("stderr = %q", r.stderr)
	}

	r = c.run(t, "-o", "json", "project", "list")
	r.wantCode(t, 0)
	var pl struct{ Projects []ward.Project }
	if err := json.Unmarshal([]byte(r.stdout), &pl); err != nil || len(pl.Projects) != 2 {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}

	r = c.run(t, "--project", "acme", "token", "create", "--role", "submitter", "--ttl", "1h", "--name", "ci")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "minted.jwt.value") || !strings.Contains(r.stdout, "tok_1") || !strings.Contains(r.stderr, "not shown again") {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
	req := api.last(t, "POST")
	if req.Path != "/v1/projects/acme/tokens" || string(req.Body) != `{"role":"submitter","ttl":"1h","name":"ci"}` {
		t.Errorf("request = %s %s", req.Path, req.Body)
	}

	r = c.run(t, "-o", "json", "token", "create", "--role", "viewer")
	r.wantCode(t, 0)
	var tr ward.CreateTokenResponse
	if err := json.Unmarshal([]byte(r.stdout), &tr); err != nil || tr.Token != "minted.jwt.value" {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}

	c.run(t, "token", "revoke", "tok_1").wantCode(t, 0)
	if req := api.last(t, "DELETE"); req.Path != "/v1/projects/default/tokens/tok_1" {
		t.Errorf("revoke path = %s", req.Path)
	}
	r = c.run(t, "token", "revoke", "tok_2")
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: not_found: ") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

// writeWasm writes a minimal valid module header to a file.
func writeWasm(t *testing.T, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fn.wasm")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDeploy(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	wasm := writeWasm(t, append(slices.Clone(wasmHeader), 0x00, 0x01))

	r := c.run(t, "deploy", "resize", wasm, "--memory", "128", "--retries", "3")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "resize") || !strings.Contains(r.stdout, "Version:") {
		t.Errorf("stdout = %q", r.stdout)
	}
	put := api.last(t, "PUT")
	if put.Path != "/v1/projects/default/functions/resize/code" || put.ContentType != "application/wasm" || !bytes.Equal(put.Body, append(slices.Clone(wasmHeader), 0x00, 0x01)) {
		t.Errorf("code upload = %s %s %q", put.Path, put.ContentType, put.Body)
	}
	var spec ward.FunctionSpec
	for _, req := range api.requests() {
		if req.Method == "PUT" && req.Path == "/v1/projects/default/functions/resize" {
			if err := json.Unmarshal(req.Body, &spec); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := ward.FunctionSpec{Limits: ward.Limits{MemoryMB: 128}, Retries: ward.Retries{MaxAttempts: 3}}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("new function spec = %+v, want only the given flags %+v", spec, want)
	}

	// A redeploy keeps what is not given and changes what is.
	r = c.run(t, "-o", "json", "deploy", "resize", wasm, "--timeout", "90")
	r.wantCode(t, 0)
	var res deployResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Name != "resize" || res.Version != 2 || !strings.HasPrefix(res.Digest, "sha256:") {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}
	reqs := api.requests()
	var specPuts []recorded
	for _, req := range reqs {
		if req.Method == "PUT" && req.Path == "/v1/projects/default/functions/resize" {
			specPuts = append(specPuts, req)
		}
	}
	if len(specPuts) != 2 {
		t.Fatalf("%d spec PUTs, want 2", len(specPuts))
	}
	if err := json.Unmarshal(specPuts[1].Body, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Limits.MemoryMB != 128 || spec.Retries.MaxAttempts != 3 || spec.Limits.TimeoutS != 90 || spec.RetentionDays != 7 {
		t.Errorf("updated spec = %+v", spec)
	}

	// The server's validation error comes through with its code.
	r = c.run(t, "deploy", "resize", wasm, "--memory", "999999")
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: invalid_argument: limits.memory_mb") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestDeployRejectsBadCode(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	tests := []struct {
		path string
		code string
	}{
		{writeWasm(t, []byte("#!/bin/sh\necho hi\n")), "invalid_module"},
		{writeWasm(t, []byte("\x00asm\x02\x00\x00\x00")), "invalid_module"},
		{writeWasm(t, nil), "invalid_module"},
		{filepath.Join(t.TempDir(), "missing.wasm"), "invalid_argument"},
	}
	for _, tt := range tests {
		r := c.run(t, "deploy", "resize", tt.path)
		r.wantCode(t, 1)
		if !strings.HasPrefix(r.stderr, "ward: "+tt.code+": ") {
			t.Errorf("deploy %s: stderr = %q", tt.path, r.stderr)
		}
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("%d requests sent for bad code", n)
	}
}

func TestDeployGoPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package for wasip1")
	}
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.21\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	r := c.run(t, "deploy", "hello", dir)
	r.wantCode(t, 0)
	put := api.last(t, "PUT")
	if put.Path != "/v1/projects/default/functions/hello/code" || !bytes.HasPrefix(put.Body, wasmHeader) {
		t.Errorf("upload = %s, %d bytes starting %q", put.Path, len(put.Body), put.Body[:min(8, len(put.Body))])
	}

	// A package that does not compile fails before anything is sent.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "go.mod"), []byte("module example.com/bad\n\ngo 1.21\n"), 0o600)
	os.WriteFile(filepath.Join(bad, "main.go"), []byte("package main\n\nfunc main() { undefined() }\n"), 0o600)
	before := len(api.requests())
	r = c.run(t, "deploy", "bad", bad)
	r.wantCode(t, 1)
	if !strings.Contains(r.stderr, "invalid_argument") || !strings.Contains(r.stderr, "undefined") {
		t.Errorf("stderr = %q", r.stderr)
	}
	if n := len(api.requests()); n != before {
		t.Errorf("%d requests sent for a failed build", n-before)
	}
}

func TestFunctionVerbs(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	wasm := writeWasm(t, wasmHeader)
	c.run(t, "deploy", "resize", wasm).wantCode(t, 0)

	r := c.run(t, "function", "list")
	r.wantCode(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "resize") {
		t.Errorf("table = %q", r.stdout)
	}

	r = c.run(t, "-o", "json", "function", "get", "resize")
	r.wantCode(t, 0)
	var f ward.Function
	if err := json.Unmarshal([]byte(r.stdout), &f); err != nil || f.Name != "resize" || f.CodeVersion != 1 || f.Spec.Limits.MemoryMB != 64 {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}
	r = c.run(t, "function", "get", "resize")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "Memory (MB):") || !strings.Contains(r.stdout, "64") {
		t.Errorf("table = %q", r.stdout)
	}

	c.run(t, "function", "delete", "resize").wantCode(t, 0)
	r = c.run(t, "function", "get", "resize")
	r.wantCode(t, 1)
	if r.stderr != "ward: not_found: function resize not found\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
	r = c.run(t, "-o", "json", "function", "list")
	r.wantCode(t, 0)
	if strings.Join(strings.Fields(r.stdout), "") != `{"functions":[]}` {
		t.Errorf("json = %q", r.stdout)
	}
}

func TestConfigVerbs(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	api.mu.Lock()
	api.configs[""] = ward.Config{"KEEP": "1", "OLD": "x"}
	api.mu.Unlock()

	r := c.run(t, "config", "set", "NEW=a=b", "OLD=y")
	r.wantCode(t, 0)
	req := api.last(t, "PUT")
	if req.Path != "/v1/projects/default/config" {
		t.Errorf("path = %s", req.Path)
	}
	var sent ward.Config
	json.Unmarshal(req.Body, &sent)
	if !reflect.DeepEqual(sent, ward.Config{"KEEP": "1", "OLD": "y", "NEW": "a=b"}) {
		t.Errorf("PUT %v, want the merged config", sent)
	}
	if !strings.Contains(r.stdout, "NEW") || !strings.Contains(r.stdout, "a=b") {
		t.Errorf("stdout = %q", r.stdout)
	}

	r = c.run(t, "-o", "json", "config", "unset", "OLD", "MISSING")
	r.wantCode(t, 0)
	var got ward.Config
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || !reflect.DeepEqual(got, ward.Config{"KEEP": "1", "NEW": "a=b"}) {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}

	c.run(t, "config", "set", "--function", "resize", "Q=85").wantCode(t, 0)
	if req := api.last(t, "PUT"); req.Path != "/v1/projects/default/functions/resize/config" || string(req.Body) != `{"Q":"85"}` {
		t.Errorf("local PUT = %s %s", req.Path, req.Body)
	}
	r = c.run(t, "-o", "json", "config", "get", "--function", "resize")
	r.wantCode(t, 0)
	if strings.Join(strings.Fields(r.stdout), "") != `{"Q":"85"}` {
		t.Errorf("json = %q", r.stdout)
	}
	r = c.run(t, "-o", "json", "config", "get", "--function", "other")
	r.wantCode(t, 0)
	if strings.TrimSpace(r.stdout) != `{}` {
		t.Errorf("empty config json = %q", r.stdout)
	}
}

func TestTaskSubmit(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)

	r := c.run(t, "task", "submit", "resize", "--payload", `{"x": 1}`, "--priority", "2", "--delay", "90s",
		"--timeout", "10", "--max-attempts", "4", "--label", "a=1", "--label", "b=2,3", "--idempotency-key", "k1")
	r.wantCode(t, 0)
	req := api.last(t, "POST")
	var sent map[string]any
	if err := json.Unmarshal(req.Body, &sent); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"function": "resize", "payload": map[string]any{"x": 1.0}, "priority": 2.0, "delay_s": 90.0,
		"timeout_s": 10.0, "max_attempts": 4.0, "labels": map[string]any{"a": "1", "b": "2,3"}, "idempotency_key": "k1",
	}
	if !reflect.DeepEqual(sent, want) {
		t.Errorf("submitted %v, want %v", sent, want)
	}
	if !strings.Contains(r.stdout, "t_1") || !strings.Contains(r.stdout, "queued") {
		t.Errorf("stdout = %q", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr = %q", r.stderr)
	}

	// --wait: prints the final task; success exits 0.
	r = c.run(t, "-o", "json", "task", "submit", "resize", "--wait")
	r.wantCode(t, 0)
	var tk ward.Task
	if err := json.Unmarshal([]byte(r.stdout), &tk); err != nil || tk.Status != ward.StatusSucceeded {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}
	if r.stderr != "" {
		t.Errorf("no terminal, yet stderr = %q", r.stderr)
	}
	if q := api.last(t, "GET").Query; q != "wait=1m0s" {
		t.Errorf("wait query = %q", q)
	}

	// A failed task prints the task and exits 1 with its error code.
	r = c.run(t, "task", "submit", "fails", "--wait")
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, "failed") || !strings.Contains(r.stdout, "exit_status: exit status 3") {
		t.Errorf("stdout = %q", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "ward: exit_status: task t_3 failed: exit status 3") {
		t.Errorf("stderr = %q", r.stderr)
	}

	// On a terminal the wait shows a spinner on stderr, with shorter polls.
	c.tty = true
	r = c.run(t, "task", "submit", "resize", "--payload-file", "-", "--wait")
	r.wantCode(t, 0)
	if !strings.Contains(r.stderr, "t_4 queued") || !strings.HasSuffix(r.stderr, "\r\x1b[K") {
		t.Errorf("spinner stderr = %q", r.stderr)
	}
	if q := api.last(t, "GET").Query; q != "wait=2s" {
		t.Errorf("wait query with a terminal = %q", q)
	}
}

func TestTaskVerbs(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	c.stdin = "\x01binary"
	c.run(t, "task", "submit", "resize", "--payload-file", "-").wantCode(t, 0)

	r := c.run(t, "task", "result", "t_1")
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: invalid_state: ") {
		t.Errorf("result before the end: stderr = %q", r.stderr)
	}

	r = c.run(t, "task", "cancel", "t_1")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "cancelled") {
		t.Errorf("cancel stdout = %q", r.stdout)
	}
	r = c.run(t, "task", "cancel", "t_1")
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: invalid_state: task t_1 has finished") {
		t.Errorf("second cancel stderr = %q", r.stderr)
	}
	r = c.run(t, "-o", "json", "task", "retry", "t_1")
	r.wantCode(t, 0)
	var tk ward.Task
	if err := json.Unmarshal([]byte(r.stdout), &tk); err != nil || tk.Status != ward.StatusQueued {
		t.Errorf("retry json = %q (%v)", r.stdout, err)
	}

	r = c.run(t, "task", "get", "t_1", "--wait")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "succeeded") {
		t.Errorf("get --wait stdout = %q", r.stdout)
	}
	r = c.run(t, "task", "get", "t_9")
	r.wantCode(t, 1)
	if r.stderr != "ward: not_found: task t_9 not found\n" {
		t.Errorf("stderr = %q", r.stderr)
	}

	for _, args := range [][]string{{"task", "log", "-f", "t_1"}, {"task", "log", "--follow", "t_1"}} {
		r = c.run(t, args...)
		r.wantCode(t, 0)
		if r.stdout != "[followed]\nlog line\n" || api.last(t, "GET").Query != "follow=1" {
			t.Errorf("%v = %q (query %q), want the followed log", args, r.stdout, api.last(t, "GET").Query)
		}
	}

	for body, want := range map[string]string{"result": "\x00result-bytes\xff", "log": "log line\n", "payload": "\x01binary"} {
		r = c.run(t, "task", body, "t_1")
		r.wantCode(t, 0)
		if r.stdout != want {
			t.Errorf("task %s = %q, want %q", body, r.stdout, want)
		}
	}

	c.run(t, "task", "submit", "fails").wantCode(t, 0)
	r = c.run(t, "task", "list", "--function", "resize", "--status", "queued", "--limit", "5")
	r.wantCode(t, 0)
	if q := api.last(t, "GET").Query; q != "function=resize&limit=5&status=queued" {
		t.Errorf("list query = %q", q)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], "t_1") || !strings.HasPrefix(lines[2], "t_2") {
		t.Errorf("list table = %q", r.stdout)
	}
	if r.stderr != "More: --cursor next-page\n" {
		t.Errorf("list stderr = %q", r.stderr)
	}
	r = c.run(t, "-o", "json", "task", "list", "--cursor", "next-page")
	r.wantCode(t, 0)
	var l ward.TaskList
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Tasks) != 2 || l.NextCursor != "" {
		t.Errorf("list json = %q (%v)", r.stdout, err)
	}
}

func TestInvoke(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	c.stdin = `{"name":"ada"}`
	r := c.run(t, "invoke", "hello")
	r.wantCode(t, 0)
	if r.stdout != `echo:{"name":"ada"}` {
		t.Errorf("stdout = %q", r.stdout)
	}
	req := api.last(t, "POST")
	if req.Path != "/v1/projects/default/functions/hello/invoke" || req.ContentType != "application/json" {
		t.Errorf("request = %s %s", req.Path, req.ContentType)
	}

	r = c.run(t, "invoke", "fails")
	r.wantCode(t, 1)
	if r.stdout != "" || r.stderr != "ward: exit_status: exit status 3 (task t_99)\n" {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
	r = c.run(t, "--project", "acme", "invoke", "busy")
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: function_concurrency: ") {
		t.Errorf("stderr = %q", r.stderr)
	}
	r = c.run(t, "--project", "missing", "invoke", "hello")
	r.wantCode(t, 1)
	if r.stderr != "ward: not_found: project missing not found\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	url := api.srv.URL
	api.srv.Close()
	r := newCLI(t, url).run(t, "task", "list")
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: unavailable: ") {
		t.Errorf("stderr = %q", r.stderr)
	}
	if strings.Contains(r.stderr, goodToken) {
		t.Errorf("stderr %q contains the token", r.stderr)
	}
}

func TestTablesAreSafe(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	tk := ward.Task{ID: "t_1", Function: "f", Status: ward.StatusFailed, Labels: map[string]string{"k": "\x1b[2Jboom\u202e"},
		Error: &ward.TaskError{Code: ward.CodeTrap, Message: "line1\nline2\tx"}}
	if err := writeTask(&out, tk); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.ContainsAny(s, "\x1b\u202e\t") || strings.Contains(s, "line1\nline2") {
		t.Errorf("table passes control characters: %q", s)
	}
	if !strings.Contains(s, "trap: line1?line2?x") {
		t.Errorf("table = %q", s)
	}
}
