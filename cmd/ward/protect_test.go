package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/seal/box"
	"github.com/wardhq/ward/internal/server"
)

func TestReadSecretValue(t *testing.T) {
	t.Parallel()
	full := strings.Repeat("k", ward.MaxSecretBytes)
	tests := []struct {
		name  string
		in    string
		raw   bool
		want  string
		code  ward.Code
		usage bool
	}{
		{name: "plain", in: "s3cr3t", want: "s3cr3t"},
		{name: "one newline removed", in: "s3cr3t\n", want: "s3cr3t"},
		{name: "crlf removed", in: "s3cr3t\r\n", want: "s3cr3t"},
		{name: "only one newline removed", in: "s3cr3t\n\n", want: "s3cr3t\n"},
		{name: "inner newlines kept", in: "a\nb\n", want: "a\nb"},
		{name: "spaces kept", in: "  s3cr3t  \n", want: "  s3cr3t  "},
		{name: "raw keeps newline", in: "s3cr3t\n", raw: true, want: "s3cr3t\n"},
		{name: "binary", in: "\x00\xff\n", want: "\x00\xff"},
		{name: "exactly the cap", in: full, want: full},
		{name: "cap plus a newline", in: full + "\n", code: ward.CodeBodyTooLarge},
		{name: "over the cap", in: full + "k", code: ward.CodeBodyTooLarge},
		{name: "empty", in: "", code: ward.CodeInvalidArgument},
		{name: "only a newline", in: "\n", code: ward.CodeInvalidArgument},
		{name: "raw newline is a value", in: "\n", raw: true, want: "\n"},
	}
	for _, tt := range tests {
		for _, fromFile := range []bool{false, true} {
			f := secretFlags{raw: tt.raw}
			stdin := strings.NewReader(tt.in)
			if fromFile {
				f.file = filepath.Join(t.TempDir(), "value")
				if err := os.WriteFile(f.file, []byte(tt.in), 0o600); err != nil {
					t.Fatal(err)
				}
				stdin = strings.NewReader("not this")
			}
			got, err := readSecretValue(f, stdin)
			if tt.code != "" {
				if ward.CodeOf(err) != tt.code {
					t.Errorf("%s (file %t): err %v, want code %s", tt.name, fromFile, err, tt.code)
				}
				continue
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("%s (file %t) = %q, %v; want %q", tt.name, fromFile, got, err, tt.want)
			}
		}
	}
	_, err := readSecretValue(secretFlags{file: filepath.Join(t.TempDir(), "missing")}, strings.NewReader("x"))
	if ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("missing file: %v, want invalid_argument", err)
	}
}

// FuzzReadSecretValue checks that a value is read whole (less at most one
// line ending) or refused, never cut, and that no error repeats the value.
func FuzzReadSecretValue(f *testing.F) {
	f.Add([]byte("s3cr3t\n"), false)
	f.Add([]byte("a\r\n"), false)
	f.Add([]byte("\n"), true)
	f.Add([]byte{}, false)
	f.Add([]byte("x\r"), false)
	f.Fuzz(func(t *testing.T, in []byte, raw bool) {
		got, err := readSecretValue(secretFlags{raw: raw}, bytes.NewReader(in))
		if err != nil {
			if len(in) >= 8 && strings.Contains(err.Error(), string(in)) {
				t.Fatalf("error %q repeats the value", err)
			}
			if len(in) <= ward.MaxSecretBytes && len(trimLineEnding(in)) > 0 && !raw {
				t.Fatalf("refused %q: %v", in, err)
			}
			return
		}
		want := in
		if !raw {
			want = trimLineEnding(in)
		}
		if !bytes.Equal(got, want) || len(got) == 0 || len(in) > ward.MaxSecretBytes {
			t.Fatalf("read %q from %q (raw %t)", got, in, raw)
		}
		if !raw && len(in)-len(got) > 2 {
			t.Fatalf("removed %d bytes from %q", len(in)-len(got), in)
		}
	})
}

func TestWriteNewFile(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "key.pem")
	if err := writeNewFile(name, []byte("first")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %v, want 0600", perm)
	}
	err = writeNewFile(name, []byte("second"))
	if ward.CodeOf(err) != ward.CodeAlreadyExists {
		t.Errorf("second write: %v, want already_exists", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "first" {
		t.Errorf("file overwritten: %q", b)
	}
	if err := writeNewFile(filepath.Join(t.TempDir(), "no", "dir"), nil); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("missing dir: %v, want invalid_argument", err)
	}
}

func TestReadPrivateKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	priv, _, err := box.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.pem")
	if err := os.WriteFile(good, box.MarshalPrivateKey(priv), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readPrivateKeyFile(good)
	if err != nil || !bytes.Equal(got, priv) {
		t.Fatalf("readPrivateKeyFile = %x, %v", got, err)
	}
	secretText := "not-a-key-but-a-secret-value"
	for name, content := range map[string][]byte{
		"text.pem":  []byte(secretText),
		"other.pem": []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		"big.pem":   bytes.Repeat([]byte("A"), maxKeyFileBytes+1),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readPrivateKeyFile(p)
		if ward.CodeOf(err) != box.CodeInvalidKey {
			t.Errorf("%s: %v, want %s", name, err, box.CodeInvalidKey)
		}
		if err != nil && strings.Contains(err.Error(), secretText) {
			t.Errorf("%s: error %q shows the file's content", name, err)
		}
	}
	if _, err := readPrivateKeyFile(filepath.Join(dir, "missing.pem")); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("missing file: %v, want invalid_argument", err)
	}
}

func TestNormalizeKeyID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "0123456789abcdef": "0123456789abcdef", "0123456789ABCDEF": "0123456789abcdef"} {
		if got, err := normalizeKeyID(in); err != nil || got != want {
			t.Errorf("normalizeKeyID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"0123", "0123456789abcdeg", "0123456789abcdef0", " 0123456789abcde"} {
		var ue usageError
		if _, err := normalizeKeyID(in); !errors.As(err, &ue) {
			t.Errorf("normalizeKeyID(%q): %v, want a usage error", in, err)
		}
	}
}

// TestProtectUsageErrors checks the new verbs' usage errors exit 2 before
// any request (there is no server to send one to).
func TestProtectUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"secret", "set"},
		{"secret", "set", "bad/name"},
		{"secret", "set", "A", "B"},
		{"secret", "rm"},
		{"secret", "list", "extra"},
		{"sealing-key"},
		{"sealing-key", "Bad_Name"},
		{"sealing-key", "fn", "--create"},
		{"sealing-key", "fn", "--out", "k.pem"},
		{"sealing-key", "fn", "--create", "--out", "-"},
		{"task", "submit", "fn", "--seal"},
		{"task", "submit", "fn", "--seal", "--key-id", "xyz", "--payload", "{}"},
		{"task", "submit", "fn", "--key-id", "0123456789abcdef", "--payload", "{}"},
		{"task", "payload"},
		{"project", "get", "a", "b"},
		{"project", "get", "Bad_Name"},
		{"project", "set"},
		{"project", "set", "--retention-days", "x"},
		{"project", "delete"},
		{"project", "delete", "acme"},
		{"keys", "rotate", "extra"},
	} {
		r := newCLI(t, "").run(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--help") {
			t.Errorf("ward %s: exit %d, stderr %q; want a usage error", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

func TestProtectHelp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"secret", "set", "--help"}, "never printed"},
		{[]string{"sealing-key", "--help"}, "sealed_key_mismatch"},
		{[]string{"task", "submit", "--help"}, "--key-id"},
		{[]string{"task", "payload", "--help"}, "--unseal-key"},
		{[]string{"project", "delete", "--help"}, "backups of the data store included"},
		{[]string{"keys", "rotate", "--help"}, "Destroy the backup"},
	} {
		r := newCLI(t, "").run(t, tt.args...)
		r.wantCode(t, 0)
		if !strings.Contains(r.stdout, tt.want) {
			t.Errorf("ward %s: help lacks %q", strings.Join(tt.args, " "), tt.want)
		}
	}
}

// devServer opens a single-node server on dataDir, lets use call its API
// with an admin token, and stops it.
func devServer(t *testing.T, dataDir, rootKey string, use func(ctx context.Context, c *client.Client)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv, err := server.Open(ctx, server.Config{DataDir: dataDir, Addr: "127.0.0.1:0", RootKey: rootKey, ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx)
	}()
	defer func() {
		cancel()
		<-done
		srv.Close()
	}()
	token, _, err := srv.AdminToken(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.URL(), token)
	if err != nil {
		t.Fatal(err)
	}
	use(ctx, c)
}

// checkConfig writes config (encrypted at rest) on the first call,
// and checks it reads back on later ones.
func checkConfig(t *testing.T, write bool) func(context.Context, *client.Client) {
	return func(ctx context.Context, c *client.Client) {
		t.Helper()
		if write {
			if _, err := c.PutConfig(ctx, ward.DefaultProject, "", ward.Config{"region": "eu-west-1"}); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := c.GetConfig(ctx, ward.DefaultProject, "")
		if err != nil || cfg["region"] != "eu-west-1" {
			t.Fatalf("config = %v, %v; want region eu-west-1", cfg, err)
		}
	}
}

func TestKeysRotateFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	devServer(t, dir, "", checkConfig(t, true))
	keyFile := filepath.Join(dir, "keys", "root.key")
	before, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	r := newCLI(t, "").run(t, "keys", "rotate", "--data", dir)
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "under a new root key, now in "+keyFile) || strings.Contains(r.stdout, "WARD_ROOT_KEY") {
		t.Errorf("stdout = %q", r.stdout)
	}
	after, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, after) {
		t.Fatal("root.key did not change")
	}
	// The data reads back under the new key.
	devServer(t, dir, "", checkConfig(t, false))

	r = newCLI(t, "").run(t, "-o", "json", "keys", "rotate", "--data", dir)
	r.wantCode(t, 0)
	var out rotation
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.KeyFile != keyFile || out.NewRootKey != "" || out.EpochKeys < 1 {
		t.Errorf("json = %s (%v)", r.stdout, err)
	}
}

func TestKeysRotateEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, oldKey, err := seal.NewRootKeyBase64()
	if err != nil {
		t.Fatal(err)
	}
	devServer(t, dir, oldKey, checkConfig(t, true))
	c := newCLI(t, "")
	c.env["WARD_ROOT_KEY"] = oldKey
	r := c.run(t, "-o", "json", "keys", "rotate", "--data", dir)
	r.wantCode(t, 0)
	var out rotation
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.NewRootKey == "" || out.NewRootKey == oldKey || out.KeyFile != "" || out.EpochKeys < 1 {
		t.Fatalf("json = %s (%v)", r.stdout, err)
	}
	devServer(t, dir, out.NewRootKey, checkConfig(t, false))
	if srv, err := server.Open(t.Context(), server.Config{DataDir: dir, Addr: "127.0.0.1:0", RootKey: oldKey}); err == nil {
		srv.Close()
		t.Error("the old root key still opens the data directory")
	}

	// The table form prints the new key once, with what to do with it.
	c.env["WARD_ROOT_KEY"] = out.NewRootKey
	r = c.run(t, "keys", "rotate", "--data", dir)
	r.wantCode(t, 0)
	lines := strings.Split(r.stdout, "\n")
	if len(lines) < 3 || lines[2] == "" || lines[2] == out.NewRootKey || strings.Count(r.stdout, lines[2]) != 1 {
		t.Fatalf("stdout = %q", r.stdout)
	}
	if !strings.Contains(r.stdout, "start\nthe server with WARD_ROOT_KEY set to it") {
		t.Errorf("stdout lacks the instruction: %q", r.stdout)
	}
	devServer(t, dir, lines[2], checkConfig(t, false))
}

func TestKeysRotateErrors(t *testing.T) {
	t.Parallel()
	r := newCLI(t, "").run(t, "keys", "rotate", "--data", filepath.Join(t.TempDir(), "none"))
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: not_found: no data directory") {
		t.Errorf("stderr = %q", r.stderr)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = newCLI(t, "").run(t, "keys", "rotate", "--data", file)
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: invalid_argument: ") {
		t.Errorf("stderr = %q", r.stderr)
	}
	// An empty directory has no keystore.
	r = newCLI(t, "").run(t, "keys", "rotate", "--data", t.TempDir())
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: not_found: no keystore") {
		t.Errorf("stderr = %q", r.stderr)
	}
}
