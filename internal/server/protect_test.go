package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/gobuild"
	"github.com/wardhq/ward/internal/privacy"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/seal/box"
	"github.com/wardhq/ward/internal/server"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/sealed"
	"github.com/wardhq/ward/internal/store/sqlite"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// canaryModule builds testdata/canary for wasip1, or skips.
func canaryModule(t *testing.T) []byte {
	t.Helper()
	code, err := gobuild.Wasm(context.Background(), gobuild.Options{Dir: "testdata/canary"})
	if errors.Is(err, gobuild.ErrNoToolchain) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// needles returns the marker and every base64 form it can take inside a
// longer encoded blob: for each of the three byte alignments, the run of
// characters determined by the marker alone, in the standard and URL
// alphabets.
func needles(marker string) [][]byte {
	out := [][]byte{[]byte(marker)}
	for shift := range 3 {
		in := append(make([]byte, shift), marker...)
		start := (shift*8 + 5) / 6
		end := (len(in) * 8) / 6
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(in)
			out = append(out, []byte(s[start:end]))
		}
	}
	return out
}

// findMarker reports the first file under dir that holds a needle.
func findMarker(t *testing.T, dir string, ns [][]byte) (string, bool) {
	t.Helper()
	var found string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if bytes.Contains(b, n) {
				found = path + " holds " + string(n)
				return fs.SkipAll
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found, found != ""
}

func TestNeedlesFindEmbeddedBase64(t *testing.T) {
	t.Parallel()
	const marker = "canary-0123456789abcdef"
	for shift := range 3 {
		blob := append(bytes.Repeat([]byte("x"), shift+5), marker...)
		blob = append(blob, "tail"...)
		enc := []byte(base64.RawStdEncoding.EncodeToString(blob))
		hit := false
		for _, n := range needles(marker) {
			hit = hit || bytes.Contains(enc, n)
		}
		if !hit {
			t.Errorf("shift %d: no needle matches %s", shift, enc)
		}
	}
}

// TestCanary sends a unique marker through every channel that carries user
// data (payloads plain and sealed, results, logs, config values, secret
// values) through submit, run, retry, invoke and read; afterwards no file
// under the data directory and nothing the server logged holds the marker,
// plain or in base64.
func TestCanary(t *testing.T) {
	code := canaryModule(t)
	var raw [12]byte
	rand.Read(raw[:])
	marker := "canary-" + hex.EncodeToString(raw[:])
	dir := t.TempDir()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := startNode(t, dir, server.Config{ShutdownGrace: time.Second, Logger: logger})
	ctx := context.Background()
	p := ward.DefaultProject
	spec := ward.FunctionSpec{Retries: ward.Retries{MaxAttempts: 2, BackoffS: 1}}
	if _, err := n.cl.PutFunction(ctx, p, "canary", spec); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.UploadCode(ctx, p, "canary", code); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.PutConfig(ctx, p, "", ward.Config{"GLOBAL": marker + "-global-config"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.PutConfig(ctx, p, "canary", ward.Config{"LOCAL": marker + "-local-config"}); err != nil {
		t.Fatal(err)
	}
	globalSecret := marker + "-global-secret"
	localSecret := marker + "-local-secret"
	if _, err := n.cl.PutSecret(ctx, p, "", "GLOBAL_SECRET", []byte(globalSecret)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.PutSecret(ctx, p, "canary", "LOCAL_SECRET", []byte(localSecret)); err != nil {
		t.Fatal(err)
	}

	plain, err := n.cl.Submit(ctx, p, ward.SubmitRequest{Function: "canary", Payload: json.RawMessage(`{"m":"` + marker + `-payload"}`)})
	if err != nil {
		t.Fatal(err)
	}
	key, err := n.cl.SealingKey(ctx, p, "canary")
	if err != nil {
		t.Fatal(err)
	}
	env, err := client.Seal(key, p, "canary", []byte(marker+"-sealed"))
	if err != nil {
		t.Fatal(err)
	}
	sealedTask, err := n.cl.Submit(ctx, p, ward.SubmitRequest{Function: "canary", Sealed: env})
	if err != nil {
		t.Fatal(err)
	}
	if !sealedTask.Sealed {
		t.Error("sealed task not marked sealed")
	}
	// Sealed to the function's key but bound to another function: the
	// server cannot tell without the private key; the task cannot open it
	// and fails with a clear code.
	misbound, err := client.Seal(key, p, "other", []byte(marker+"-misbound"))
	if err != nil {
		t.Fatal(err)
	}
	misTask, err := n.cl.Submit(ctx, p, ward.SubmitRequest{Function: "canary", Sealed: misbound})
	if err != nil {
		t.Fatal(err)
	}
	// A synchronous invoke (one attempt: it fails, and keeps its log).
	if _, err := n.cl.Invoke(ctx, p, "canary", []byte(`{"m":"`+marker+`-invoke"}`)); err == nil {
		t.Error("invoke of a first attempt succeeded")
	}

	for _, tc := range []struct {
		id, wantResult string
	}{{plain.ID, marker + "-payload"}, {sealedTask.ID, marker + "-sealed"}} {
		tk, err := n.cl.AwaitTask(ctx, p, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status != ward.StatusSucceeded || tk.Attempts != 2 {
			t.Fatalf("task %s: %s after %d attempts, %+v", tc.id, tk.Status, tk.Attempts, tk.Error)
		}
		res, err := n.cl.Result(ctx, p, tc.id)
		if err != nil || !bytes.Contains(res, []byte(tc.wantResult)) || !bytes.Contains(res, []byte(marker+"-local-config")) {
			t.Fatalf("result %s, %v", res, err)
		}
		log, err := n.cl.Log(ctx, p, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(log, []byte(globalSecret)) || bytes.Contains(log, []byte(localSecret)) || !bytes.Contains(log, []byte("[REDACTED]")) {
			t.Fatalf("log shows a secret or no redaction:\n%s", log)
		}
		if !bytes.Contains(log, []byte(tc.wantResult)) {
			t.Fatalf("log lacks the payload (the canary would prove nothing):\n%s", log)
		}
		pl, err := n.cl.Payload(ctx, p, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if tc.id == sealedTask.ID && (bytes.Contains(pl, []byte(marker)) || !bytes.Equal(pl, env)) {
			t.Fatal("the sealed payload did not come back as the envelope sent")
		}
	}
	if tk, err := n.cl.AwaitTask(ctx, p, misTask.ID); err != nil || tk.Status != ward.StatusFailed || tk.Error == nil || tk.Error.Code != box.CodeOpenFailed {
		t.Fatalf("task sealed for another function: %v %+v", err, tk)
	}
	// Retry a finished task: its payload is read again from the store.
	if _, err := n.cl.RetryTask(ctx, p, plain.ID); err != nil {
		t.Fatal(err)
	}
	if tk, err := n.cl.AwaitTask(ctx, p, plain.ID); err != nil || tk.Status != ward.StatusSucceeded {
		t.Fatalf("retried task: %v %v", tk.Status, err)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}

	ns := needles(marker)
	if where, ok := findMarker(t, dir, ns); ok {
		t.Errorf("data dir: %s", where)
	}
	for _, nd := range ns {
		if bytes.Contains(logs.Bytes(), nd) {
			t.Errorf("server log holds %s", nd)
		}
	}
	if len(logs.Bytes()) == 0 {
		t.Error("the server logged nothing (the log check would prove nothing)")
	}
}

// node with a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// copyStore copies the store's files (a backup, taken while the node is
// stopped) into a new data directory.
func copyStore(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ward.db", "ward.db-wal"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// copyKeys copies the keystore and root key of one data dir into another.
func copyKeys(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(filepath.Join(to, "keys"), os.DirFS(filepath.Join(from, "keys"))); err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(filepath.Join(to, "keys"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o600)
	}); err != nil {
		t.Fatal(err)
	}
}

// bodyStatus reads a task body through the API and returns the HTTP status
// and error code.
func bodyStatus(t *testing.T, cl *client.Client, project, id string) (int, ward.Code) {
	t.Helper()
	_, err := cl.Result(context.Background(), project, id)
	if err == nil {
		return http.StatusOK, ""
	}
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("read result: %v", err)
	}
	return ae.Status, ae.Code
}

// TestBackupAfterPurge: a copy of the store taken before a retention purge
// opens with the keystore of that time, and no longer with the live one
// after the purge destroyed the old epoch keys.
func TestBackupAfterPurge(t *testing.T) {
	dir := t.TempDir()
	day0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: day0}
	ctx := context.Background()
	n := startNode(t, dir, server.Config{ShutdownGrace: time.Second, Now: clk.Now})
	if _, err := n.cl.SetRetention(ctx, ward.DefaultProject, 2); err != nil {
		t.Fatal(err)
	}
	deployEcho(t, n.cl, "echo")
	if _, err := n.cl.PutConfig(ctx, ward.DefaultProject, "echo", ward.Config{"K": "kept"}); err != nil {
		t.Fatal(err)
	}
	tk, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: "echo", Payload: json.RawMessage(`{"old":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = n.cl.AwaitTask(ctx, ward.DefaultProject, tk.ID); err != nil || tk.Status != ward.StatusSucceeded {
		t.Fatalf("%v %v", tk.Status, err)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	backup := t.TempDir()
	copyStore(t, dir, backup)
	keysThen := t.TempDir()
	copyKeys(t, dir, keysThen)

	// Four days later the live node purges.
	clk.Set(day0.Add(4 * 24 * time.Hour))
	n = startNode(t, dir, server.Config{ShutdownGrace: time.Second, Now: clk.Now})
	// The node runs a pass when it starts; this one makes sure it is done
	// (whichever of the two did the work).
	if _, err := n.srv.Purger.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.GetTask(ctx, ward.DefaultProject, tk.ID); !errors.Is(err, ward.ErrNotFound) {
		t.Fatalf("purged task still there: %v", err)
	}
	// Config lives under the lasting key: retention leaves it readable.
	if cfg, err := n.cl.GetConfig(ctx, ward.DefaultProject, "echo"); err != nil || cfg["K"] != "kept" {
		t.Fatalf("config after purge: %v %v", cfg, err)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}

	// The backup with the keystore of its time still opens (the check below
	// is not vacuous) …
	if pl, err := readBackup(t, backup, keysThen, tk.ID, store.BodyPayload); err != nil || string(pl) != `{"old":1}` {
		t.Fatalf("backup with the old keystore: %q %v", pl, err)
	}
	// … and with the live keystore no body does.
	for _, b := range []store.Body{store.BodyPayload, store.BodyResult} {
		if pl, err := readBackup(t, backup, dir, tk.ID, b); ward.CodeOf(err) != seal.CodeKeyDestroyed {
			t.Fatalf("%s from the backup with the live keystore: %q %v, want %s", b, pl, err, seal.CodeKeyDestroyed)
		}
	}
}

// readBackup opens a store backup (the files in storeDir) with the keystore
// of keysDir, as an attacker holding both would, and reads a task body.
func readBackup(t *testing.T, storeDir, keysDir, id string, b store.Body) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	work := t.TempDir()
	copyStore(t, storeDir, work)
	copyKeys(t, keysDir, work)
	db, err := sqlite.Open(ctx, filepath.Join(work, "ward.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	root, err := seal.LoadOrCreateRootKeyFile(filepath.Join(work, "keys", "root.key"), false)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := seal.OpenKeystore(ctx, filepath.Join(work, "keys", "keystore.db"), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	return sealed.New(db, ks, nil).GetTaskBody(ctx, ward.DefaultProject, id, b)
}

// TestDeleteProjectShredsEverything: after a project is deleted, a backup
// of the store taken before opens none of its bytes with the live keys:
// task bodies, config, secrets and code.
func TestDeleteProjectShredsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	n := startNode(t, dir, server.Config{ShutdownGrace: time.Second})
	if _, err := n.cl.CreateProject(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	fn := "echo"
	if _, err := n.cl.PutFunction(ctx, "acme", fn, ward.FunctionSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.UploadCode(ctx, "acme", fn, sandboxtest.Module("echo")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.PutConfig(ctx, "acme", "", ward.Config{"K": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.PutSecret(ctx, "acme", fn, "S", []byte("secret value")); err != nil {
		t.Fatal(err)
	}
	tk, err := n.cl.Submit(ctx, "acme", ward.SubmitRequest{Function: fn, Payload: json.RawMessage(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = n.cl.AwaitTask(ctx, "acme", tk.ID); err != nil || tk.Status != ward.StatusSucceeded {
		t.Fatalf("%v %v", tk.Status, err)
	}
	// The default project's data must survive acme's deletion.
	deployEcho(t, n.cl, "echo")
	other, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: "echo", Payload: json.RawMessage(`{"b":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if other, err = n.cl.AwaitTask(ctx, ward.DefaultProject, other.ID); err != nil || other.Status != ward.StatusSucceeded {
		t.Fatalf("%v %v", other.Status, err)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	backup := t.TempDir()
	copyStore(t, dir, backup)

	n = startNode(t, dir, server.Config{ShutdownGrace: time.Second})
	if err := n.cl.DeleteProject(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.GetProject(ctx, "acme"); !errors.Is(err, ward.ErrNotFound) {
		t.Fatalf("deleted project: %v", err)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}

	restored := t.TempDir()
	copyStore(t, backup, restored)
	copyKeys(t, dir, restored)
	r := startNode(t, restored, server.Config{ShutdownGrace: time.Second})
	if st, c := bodyStatus(t, r.cl, "acme", tk.ID); st != http.StatusGone || c != seal.CodeKeyDestroyed {
		t.Fatalf("acme's result from the backup: %d %s", st, c)
	}
	if _, err := r.cl.Payload(ctx, "acme", tk.ID); ward.CodeOf(err) != seal.CodeKeyDestroyed {
		t.Fatalf("acme's payload from the backup: %v", err)
	}
	if _, err := r.cl.GetConfig(ctx, "acme", ""); ward.CodeOf(err) != seal.CodeKeyDestroyed {
		t.Fatalf("acme's config from the backup: %v", err)
	}
	if _, err := r.srv.Store.GetSecrets(ctx, "acme", fn); ward.CodeOf(err) != seal.CodeKeyDestroyed {
		t.Fatalf("acme's secrets from the backup: %v", err)
	}
	if _, err := r.srv.Store.GetCode(ctx, "acme", ward.Digest(sandboxtest.Module("echo"))); ward.CodeOf(err) != seal.CodeKeyDestroyed {
		t.Fatalf("acme's code from the backup: %v", err)
	}
	// The other project is intact.
	if st, c := bodyStatus(t, r.cl, ward.DefaultProject, other.ID); st != http.StatusOK {
		t.Fatalf("default project's result: %d %s", st, c)
	}
}

// TestTokensForgottenAfterRetention: a tokenized value re-identifies for the
// owner until the project's retention purge; afterwards the token is only
// a token, in the live store and in any backup.
func TestTokensForgottenAfterRetention(t *testing.T) {
	dir := t.TempDir()
	day0 := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	clk := &clock{t: day0}
	ctx := context.Background()
	n := startNode(t, dir, server.Config{ShutdownGrace: time.Second, Now: clk.Now})
	if _, err := n.cl.SetRetention(ctx, ward.DefaultProject, 2); err != nil {
		t.Fatal(err)
	}
	spec := ward.FunctionSpec{Input: ward.Input{Fields: []string{"/customer/id"}, Tokenize: []string{"/customer/id"}}}
	if _, err := n.cl.PutFunction(ctx, ward.DefaultProject, "echo", spec); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.UploadCode(ctx, ward.DefaultProject, "echo", sandboxtest.Module("echo")); err != nil {
		t.Fatal(err)
	}
	tk, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: "echo", Payload: json.RawMessage(`{"customer":{"id":"cust-9","name":"Ada"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = n.cl.AwaitTask(ctx, ward.DefaultProject, tk.ID); err != nil || tk.Status != ward.StatusSucceeded {
		t.Fatalf("%v %v", tk.Status, err)
	}
	res, err := n.cl.Result(ctx, ward.DefaultProject, tk.ID)
	if err != nil || bytes.Contains(res, []byte("cust-9")) || bytes.Contains(res, []byte("Ada")) {
		t.Fatalf("the task saw more than its fields: %s %v", res, err)
	}
	// The stored payload, decrypted (an admin may read it), holds only the
	// field, as a token.
	stored, err := n.cl.Payload(ctx, ward.DefaultProject, tk.ID)
	if err != nil || bytes.Contains(stored, []byte("cust-9")) || bytes.Contains(stored, []byte("Ada")) || len(privacy.FindTokens(stored, 2)) != 1 {
		t.Fatalf("stored payload %s, %v", stored, err)
	}
	toks := privacy.FindTokens(res, 2)
	if len(toks) != 1 {
		t.Fatalf("result %s holds %d tokens", res, len(toks))
	}
	got, err := n.cl.Detokenize(ctx, ward.DefaultProject, toks)
	if err != nil || string(got[toks[0]]) != `"cust-9"` {
		t.Fatalf("detokenize before the purge: %v %v", got, err)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	clk.Set(day0.Add(4 * 24 * time.Hour))
	n = startNode(t, dir, server.Config{ShutdownGrace: time.Second, Now: clk.Now})
	if _, err := n.srv.Purger.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = n.cl.Detokenize(ctx, ward.DefaultProject, toks)
	if err != nil || len(got) != 0 {
		t.Fatalf("detokenize after the purge: %v %v", got, err)
	}
}
