package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
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
