package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox"
)

// panicError is a panic recovered from wazero while running a module.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// run runs m once under spec and tells how it ended.
func (s *Sandbox) run(ctx context.Context, m *module, spec *sandbox.Spec, lim sandbox.Limits, wardFS *memFS) (sandbox.Outcome, error) {
	if initial := m.minPages * pageSize; initial > uint64(lim.Memory) {
		return sandbox.Outcome{
			Code:    ward.CodeMemoryLimit,
			Message: fmt.Sprintf("the module's initial memory of %d KiB exceeds the limit of %d MiB", initial>>10, lim.Memory>>20),
		}, nil
	}
	if ctx.Err() != nil {
		return sandbox.ContextOutcome(ctx, lim.Timeout), nil
	}

	runCtx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	meter := &memoryMeter{limit: uint64(lim.Memory), pages: &s.pages}
	stdout := &sandbox.ResultWriter{Limit: lim.Stdout, OnOverflow: cancel}
	stderr := &sandbox.LogWriter{Limit: lim.Stderr, Sink: spec.LogSink, Secrets: spec.Redact}
	mounts := wazero.NewFSConfig().(sysfs.FSConfig).
		WithSysFSMount(wardFS, "/ward").(sysfs.FSConfig).
		WithSysFSMount(newMemFS(false, lim.Tmp, s.now), "/tmp")
	cfg := s.base.
		WithStdin(bytes.NewReader(spec.Stdin)).
		WithStdout(stdout).
		WithStderr(stderr).
		WithFSConfig(mounts).
		WithNanosleep(sleeper(runCtx))
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		cfg = cfg.WithEnv(k, spec.Env[k])
	}

	err := s.call(runCtx, m, cfg, meter)
	var pe *panicError
	if !errors.As(err, &pe) { // after a panic, the instance's state is unknown
		meter.recycle()
	}

	out := sandbox.Outcome{Stdout: stdout.Bytes(), Stderr: stderr.Finish()}
	out.Usage.PeakMemoryBytes = int64(meter.peak.Load())
	var exit *sys.ExitError
	isExit := errors.As(err, &exit)
	switch {
	case pe != nil:
		s.log.ErrorContext(ctx, "wasm sandbox: panic while running a module", "digest", spec.Digest, "panic", pe.Error())
		return out, ward.Errorf(ward.CodeInternal, "wasm sandbox: internal error while running the module")
	case stdout.Overflowed():
		o := sandbox.OutputLimitOutcome(lim.Stdout)
		out.Code, out.Message = o.Code, o.Message
		return out, nil
	case err == nil:
		out.ExitCode = new(0)
		return out, nil
	case runCtx.Err() != nil && (!isExit || exit.ExitCode() == sys.ExitCodeContextCanceled || exit.ExitCode() == sys.ExitCodeDeadlineExceeded):
		o := sandbox.ContextOutcome(ctx, lim.Timeout)
		out.Code, out.Message = o.Code, o.Message
		return out, nil
	case s.closed.Load():
		return out, errClosed
	case isExit && exit.ExitCode() == 0:
		out.ExitCode = new(0)
		return out, nil
	}
	if isExit {
		out.ExitCode = new(int(exit.ExitCode()))
	}
	switch {
	case meter.refused.Load():
		out.Code = ward.CodeMemoryLimit
		out.Message = fmt.Sprintf("the memory limit of %d MiB was reached", lim.Memory>>20)
	case isExit:
		out.Code = ward.CodeExitStatus
		out.Message = fmt.Sprintf("exited with status %d", *out.ExitCode)
	default:
		out.Code = ward.CodeTrap
		out.Message = shorten(err.Error())
	}
	return out, nil
}

// call instantiates m, runs its _start and closes the instance.
func (s *Sandbox) call(ctx context.Context, m *module, cfg wazero.ModuleConfig, meter *memoryMeter) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r}
		}
	}()
	mod, err := s.runtime.InstantiateModule(experimental.WithMemoryAllocator(ctx, meter), m.compiled, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = mod.Close(context.WithoutCancel(ctx)) }()
	_, err = mod.ExportedFunction("_start").Call(ctx)
	return err
}

// sleeper is the guest's nanosleep: a real sleep that ends early when the
// run is over, so a sleeping task cannot outlive its timeout.
func sleeper(ctx context.Context) sys.Nanosleep {
	return func(ns int64) {
		t := time.NewTimer(time.Duration(ns))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}
