package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/server"
)

// node is a running single-node ward for a test.
type node struct {
	srv  *server.Server
	cl   *client.Client
	stop func() error
}

func startNode(t testing.TB, dir string, cfg server.Config) *node {
	t.Helper()
	ctx := context.Background()
	cfg.DataDir = dir
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if os.Getenv("WARD_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := srv.AdminToken(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(srv.URL(), tok)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(sctx)
		srv.Close()
		done <- err
	}()
	var once sync.Once
	var serr error
	stop := func() error {
		once.Do(func() {
			cancel()
			serr = <-done
		})
		return serr
	}
	t.Cleanup(func() { stop() })
	return &node{srv: srv, cl: cl, stop: stop}
}

func deployEcho(t testing.TB, cl *client.Client, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := cl.PutFunction(ctx, ward.DefaultProject, name, ward.FunctionSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.UploadCode(ctx, ward.DefaultProject, name, sandboxtest.Module("echo")); err != nil {
		t.Fatal(err)
	}
}

// TestHelloInBatches runs 1,000 tasks of examples/hello, submitted in
// batches, and checks every result.
func TestHelloInBatches(t *testing.T) {
	n := startNode(t, t.TempDir(), server.Config{ShutdownGrace: time.Second})
	ctx := context.Background()
	if _, err := n.srv.DeployExamples(ctx, "../../examples", t.TempDir()); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	const total, batch = 1000, 100
	ids := make([]string, 0, total)
	for b := 0; b < total/batch; b++ {
		reqs := make([]ward.SubmitRequest, batch)
		for i := range reqs {
			reqs[i] = ward.SubmitRequest{Function: "hello", Payload: json.RawMessage(fmt.Sprintf(`{"name":"n%d"}`, b*batch+i))}
		}
		tasks, err := n.cl.SubmitBatch(ctx, ward.DefaultProject, reqs)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			ids = append(ids, tk.ID)
		}
	}
	for i, id := range ids {
		tk, err := n.cl.AwaitTask(ctx, ward.DefaultProject, id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status != ward.StatusSucceeded {
			t.Fatalf("task %d: %s %+v", i, tk.Status, tk.Error)
		}
		res, err := n.cl.Result(ctx, ward.DefaultProject, id)
		if want := fmt.Sprintf(`{"greeting":"Hello, n%d!"}`, i); err != nil || string(res) != want {
			t.Fatalf("task %d: result %q, want %q (%v)", i, res, want, err)
		}
	}
}

// TestRestartKeepsEverything stops a node and opens the same directory
// again: projects, functions, tasks and tokens are all still there.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	n := startNode(t, dir, server.Config{ShutdownGrace: time.Second})
	if _, err := n.cl.CreateProject(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	deployEcho(t, n.cl, "echo")
	tk, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: "echo", Payload: json.RawMessage(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = n.cl.AwaitTask(ctx, ward.DefaultProject, tk.ID); err != nil || tk.Status != ward.StatusSucceeded {
		t.Fatalf("%v %v", err, tk.Status)
	}
	tr, err := n.cl.CreateToken(ctx, "kept", ward.CreateTokenRequest{Role: ward.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}

	n2 := startNode(t, dir, server.Config{ShutdownGrace: time.Second})
	ps, err := n2.cl.ListProjects(ctx)
	if err != nil || len(ps) != 2 {
		t.Fatalf("projects after restart: %v %v", ps, err)
	}
	if _, err := n2.cl.GetFunction(ctx, ward.DefaultProject, "echo"); err != nil {
		t.Fatal(err)
	}
	got, err := n2.cl.GetTask(ctx, ward.DefaultProject, tk.ID)
	if err != nil || got.Status != ward.StatusSucceeded {
		t.Fatalf("task after restart: %v %v", got.Status, err)
	}
	// The viewer token minted before the restart still works.
	viewer, err := client.New(n2.srv.URL(), tr.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.ListFunctions(ctx, "kept"); err != nil {
		t.Fatalf("token minted before restart: %v", err)
	}
}

// Existing data without its root key: the server refuses to start instead of
// creating a new key over it.
func TestMissingRootKeyRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := server.Open(ctx, server.Config{DataDir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := os.Remove(dir + "/keys/root.key"); err != nil {
		t.Fatal(err)
	}
	_, err = server.Open(ctx, server.Config{DataDir: dir, Addr: "127.0.0.1:0"})
	if ward.CodeOf(err) != seal.CodeRootKeyMissing {
		t.Fatalf("open without the root key: %v, want %s", err, seal.CodeRootKeyMissing)
	}
	if _, err := os.Stat(dir + "/keys/root.key"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a root key was created over existing data: %v", err)
	}
}

// TestKeysDirApart: with KeysDir elsewhere, the data directory holds no key
// at all, and the node needs the keys directory to open its data again.
func TestKeysDirApart(t *testing.T) {
	data, keys := t.TempDir(), t.TempDir()
	ctx := context.Background()
	n := startNode(t, data, server.Config{ShutdownGrace: time.Second, KeysDir: keys})
	deployEcho(t, n.cl, "echo")
	if _, err := n.cl.PutSecret(ctx, ward.DefaultProject, "", "S", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"root.key", "keystore.db", "signing.key"} {
		if _, err := os.Stat(filepath.Join(keys, name)); err != nil {
			t.Errorf("keys dir lacks %s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(data, "keys", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("data dir holds %s", name)
		}
	}
	// Without its keys directory the data does not open, and no new root key
	// is made over it.
	_, err := server.Open(ctx, server.Config{DataDir: data, Addr: "127.0.0.1:0"})
	if ward.CodeOf(err) != seal.CodeRootKeyMissing {
		t.Fatalf("open without the keys dir: %v, want %s", err, seal.CodeRootKeyMissing)
	}
	n = startNode(t, data, server.Config{ShutdownGrace: time.Second, KeysDir: keys})
	if _, err := n.cl.GetFunction(ctx, ward.DefaultProject, "echo"); err != nil {
		t.Fatal(err)
	}
}
