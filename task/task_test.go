package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal/box"
	"github.com/wardhq/ward/task/internal/sealhook"
	_ "github.com/wardhq/ward/task/unseal"
)

// testEnv is an env rooted in a temporary directory, with captured output.
type testEnv struct {
	*env
	root           string
	stdout, stderr *bytes.Buffer
	exitCode       *int
}

// newTestEnv returns an env whose default files live under a fresh
// temporary directory, with the given environment variables and stdin.
func newTestEnv(t *testing.T, vars map[string]string, stdin string) testEnv {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "ward", "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	te := testEnv{
		root:     root,
		stdout:   new(bytes.Buffer),
		stderr:   new(bytes.Buffer),
		exitCode: new(int),
	}
	*te.exitCode = -1
	te.env = &env{
		lookup: func(k string) (string, bool) {
			v, ok := vars[k]
			return v, ok
		},
		payloadFile: filepath.Join(root, "ward", "payload"),
		configFile:  filepath.Join(root, "ward", "config.json"),
		secretsDir:  filepath.Join(root, "ward", "secrets"),
		stdin:       strings.NewReader(stdin),
		stdout:      te.stdout,
		stderr:      te.stderr,
		exit:        func(code int) { *te.exitCode = code },
	}
	return te
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPayloadSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		envFile      string // WARD_PAYLOAD_FILE relative to root; "" = unset
		writeEnv     bool   // write the file named by WARD_PAYLOAD_FILE
		writeDefault bool
		stdin        string
		want         string
	}{
		{name: "env file", envFile: "custom/p", writeEnv: true, writeDefault: true, stdin: "stdin", want: "from env file"},
		{name: "env file missing falls back to default", envFile: "custom/missing", writeDefault: true, stdin: "stdin", want: "from default"},
		{name: "default file", writeDefault: true, stdin: "stdin", want: "from default"},
		{name: "stdin", stdin: `{"from":"stdin"}`, want: `{"from":"stdin"}`},
		{name: "env file missing and no default uses stdin", envFile: "nope", stdin: "in", want: "in"},
		{name: "empty stdin", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{}
			te := newTestEnv(t, vars, tt.stdin)
			if tt.envFile != "" {
				vars[EnvPayloadFile] = filepath.Join(te.root, tt.envFile)
			}
			if tt.writeEnv {
				writeFile(t, vars[EnvPayloadFile], "from env file")
			}
			if tt.writeDefault {
				writeFile(t, te.payloadFile, "from default")
			}
			got, err := te.payload()
			if err != nil {
				t.Fatalf("payload: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("payload = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPayloadReadError(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil, "stdin must not be used")
	// A directory where the payload file should be is a read error, not a
	// missing file: it must be reported, not papered over with stdin.
	if err := os.MkdirAll(te.payloadFile, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := te.payload(); err == nil {
		t.Fatal("payload: want an error for a directory")
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	type req struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	tests := []struct {
		name    string
		payload string
		want    req
		wantErr bool
	}{
		{name: "object", payload: `{"name":"Ada","count":3}`, want: req{"Ada", 3}},
		{name: "unknown fields ignored", payload: `{"name":"Ada","extra":[1,2]}`, want: req{Name: "Ada", Count: 7}},
		{name: "empty leaves v", payload: "", want: req{Count: 7}},
		{name: "whitespace leaves v", payload: " \n\t", want: req{Count: 7}},
		{name: "null leaves v", payload: "null", want: req{Count: 7}},
		{name: "surrounding whitespace", payload: "\n {\"name\":\"B\"} \n", want: req{Name: "B", Count: 7}},
		{name: "invalid json", payload: `{"name":`, wantErr: true},
		{name: "not json", payload: `hello`, wantErr: true},
		{name: "wrong type", payload: `{"count":"x"}`, wantErr: true},
		{name: "trailing data", payload: `{"name":"A"} {"name":"B"}`, wantErr: true},
		{name: "trailing garbage", payload: `{"name":"A"}x`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			te := newTestEnv(t, nil, tt.payload)
			got := req{Count: 7}
			err := te.decode(&got)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decode(%q) = nil error, want one (v = %+v)", tt.payload, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode(%q): %v", tt.payload, err)
			}
			if got != tt.want {
				t.Errorf("decode(%q) = %+v, want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestDecodeReadsPayloadFile(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil, `{"name":"stdin"}`)
	writeFile(t, te.payloadFile, `{"name":"file"}`)
	var v struct{ Name string }
	if err := te.decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "file" {
		t.Errorf("Name = %q, want %q", v.Name, "file")
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content *string // nil = no file
		want    map[string]string
		wantErr bool
	}{
		{name: "missing", want: map[string]string{}},
		{name: "object", content: ptr(`{"region":"eu","mode":"fast"}`), want: map[string]string{"region": "eu", "mode": "fast"}},
		{name: "empty object", content: ptr(`{}`), want: map[string]string{}},
		{name: "empty file", content: ptr(``), want: map[string]string{}},
		{name: "null", content: ptr(`null`), want: map[string]string{}},
		{name: "invalid", content: ptr(`{"a":`), wantErr: true},
		{name: "non-string value", content: ptr(`{"a":1}`), wantErr: true},
		{name: "array", content: ptr(`["a"]`), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			te := newTestEnv(t, nil, "")
			if tt.content != nil {
				writeFile(t, te.configFile, *tt.content)
			}
			got, err := te.config()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("config = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			if got == nil {
				t.Fatal("config returned a nil map")
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("config = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfigEnvFile(t *testing.T) {
	t.Parallel()
	vars := map[string]string{}
	te := newTestEnv(t, vars, "")
	writeFile(t, te.configFile, `{"from":"default"}`)
	vars[EnvConfigFile] = filepath.Join(te.root, "elsewhere.json")
	writeFile(t, vars[EnvConfigFile], `{"from":"env"}`)
	got, err := te.config()
	if err != nil {
		t.Fatal(err)
	}
	if got["from"] != "env" {
		t.Errorf("config = %v, want the file named by %s", got, EnvConfigFile)
	}
}

func TestSecret(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil, "")
	writeFile(t, filepath.Join(te.secretsDir, "api-key"), "s3cr3t-value")
	writeFile(t, filepath.Join(te.secretsDir, "db.password"), "pw")
	writeFile(t, filepath.Join(te.root, "ward", "outside"), "must not be readable")

	for name, want := range map[string]string{"api-key": "s3cr3t-value", "db.password": "pw"} {
		got, err := te.secret(name)
		if err != nil {
			t.Fatalf("secret(%q): %v", name, err)
		}
		if string(got) != want {
			t.Errorf("secret(%q) = %q, want %q", name, got, want)
		}
	}

	_, err := te.secret("missing")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("secret(missing) error = %v, want fs.ErrNotExist", err)
	}
	if errors.Is(err, ErrInvalidSecretName) {
		t.Errorf("secret(missing) error = %v, must not be ErrInvalidSecretName", err)
	}

	for _, name := range []string{"", ".", "..", "../outside", "a/b", `a\b`, "/etc/passwd", "x\x00y", "sub/../../outside"} {
		got, err := te.secret(name)
		if !errors.Is(err, ErrInvalidSecretName) {
			t.Errorf("secret(%q) = %q, %v; want ErrInvalidSecretName", name, got, err)
		}
	}
}

func TestSecretEnvDir(t *testing.T) {
	t.Parallel()
	vars := map[string]string{}
	te := newTestEnv(t, vars, "")
	vars[EnvSecretsDir] = filepath.Join(te.root, "other")
	writeFile(t, filepath.Join(vars[EnvSecretsDir], "token"), "abc")
	writeFile(t, filepath.Join(te.secretsDir, "token"), "default")
	got, err := te.secret("token")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "abc" {
		t.Errorf("secret = %q, want the one under %s", got, EnvSecretsDir)
	}
}

func TestSecretReadError(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil, "")
	// A directory named like the secret makes the read fail with something
	// other than "does not exist".
	if err := os.MkdirAll(filepath.Join(te.secretsDir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := te.secret("dir")
	if err == nil {
		t.Fatal("secret(dir): want an error")
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("secret(dir) error = %v; a read error is not a missing secret", err)
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, map[string]string{
		EnvTaskID:   "t_0123",
		EnvProject:  "acme",
		EnvFunction: "resize",
		EnvAttempt:  "2",
	}, "")
	if got := te.get(EnvTaskID); got != "t_0123" {
		t.Errorf("task id = %q", got)
	}
	if got := te.attempt(); got != 2 {
		t.Errorf("attempt = %d, want 2", got)
	}
	empty := newTestEnv(t, nil, "")
	if got := empty.get(EnvProject); got != "" {
		t.Errorf("project outside ward = %q, want empty", got)
	}
}

func TestAttempt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		set   bool
		want  int
	}{
		{"1", true, 1},
		{"17", true, 17},
		{"", true, 0},
		{"", false, 0},
		{"x", true, 0},
		{"-3", true, 0},
		{"1.5", true, 0},
		{"99999999999999999999999", true, 0},
	}
	for _, tt := range tests {
		vars := map[string]string{}
		if tt.set {
			vars[EnvAttempt] = tt.value
		}
		te := newTestEnv(t, vars, "")
		if got := te.attempt(); got != tt.want {
			t.Errorf("attempt(%q, set=%v) = %d, want %d", tt.value, tt.set, got, tt.want)
		}
	}
}

func TestResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"struct", struct {
			Greeting string `json:"greeting"`
		}{"Hello, Ada!"}, `{"greeting":"Hello, Ada!"}`},
		{"no html escaping", map[string]string{"html": "<a&b>"}, `{"html":"<a&b>"}`},
		{"number", 42, `42`},
		{"nil", nil, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			te := newTestEnv(t, nil, "")
			if err := te.result(tt.v); err != nil {
				t.Fatal(err)
			}
			if got := te.stdout.String(); got != tt.want {
				t.Errorf("stdout = %q, want %q", got, tt.want)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestResultErrors(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil, "")
	if err := te.result(make(chan int)); err == nil {
		t.Error("result(chan): want an encode error")
	}
	if te.stdout.Len() != 0 {
		t.Errorf("a failed encode wrote %q", te.stdout.String())
	}
	te.stdout = nil
	te.env.stdout = failingWriter{}
	if err := te.result(1); err == nil {
		t.Error("result to a broken stdout: want an error")
	}
}

func TestLogf(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil, "")
	te.logf("resized %d images", 3)
	te.logf("done\n")
	if got, want := te.stderr.String(), "resized 3 images\ndone\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if te.stdout.Len() != 0 {
		t.Errorf("logf wrote to stdout: %q", te.stdout.String())
	}
}

func TestFail(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t, nil, "")
	te.fail(errors.New("bad input"))
	if *te.exitCode != 1 {
		t.Errorf("exit code = %d, want 1", *te.exitCode)
	}
	if got, want := te.stderr.String(), "error: bad input\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}

	te = newTestEnv(t, nil, "")
	te.fail(fmt.Errorf("task: unseal payload: %w", &ward.Error{Code: box.CodeOpenFailed, Message: "does not authenticate"}))
	if *te.exitCode != ward.ExitUnsealFailed {
		t.Errorf("unseal failure exit code = %d, want %d", *te.exitCode, ward.ExitUnsealFailed)
	}

	te = newTestEnv(t, nil, "")
	te.fail(nil)
	if *te.exitCode != 1 {
		t.Errorf("fail(nil) exit code = %d, want 1", *te.exitCode)
	}
	if te.stderr.Len() == 0 {
		t.Error("fail(nil) logged nothing")
	}
}

// TestProcessEnv checks the exported functions read the real environment.
// It uses t.Setenv and so cannot run in parallel.
func TestProcessEnv(t *testing.T) {
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload")
	config := filepath.Join(dir, "config.json")
	secrets := filepath.Join(dir, "secrets")
	writeFile(t, payload, `{"name":"Ada"}`)
	writeFile(t, config, `{"k":"v"}`)
	writeFile(t, filepath.Join(secrets, "s"), "value")
	t.Setenv(EnvPayloadFile, payload)
	t.Setenv(EnvConfigFile, config)
	t.Setenv(EnvSecretsDir, secrets)
	t.Setenv(EnvTaskID, "t_1")
	t.Setenv(EnvProject, "p")
	t.Setenv(EnvFunction, "f")
	t.Setenv(EnvAttempt, "3")

	if got, err := Payload(); err != nil || string(got) != `{"name":"Ada"}` {
		t.Errorf("Payload() = %q, %v", got, err)
	}
	var v struct{ Name string }
	if err := Decode(&v); err != nil || v.Name != "Ada" {
		t.Errorf("Decode = %+v, %v", v, err)
	}
	if got, err := Config(); err != nil || got["k"] != "v" {
		t.Errorf("Config() = %v, %v", got, err)
	}
	if got, err := Secret("s"); err != nil || string(got) != "value" {
		t.Errorf("Secret(s) = %q, %v", got, err)
	}
	if ID() != "t_1" || Project() != "p" || Function() != "f" || Attempt() != 3 {
		t.Errorf("identity = %q %q %q %d", ID(), Project(), Function(), Attempt())
	}
}

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		``, ` `, `null`, `{}`, `{"name":"Ada"}`, `[1,2,3]`, `"x"`, `{"a":1} x`,
		`{"a":`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `1e999`, `{} {}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v json.RawMessage
		err := unmarshal(data, &v)
		if len(bytes.TrimSpace(data)) == 0 {
			if err != nil || v != nil {
				t.Fatalf("empty input: v = %v, err = %v", v, err)
			}
			return
		}
		if err == nil && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if err != nil && json.Valid(data) {
			t.Fatalf("rejected valid JSON %q: %v", data, err)
		}
	})
}

func TestMissing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "open", Path: "/ward/payload", Err: fs.ErrNotExist}, true},
		{&fs.PathError{Op: "open", Path: "/ward/payload", Err: syscall.ENOENT}, true},
		{&fs.PathError{Op: "open", Path: "/ward/payload", Err: syscall.EBADF}, true}, // WASI: /ward not mounted
		{&fs.PathError{Op: "open", Path: "/ward/payload", Err: syscall.EACCES}, false},
		{&fs.PathError{Op: "read", Path: "/ward/payload", Err: syscall.EISDIR}, false},
		{errors.New("other"), false},
	}
	for _, tt := range tests {
		if got := missing(tt.err); got != tt.want {
			t.Errorf("missing(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func ptr(s string) *string { return &s }

// sealedFixture is a task env whose function has a sealing key: the private
// key PEM is in the secrets dir, and the env says the payload is sealed for
// acme/resize.
type sealedFixture struct {
	testEnv
	vars map[string]string
	pub  []byte
	pem  []byte
}

func newSealedFixture(t *testing.T, stdin string) sealedFixture {
	t.Helper()
	priv, pub, err := box.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{EnvPayloadSealed: "1", EnvProject: "acme", EnvFunction: "resize"}
	fx := sealedFixture{testEnv: newTestEnv(t, vars, stdin), vars: vars, pub: pub, pem: box.MarshalPrivateKey(priv)}
	writeFile(t, filepath.Join(fx.secretsDir, SealingKeySecret), string(fx.pem))
	return fx
}

func sealFor(t *testing.T, pub []byte, project, fn, payload string) string {
	t.Helper()
	env, err := box.Seal(pub, box.Recipient{Project: project, Function: fn}, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return string(env)
}

const secretPayload = `{"name":"Ada","card":"4111111111111111"}`

func TestSealedRoundTrip(t *testing.T) {
	t.Parallel()
	fx := newSealedFixture(t, "")
	writeFile(t, fx.payloadFile, sealFor(t, fx.pub, "acme", "resize", secretPayload))
	if !fx.sealed() {
		t.Fatal("sealed() = false")
	}
	got, err := fx.payload()
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	if string(got) != secretPayload {
		t.Fatalf("payload = %q, want the unsealed payload", got)
	}
	var v struct{ Name string }
	if err := fx.decode(&v); err != nil || v.Name != "Ada" {
		t.Fatalf("decode = %+v, %v", v, err)
	}
}

func TestSealedFromStdin(t *testing.T) {
	t.Parallel()
	priv, pub, err := box.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{EnvPayloadSealed: "1", EnvProject: "acme", EnvFunction: "resize"}
	te := newTestEnv(t, vars, sealFor(t, pub, "acme", "resize", "raw bytes"))
	writeFile(t, filepath.Join(te.secretsDir, SealingKeySecret), string(box.MarshalPrivateKey(priv)))
	got, err := te.payload()
	if err != nil || string(got) != "raw bytes" {
		t.Fatalf("payload = %q, %v", got, err)
	}
}

func TestSealedEmptyPayload(t *testing.T) {
	t.Parallel()
	fx := newSealedFixture(t, "")
	writeFile(t, fx.payloadFile, sealFor(t, fx.pub, "acme", "resize", ""))
	got, err := fx.payload()
	if err != nil || len(got) != 0 {
		t.Fatalf("payload = %q, %v", got, err)
	}
	v := struct{ N int }{N: 7}
	if err := fx.decode(&v); err != nil || v.N != 7 {
		t.Fatalf("decode of an empty sealed payload = %+v, %v", v, err)
	}
}

// TestSealedFailures checks that a sealed payload that cannot be opened is an
// error carrying the sealing code, never the envelope or another payload.
func TestSealedFailures(t *testing.T) {
	t.Parallel()
	otherPriv, otherPub, err := box.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, fx sealedFixture)
		code     ward.Code
		notExist bool
	}{
		{
			name: "sealed for another function",
			setup: func(t *testing.T, fx sealedFixture) {
				writeFile(t, fx.payloadFile, sealFor(t, fx.pub, "acme", "thumbnail", secretPayload))
			},
			code: box.CodeOpenFailed,
		},
		{
			name: "sealed for another project",
			setup: func(t *testing.T, fx sealedFixture) {
				writeFile(t, fx.payloadFile, sealFor(t, fx.pub, "globex", "resize", secretPayload))
			},
			code: box.CodeOpenFailed,
		},
		{
			name: "sealed to another function's key",
			setup: func(t *testing.T, fx sealedFixture) {
				writeFile(t, fx.payloadFile, sealFor(t, otherPub, "acme", "resize", secretPayload))
			},
			code: box.CodeKeyMismatch,
		},
		{
			name: "holding another function's key",
			setup: func(t *testing.T, fx sealedFixture) {
				writeFile(t, fx.payloadFile, sealFor(t, fx.pub, "acme", "resize", secretPayload))
				writeFile(t, filepath.Join(fx.secretsDir, SealingKeySecret), string(box.MarshalPrivateKey(otherPriv)))
			},
			code: box.CodeKeyMismatch,
		},
		{
			name: "altered envelope",
			setup: func(t *testing.T, fx sealedFixture) {
				env := []byte(sealFor(t, fx.pub, "acme", "resize", secretPayload))
				env[len(env)-3] ^= 0x10
				writeFile(t, fx.payloadFile, string(env))
			},
			code: box.CodeOpenFailed,
		},
		{
			name: "not an envelope",
			setup: func(t *testing.T, fx sealedFixture) {
				writeFile(t, fx.payloadFile, secretPayload)
			},
			code: box.CodeMalformed,
		},
		{
			name: "missing key secret",
			setup: func(t *testing.T, fx sealedFixture) {
				writeFile(t, fx.payloadFile, sealFor(t, fx.pub, "acme", "resize", secretPayload))
				if err := os.Remove(filepath.Join(fx.secretsDir, SealingKeySecret)); err != nil {
					t.Fatal(err)
				}
			},
			notExist: true,
		},
		{
			name: "key secret is not a PEM key",
			setup: func(t *testing.T, fx sealedFixture) {
				writeFile(t, fx.payloadFile, sealFor(t, fx.pub, "acme", "resize", secretPayload))
				writeFile(t, filepath.Join(fx.secretsDir, SealingKeySecret), "not a key")
			},
			code: box.CodeInvalidKey,
		},
		{
			name: "no project in the environment",
			setup: func(t *testing.T, fx sealedFixture) {
				writeFile(t, fx.payloadFile, sealFor(t, fx.pub, "acme", "resize", secretPayload))
				delete(fx.vars, EnvProject)
			},
			code: ward.CodeInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newSealedFixture(t, "")
			tt.setup(t, fx)
			got, err := fx.payload()
			if err == nil {
				t.Fatalf("payload = %q, want an error", got)
			}
			if got != nil {
				t.Fatal("payload bytes returned with an error")
			}
			if tt.notExist {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("err = %v, want fs.ErrNotExist", err)
				}
			} else if c := ward.CodeOf(err); c != tt.code {
				t.Fatalf("code = %s (%v), want %s", c, err, tt.code)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "task: unseal payload: ") {
				t.Errorf("error %q does not say it is about unsealing", msg)
			}
			if strings.Contains(msg, "4111") || strings.Contains(msg, string(fx.pem)) {
				t.Errorf("error leaks the payload or the key: %q", msg)
			}
			var v struct{ Name string }
			if err := fx.decode(&v); err == nil || v.Name != "" {
				t.Fatalf("decode = %+v, %v; want an error", v, err)
			}
		})
	}
}

// TestUnsealedPayloadUnaffected checks that without WARD_PAYLOAD_SEALED=1
// the payload is returned as delivered, even when it looks like an envelope.
func TestUnsealedPayloadUnaffected(t *testing.T) {
	t.Parallel()
	for _, value := range []string{"", "0", "true", "unset"} {
		fx := newSealedFixture(t, "")
		if value == "unset" {
			delete(fx.vars, EnvPayloadSealed)
		} else {
			fx.vars[EnvPayloadSealed] = value
		}
		if fx.sealed() {
			t.Fatalf("%s=%q: sealed() = true", EnvPayloadSealed, value)
		}
		env := sealFor(t, fx.pub, "acme", "resize", secretPayload)
		writeFile(t, fx.payloadFile, env)
		got, err := fx.payload()
		if err != nil || string(got) != env {
			t.Fatalf("%s=%q: payload changed (%d bytes), %v", EnvPayloadSealed, value, len(got), err)
		}
		writeFile(t, fx.payloadFile, secretPayload)
		got, err = fx.payload()
		if err != nil || string(got) != secretPayload {
			t.Fatalf("%s=%q: payload = %q, %v", EnvPayloadSealed, value, got, err)
		}
	}
}

// TestProcessEnvSealed checks Payload and Sealed on the real environment. It
// uses t.Setenv and so cannot run in parallel.
func TestProcessEnvSealed(t *testing.T) {
	priv, pub, err := box.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload")
	secrets := filepath.Join(dir, "secrets")
	writeFile(t, payload, sealFor(t, pub, "p", "f", `{"name":"Ada"}`))
	writeFile(t, filepath.Join(secrets, SealingKeySecret), string(box.MarshalPrivateKey(priv)))
	t.Setenv(EnvPayloadFile, payload)
	t.Setenv(EnvSecretsDir, secrets)
	t.Setenv(EnvProject, "p")
	t.Setenv(EnvFunction, "f")
	t.Setenv(EnvPayloadSealed, "1")
	if !Sealed() {
		t.Fatal("Sealed() = false")
	}
	if got, err := Payload(); err != nil || string(got) != `{"name":"Ada"}` {
		t.Fatalf("Payload() = %q, %v", got, err)
	}
	var v struct{ Name string }
	if err := Decode(&v); err != nil || v.Name != "Ada" {
		t.Fatalf("Decode = %+v, %v", v, err)
	}
	t.Setenv(EnvPayloadSealed, "")
	if Sealed() {
		t.Fatal("Sealed() = true with the variable empty")
	}
}

// TestSealedWithoutUnseal: a program that does not link task/unseal fails
// on a sealed payload with sealed_open_failed and a message naming the
// package. Not parallel: it swaps the hook for its duration.
func TestSealedWithoutUnseal(t *testing.T) {
	saved := sealhook.Open
	sealhook.Open = nil
	defer func() { sealhook.Open = saved }()
	priv, pub, err := box.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	env, err := box.Seal(pub, box.Recipient{Project: "p", Function: "f"}, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	te := newTestEnv(t, map[string]string{EnvPayloadSealed: "1", EnvProject: "p", EnvFunction: "f"}, "")
	if err := os.WriteFile(filepath.Join(te.secretsDir, SealingKeySecret), box.MarshalPrivateKey(priv), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(te.payloadFile, env, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = te.payload()
	if ward.CodeOf(err) != ward.CodeSealedOpenFailed || !strings.Contains(err.Error(), "task/unseal") {
		t.Fatalf("payload() = %v", err)
	}
	te.fail(err)
	if *te.exitCode != ward.ExitUnsealFailed {
		t.Errorf("exit code %d, want %d", *te.exitCode, ward.ExitUnsealFailed)
	}
}
