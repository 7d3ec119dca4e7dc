package sealed_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/sealed"
	"github.com/wardhq/ward/internal/store/sqlite"
	"github.com/wardhq/ward/internal/store/storetest"
)

// open returns a sealed SQLite store and the directory holding its files.
func open(t *testing.T) (*sealed.Store, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "ward.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := seal.LoadOrCreateRootKeyFile(filepath.Join(dir, "keys", "root.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := seal.OpenKeystore(ctx, filepath.Join(dir, "keys", "keystore.db"), root, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		ks.Close()
	})
	return sealed.New(st, ks, time.Now), dir
}

// The sealed store is a store: it passes the conformance suite.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := open(t)
		return s
	})
}

// TestNothingInClearOnDisk runs a task's payload, result, log and config
// values, each carrying a marker, through the store; no file of the store
// holds the marker, plain or base64.
func TestNothingInClearOnDisk(t *testing.T) {
	ctx := context.Background()
	s, dir := open(t)
	const marker = "CANARY-7f3a9c1e-payload-marker"
	now := time.Now()
	if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "p", Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutFunction(ctx, &store.PutFunctionParams{Project: "p", Name: "f", Spec: ward.DefaultSpec(), Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConfig(ctx, &store.PutConfigParams{Project: "p", Function: "f", Config: ward.Config{"k": marker}, Now: now}); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"secret":"` + marker + `"}`)
	res, err := s.InsertTasks(ctx, &store.InsertTasksParams{Now: now, Tasks: []store.NewTask{{
		ID: "t_1", Project: "p", Function: "f", CodeDigest: "sha256:" + string(bytes.Repeat([]byte("0"), 64)),
		RunAt: now, TimeoutS: 5, MemoryMB: 16, MaxAttempts: 1, Payload: payload,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Task.PayloadSize != len(payload) {
		t.Fatalf("payload size %d, want the submitted %d", res[0].Task.PayloadSize, len(payload))
	}
	leases, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: "r", Max: 1, FreeMemoryMB: 64, TTL: time.Minute, Now: now})
	if err != nil || len(leases) != 1 || !bytes.Equal(leases[0].Payload, payload) {
		t.Fatalf("lease: %v %+v", err, leases)
	}
	errs, err := s.CompleteTasks(ctx, &store.CompleteParams{Completions: []store.Completion{{
		TaskID: "t_1", LeaseID: leases[0].LeaseID, Project: "p", Status: ward.StatusSucceeded,
		Result: []byte(marker), Log: []byte("log " + marker), Now: now,
	}}})
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	for b, want := range map[store.Body]string{store.BodyPayload: string(payload), store.BodyResult: marker, store.BodyLog: "log " + marker} {
		got, err := s.GetTaskBody(ctx, "p", "t_1", b)
		if err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v", b, got, err)
		}
	}
	if cfg, err := s.GetConfig(ctx, "p", "f"); err != nil || cfg["k"] != marker {
		t.Fatalf("config = %v, %v", cfg, err)
	}
	forms := [][]byte{[]byte(marker), []byte(base64.StdEncoding.EncodeToString([]byte(marker))), []byte(base64.RawStdEncoding.EncodeToString([]byte(marker)))}
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range forms {
			if bytes.Contains(b, f) {
				t.Errorf("%s holds the marker in clear (%q)", path, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A body moved to another task does not open: an integrity error, not data.
func TestMovedBodyDoesNotOpen(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	now := time.Now()
	if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "p", Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConfig(ctx, &store.PutConfigParams{Project: "p", Config: ward.Config{"a": "1", "b": "2"}, Now: now}); err != nil {
		t.Fatal(err)
	}
	// Swap the two sealed values underneath the adapter.
	raw := s.Store
	cfg, err := raw.GetConfig(ctx, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg["a"], cfg["b"] = cfg["b"], cfg["a"]
	if err := raw.PutConfig(ctx, &store.PutConfigParams{Project: "p", Config: cfg, Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetConfig(ctx, "p", ""); ward.CodeOf(err) != seal.CodeIntegrity {
		t.Fatalf("swapped values: %v, want %s", err, seal.CodeIntegrity)
	}
}

// A task whose stored payload does not open fails with the integrity code;
// the other tasks of the same lease call still reach the runner.
func TestUnopenablePayloadFailsItsTaskOnly(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	now := time.Now()
	if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "p", Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutFunction(ctx, &store.PutFunctionParams{Project: "p", Name: "f", Spec: ward.DefaultSpec(), Now: now}); err != nil {
		t.Fatal(err)
	}
	task := func(id string, payload []byte) store.NewTask {
		return store.NewTask{ID: id, Project: "p", Function: "f", CodeDigest: ward.Digest([]byte("code")),
			RunAt: now, TimeoutS: 5, MemoryMB: 16, MaxAttempts: 1, Payload: payload}
	}
	// t_bad is written underneath the adapter: its payload is no envelope.
	if _, err := s.Store.InsertTasks(ctx, &store.InsertTasksParams{Now: now, Tasks: []store.NewTask{task("t_bad", []byte("not an envelope"))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Now: now, Tasks: []store.NewTask{task("t_good", []byte(`{"ok":true}`))}}); err != nil {
		t.Fatal(err)
	}
	leases, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: "r", Max: 10, FreeMemoryMB: 64, TTL: time.Minute, Now: now})
	if err != nil || len(leases) != 1 || leases[0].Task.ID != "t_good" || string(leases[0].Payload) != `{"ok":true}` {
		t.Fatalf("leases = %+v, %v; want only t_good, opened", leases, err)
	}
	bad, err := s.GetTask(ctx, "p", "t_bad")
	if err != nil || bad.Status != ward.StatusFailed || bad.Error == nil || bad.Error.Code != seal.CodeIntegrity {
		t.Fatalf("t_bad = %s %+v, %v; want failed with %s", bad.Status, bad.Error, err, seal.CodeIntegrity)
	}
}

// Code and secret values reach the underlying store as envelopes, each
// project's code under its own key: a blob copied to another project, or a
// secret value moved to another name, does not open.
func TestCodeAndSecretsSealed(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	now := time.Now()
	for _, p := range []string{"p", "q"} {
		if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: p, Now: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutFunction(ctx, &store.PutFunctionParams{Project: p, Name: "f", Spec: ward.DefaultSpec(), Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	code := []byte("\x00asm code that must not be stored in clear")
	digest := ward.Digest(code)
	for _, p := range []string{"p", "q"} {
		fn, err := s.PutCode(ctx, &store.PutCodeParams{Project: p, Function: "f", Digest: digest, Code: code, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if fn.CodeSize != int64(len(code)) || fn.CodeDigest != digest {
			t.Fatalf("function %s: size %d digest %s, want the plaintext's", p, fn.CodeSize, fn.CodeDigest)
		}
	}
	rawP, err := s.Store.GetCode(ctx, "p", digest)
	if err != nil {
		t.Fatal(err)
	}
	rawQ, err := s.Store.GetCode(ctx, "q", digest)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rawP, code[4:]) || bytes.Equal(rawP, rawQ) {
		t.Fatal("code is stored in clear, or alike in two projects")
	}
	if got, err := s.GetCode(ctx, "q", digest); err != nil || !bytes.Equal(got, code) {
		t.Fatalf("GetCode = %q, %v", got, err)
	}
	// p's blob put into q's row does not open as q's code.
	if err := s.Store.DeleteProject(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.CreateProject(ctx, &store.CreateProjectParams{Name: "q", Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.PutFunction(ctx, &store.PutFunctionParams{Project: "q", Name: "f", Spec: ward.DefaultSpec(), Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.PutCode(ctx, &store.PutCodeParams{Project: "q", Function: "f", Digest: digest, Code: rawP, Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCode(ctx, "q", digest); ward.CodeOf(err) != seal.CodeIntegrity {
		t.Fatalf("another project's code blob: %v, want an integrity error", err)
	}

	const value = "secret-value-5e1d"
	if _, err := s.PutSecret(ctx, &store.PutSecretParams{Project: "p", Function: "f", Name: "A", Value: []byte(value), Now: now}); err != nil {
		t.Fatal(err)
	}
	raw, err := s.Store.GetSecrets(ctx, "p", "f")
	if err != nil || len(raw) != 1 || bytes.Contains(raw[0].Value, []byte(value)) || raw[0].Size != len(value) {
		t.Fatalf("stored secret: %+v %v", raw, err)
	}
	// The envelope of A written as B does not open.
	if _, err := s.Store.PutSecret(ctx, &store.PutSecretParams{Project: "p", Function: "f", Name: "B", Value: raw[0].Value, Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSecrets(ctx, "p", "f"); ward.CodeOf(err) != seal.CodeIntegrity {
		t.Fatalf("moved secret: %v, want %s", err, seal.CodeIntegrity)
	}
}
