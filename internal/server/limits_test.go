package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/server"
)

// TestResultLimit runs an echo whose result is one byte over the
// function's max_result_kb: the run fails output_limit, and the same
// payload passes a function with the default cap.
func TestResultLimit(t *testing.T) {
	t.Parallel()
	n := startNode(t, t.TempDir(), server.Config{ShutdownGrace: time.Second})
	ctx := context.Background()
	for name, limits := range map[string]ward.Limits{"small": {MaxResultKB: 1}, "plain": {}} {
		if _, err := n.cl.PutFunction(ctx, ward.DefaultProject, name, ward.FunctionSpec{Limits: limits}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.cl.UploadCode(ctx, ward.DefaultProject, name, sandboxtest.Module("echo")); err != nil {
			t.Fatal(err)
		}
	}
	payload := []byte(`"` + strings.Repeat("x", 1023) + `"`) // 1025 bytes
	for name, want := range map[string]ward.Code{"small": ward.CodeOutputLimit, "plain": ""} {
		tk, err := n.cl.Submit(ctx, ward.DefaultProject, ward.SubmitRequest{Function: name, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		tk, err = n.cl.AwaitTask(ctx, ward.DefaultProject, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := ward.Code("")
		if tk.Error != nil {
			got = tk.Error.Code
		}
		if got != want {
			t.Errorf("%s: %s %+v, want code %q", name, tk.Status, tk.Error, want)
		}
	}
}

// TestRunningQuotaEndToEnd runs a project's tasks on a runner with more
// slots than the project's max_running: at no moment do more of them run
// than the quota, and all of them finish.
func TestRunningQuotaEndToEnd(t *testing.T) {
	t.Parallel()
	n := startNode(t, t.TempDir(), server.Config{ShutdownGrace: time.Second, Slots: 4})
	ctx := context.Background()
	two := 2
	if _, err := n.cl.UpdateProject(ctx, ward.DefaultProject, ward.ProjectSettings{Quotas: &ward.QuotasPatch{MaxRunning: &two}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.PutFunction(ctx, ward.DefaultProject, "nap", ward.FunctionSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.UploadCode(ctx, ward.DefaultProject, "nap", sandboxtest.Module("sleep")); err != nil {
		t.Fatal(err)
	}
	reqs := make([]ward.SubmitRequest, 6)
	for i := range reqs {
		reqs[i] = ward.SubmitRequest{Function: "nap"}
	}
	tasks, err := n.cl.SubmitBatch(ctx, ward.DefaultProject, reqs)
	if err != nil {
		t.Fatal(err)
	}
	// Watch the running tasks until every task has finished.
	done := make(chan error, 1)
	go func() {
		for _, tk := range tasks {
			tk, err := n.cl.AwaitTask(ctx, ward.DefaultProject, tk.ID)
			if err == nil && tk.Status != ward.StatusSucceeded {
				err = fmt.Errorf("task %s %s: %+v", tk.ID, tk.Status, tk.Error)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	most := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if most > 2 {
				t.Fatalf("%d tasks ran at once with max_running 2", most)
			}
			t.Logf("at most %d tasks seen running at once", most)
			return
		default:
		}
		l, err := n.cl.ListTasks(ctx, ward.DefaultProject, client.ListTasksOptions{Status: ward.StatusRunning})
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, len(l.Tasks))
		if most > 2 {
			t.Fatalf("%d tasks running at once with max_running 2", most)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
