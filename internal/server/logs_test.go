package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/server"
)

// TestFollowLog follows the log of a task that logs a line and its
// secret, sleeps two seconds and logs another: the first lines arrive
// while the task still runs, the secret redacted, and the stream ends
// once the task has succeeded, with every line exactly once.
func TestFollowLog(t *testing.T) {
	t.Parallel()
	code := sandboxtest.GoModule(t, sandboxtest.GoSlowLog)
	n := startNode(t, t.TempDir(), server.Config{ShutdownGrace: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := ward.DefaultProject
	if _, err := n.cl.PutFunction(ctx, p, "slowlog", ward.FunctionSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.UploadCode(ctx, p, "slowlog", code); err != nil {
		t.Fatal(err)
	}
	const secret = "live-log-secret-value"
	if _, err := n.cl.PutSecret(ctx, p, "slowlog", "TOKEN", []byte(secret)); err != nil {
		t.Fatal(err)
	}
	tk, err := n.cl.Submit(ctx, p, ward.SubmitRequest{Function: "slowlog", Payload: json.RawMessage(`2000`)})
	if err != nil {
		t.Fatal(err)
	}

	pr, pw := io.Pipe()
	followed := make(chan error, 1)
	go func() {
		err := n.cl.FollowLog(ctx, p, tk.ID, pw)
		pw.CloseWithError(err)
		followed <- err
	}()
	lines := bufio.NewReader(pr)
	var got []string
	for _, want := range []string{"first line\n", "secret TOKEN=[REDACTED]\n"} {
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("read the followed log: %v (so far %q)", err, got)
		}
		got = append(got, l)
		if l != want {
			t.Fatalf("followed line %d = %q, want %q", len(got), l, want)
		}
	}
	// The task sleeps two seconds after these lines.
	now, err := n.cl.GetTask(ctx, p, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if now.Status != ward.StatusRunning {
		t.Fatalf("task is %s once its first lines were followed, want running", now.Status)
	}
	rest, err := io.ReadAll(lines)
	if err != nil {
		t.Fatalf("read the rest of the followed log: %v", err)
	}
	if err := <-followed; err != nil {
		t.Fatalf("FollowLog: %v", err)
	}
	all := strings.Join(got, "") + string(rest)
	const want = "first line\nsecret TOKEN=[REDACTED]\nsecond line\n"
	if all != want {
		t.Errorf("followed log = %q, want %q", all, want)
	}
	done, err := n.cl.GetTask(ctx, p, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != ward.StatusSucceeded {
		t.Errorf("task is %s once the followed log ended, want succeeded", done.Status)
	}
	stored, err := n.cl.Log(ctx, p, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored) != want {
		t.Errorf("stored log = %q, want %q", stored, want)
	}

	// A finished task's followed log is its log.
	var again strings.Builder
	if err := n.cl.FollowLog(ctx, p, tk.ID, &again); err != nil || again.String() != want {
		t.Errorf("following a finished task = %q, %v; want %q", again.String(), err, want)
	}
}
