package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/server"
)

// TestMain lets the scripts run `ward` as a command.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"ward": main})
}

// TestScripts runs the CLI end to end against a real single-node server per
// script (testdata/script/*.txtar), with the examples deployed.
func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and builds the examples")
	}
	buildCache := t.TempDir() // shared by the scripts: the examples build once
	var buildMu sync.Mutex
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			ctx := context.Background()
			srv, err := server.Open(ctx, server.Config{DataDir: filepath.Join(env.WorkDir, ".data"), Addr: "127.0.0.1:0", ShutdownGrace: time.Second})
			if err != nil {
				return err
			}
			buildMu.Lock()
			_, err = srv.DeployExamples(ctx, "../../examples", buildCache)
			buildMu.Unlock()
			if err != nil {
				srv.Close()
				return err
			}
			token, _, err := srv.AdminToken(ctx, "")
			if err != nil {
				srv.Close()
				return err
			}
			sctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				srv.Serve(sctx)
				srv.Close()
				close(done)
			}()
			env.Defer(func() {
				cancel()
				<-done
			})
			if err := os.WriteFile(filepath.Join(env.WorkDir, "echo.wasm"), sandboxtest.Module("echo"), 0o600); err != nil {
				return err
			}
			env.Setenv("WARD_SERVER", srv.URL())
			env.Setenv("WARD_TOKEN", token)
			env.Setenv("ADMIN_TOKEN", token)
			env.Setenv("WARD_CONFIG", filepath.Join(env.WorkDir, "config.json"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// jsonenv VAR FIELD sets VAR to a string field of the JSON object
			// the last command printed.
			"jsonenv": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: jsonenv VAR FIELD")
				}
				var obj map[string]any
				ts.Check(json.Unmarshal([]byte(ts.ReadFile("stdout")), &obj))
				v, ok := obj[args[1]].(string)
				if !ok {
					ts.Fatalf("no string field %q in the last output", args[1])
				}
				ts.Setenv(args[0], v)
			},
		},
	})
}
