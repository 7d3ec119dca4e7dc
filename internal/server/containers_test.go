package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/server"
)

// containersOn returns the container settings for a node in dir, or skips
// t where containers cannot run (unless WARD_TEST_OCI=1 requires them).
func containersOn(t *testing.T, dir string) server.Containers {
	t.Helper()
	if os.Getenv("WARD_TEST_OCI") != "1" {
		if _, err := exec.LookPath("runc"); err != nil || os.Geteuid() != 0 {
			t.Skip("container tasks need runc and root; set WARD_TEST_OCI=1 to require them")
		}
	}
	// The containers' root user is an unprivileged host user: it must pass
	// through the state directory's parents.
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if info, err := os.Stat(d); err == nil && info.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, info.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	return server.Containers{On: true, StateDir: filepath.Join(dir, "oci")}
}

// TestContainerTasks runs container tasks through the whole platform next
// to wasm tasks: the runner registers both drivers, an image goes in through
// the API, its tasks succeed with their results, and a failing one keeps
// its exit status.
func TestContainerTasks(t *testing.T) {
	dir := t.TempDir()
	ctrs := containersOn(t, dir)
	n := startNode(t, filepath.Join(dir, "data"), server.Config{ShutdownGrace: time.Second, Containers: ctrs})
	if n.srv.Containers == nil {
		t.Fatal("the node opened without its container sandbox")
	}
	ctx := context.Background()
	runners, err := n.cl.ListRunners(ctx)
	if err != nil || len(runners) != 1 || !slices.Equal(runners[0].Drivers, []string{"wasm", "oci"}) {
		t.Fatalf("runners = %+v, %v; want one with drivers wasm and oci", runners, err)
	}

	deploy := func(name, program string) {
		t.Helper()
		img := sandboxtest.GoImage(t, program)
		if _, err := n.cl.PutFunction(ctx, ward.DefaultProject, name, ward.FunctionSpec{Runtime: ward.RuntimeOCI}); err != nil {
			t.Fatal(err)
		}
		up, err := n.cl.UploadImage(ctx, ward.DefaultProject, name, img.Code)
		if err != nil || up.Digest != img.Digest {
			t.Fatalf("upload: %+v, %v; want digest %s", up, err, img.Digest)
		}
	}
	deploy("box-echo", sandboxtest.GoEcho)
	deploy("box-exit", sandboxtest.GoExit3)
	deployEcho(t, n.cl, "wasm-echo")

	var ids []string
	for i := range 6 {
		fn := []string{"box-echo", "wasm-echo"}[i%2]
		tk, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: fn, Payload: []byte(`{"n":` + string(rune('0'+i)) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	for i, id := range ids {
		tk, err := n.cl.AwaitTask(ctx, ward.DefaultProject, id)
		if err != nil || tk.Status != ward.StatusSucceeded {
			t.Fatalf("task %d: %v %s %+v", i, err, tk.Status, tk.Error)
		}
		res, err := n.cl.Result(ctx, ward.DefaultProject, id)
		if want := `{"n":` + string(rune('0'+i)) + `}`; err != nil || string(res) != want {
			t.Errorf("task %d: result %q, %v; want %q", i, res, err, want)
		}
		if i%2 == 0 && (tk.Usage.PeakMemoryBytes <= 0 || tk.CodeDigest == "") {
			t.Errorf("container task %d: usage %+v, digest %q", i, tk.Usage, tk.CodeDigest)
		}
	}

	tk, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: "box-exit"})
	if err != nil {
		t.Fatal(err)
	}
	tk, err = n.cl.AwaitTask(ctx, ward.DefaultProject, tk.ID)
	if err != nil || tk.Status != ward.StatusFailed || tk.Error == nil || tk.Error.Code != ward.CodeExitStatus || tk.ExitCode == nil || *tk.ExitCode != 3 {
		t.Errorf("failing container task: %v %s %+v exit %v", err, tk.Status, tk.Error, tk.ExitCode)
	}

	// Invoke runs a container synchronously too.
	out, err := n.cl.Invoke(ctx, ward.DefaultProject, "box-echo", []byte(`"sync"`))
	if err != nil || string(out.Body) != `"sync"` {
		t.Errorf("invoke: %q, %v", out.Body, err)
	}
}

// TestContainersUnavailable opens a node whose OCI runtime is missing: it
// starts without containers, its runner lists wasm alone, and wasm tasks
// run.
func TestContainersUnavailable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir, server.Config{ShutdownGrace: time.Second, Containers: server.Containers{
		On: true, Runtime: "ward-test-no-such-runtime", StateDir: filepath.Join(dir, "oci"),
	}})
	if n.srv.Containers != nil {
		t.Fatal("a node without its OCI runtime opened a container sandbox")
	}
	ctx := context.Background()
	runners := awaitRunners(t, n.cl)
	if len(runners) != 1 || !slices.Equal(runners[0].Drivers, []string{"wasm"}) {
		t.Fatalf("runners = %+v; want one with the wasm driver alone", runners)
	}
	deployEcho(t, n.cl, "echo")
	tk, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: "echo", Payload: []byte(`1`)})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = n.cl.AwaitTask(ctx, ward.DefaultProject, tk.ID); err != nil || tk.Status != ward.StatusSucceeded {
		t.Fatalf("wasm task: %v %s", err, tk.Status)
	}
	// An oci task waits: no runner here can take it.
	if _, err := n.cl.PutFunction(ctx, ward.DefaultProject, "box", ward.FunctionSpec{Runtime: ward.RuntimeOCI}); err != nil {
		t.Fatal(err)
	}
	img := sandboxtest.GoImage(t, sandboxtest.GoEcho)
	if _, err := n.cl.UploadImage(ctx, ward.DefaultProject, "box", img.Code); err != nil {
		t.Fatal(err)
	}
	box, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: "box", Payload: []byte(`2`)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := n.cl.WaitTask(ctx, ward.DefaultProject, box.ID, 2*time.Second); err != nil || got.Status != ward.StatusQueued {
		t.Errorf("oci task on a wasm-only node: %v %s, want it queued", err, got.Status)
	}
}
