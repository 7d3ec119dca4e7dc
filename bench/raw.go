package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/wasm"
)

// rawRun runs the module once with payload on stdin and checks that it
// echoed it.
type rawRun func(ctx context.Context, payload []byte) error

// rawLoop runs count tasks on workers goroutines with nothing around the
// sandbox — no queue, no store, no HTTP — and returns the time it took:
// the limit a platform's rate can approach.
func rawLoop(ctx context.Context, run rawRun, count, workers int) (time.Duration, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(count) {
					return
				}
				if err := run(ctx, []byte(`{"n":`+strconv.FormatInt(i, 10)+`}`)); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// sandboxRunner prepares module in ward's wasm sandbox and returns a run
// with the spec the runner gives a task: the same limits, environment and
// /ward files.
func sandboxRunner(ctx context.Context, module []byte) (rawRun, func(), error) {
	sb, err := wasm.New(ctx, wasm.Options{})
	if err != nil {
		return nil, nil, err
	}
	digest := ward.Digest(module)
	if err := sb.Prepare(ctx, sandbox.Artifact{Digest: digest, Code: module}); err != nil {
		sb.Close(ctx)
		return nil, nil, err
	}
	run := func(ctx context.Context, payload []byte) error {
		spec := &sandbox.Spec{
			Digest: digest,
			Stdin:  payload,
			Env: map[string]string{
				"WARD_TASK_ID": "t_raw", "WARD_PROJECT": "default", "WARD_FUNCTION": "echo", "WARD_ATTEMPT": "1",
				"WARD_PAYLOAD_FILE": "/ward/payload", "WARD_CONFIG_FILE": "/ward/config.json", "WARD_SECRETS_DIR": "/ward/secrets",
			},
			Files:       map[string][]byte{"payload": payload, "config.json": []byte("{}")},
			MemoryMB:    64,
			Timeout:     30 * time.Second,
			StdoutLimit: sandbox.DefaultStdoutLimit,
			StderrLimit: sandbox.DefaultStderrLimit,
			TmpLimit:    sandbox.DefaultTmpLimit,
		}
		out, err := sb.Run(ctx, spec)
		if err != nil {
			return err
		}
		if !out.Succeeded() || !bytes.Equal(out.Stdout, payload) {
			return fmt.Errorf("sandbox: %s %s: stdout %q", out.Code, out.Message, out.Stdout)
		}
		return nil
	}
	return run, func() { sb.Close(context.Background()) }, nil
}

// wazeroRunner compiles module with wazero alone and returns a run that
// instantiates it with WASI, stdin and stdout and nothing else: the floor
// under any wasm platform on this runtime.
func wazeroRunner(ctx context.Context, module []byte) (rawRun, func(), error) {
	rt := wazero.NewRuntime(ctx)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, nil, err
	}
	compiled, err := rt.CompileModule(ctx, module)
	if err != nil {
		rt.Close(ctx)
		return nil, nil, err
	}
	base := wazero.NewModuleConfig().WithName("")
	run := func(ctx context.Context, payload []byte) error {
		var stdout bytes.Buffer
		m, err := rt.InstantiateModule(ctx, compiled, base.WithStdin(bytes.NewReader(payload)).WithStdout(&stdout))
		if m != nil {
			m.Close(ctx)
		}
		if exit, ok := err.(*sys.ExitError); ok && exit.ExitCode() == 0 {
			err = nil
		}
		if err != nil {
			return err
		}
		if !bytes.Equal(stdout.Bytes(), payload) {
			return fmt.Errorf("wazero: stdout %q", stdout.Bytes())
		}
		return nil
	}
	return run, func() { rt.Close(context.Background()) }, nil
}
