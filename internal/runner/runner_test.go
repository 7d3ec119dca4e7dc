package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/queue"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/sandbox/wasm"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/sqlite"
)

// gated wraps the real wasm sandbox: every run waits at the gate (when one
// is set) and the wrapper records how many runs and how much memory were
// in flight at once, overall and per function digest.
type gated struct {
	sandbox.Sandbox
	gate    chan struct{}
	started chan string // the task's payload, as each run starts

	mu               sync.Mutex
	running, maxRun  int
	memMB, maxMemMB  int
	byDigest, maxDig map[string]int
	prepared         map[string]bool
}

func newGated(t *testing.T, gate chan struct{}) *gated {
	t.Helper()
	sb, err := wasm.New(context.Background(), wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	return &gated{Sandbox: sb, gate: gate, started: make(chan string, 1000), byDigest: map[string]int{}, maxDig: map[string]int{}, prepared: map[string]bool{}}
}

// Prepare records the digests the runner prepared.
func (g *gated) Prepare(ctx context.Context, a sandbox.Artifact) error {
	err := g.Sandbox.Prepare(ctx, a)
	g.mu.Lock()
	g.prepared[a.Digest] = err == nil
	g.mu.Unlock()
	return err
}

func (g *gated) Run(ctx context.Context, spec *sandbox.Spec) (sandbox.Outcome, error) {
	g.mu.Lock()
	if !g.prepared[spec.Digest] {
		// Not prepared yet: answer not_found, so that the runner prepares
		// the code; only the run after that counts. (Asking the sandbox
		// instead would race with another run's preparation: the sandbox
		// could hold the code before Prepare above records it, and run the
		// task past the gate.)
		g.mu.Unlock()
		return sandbox.Outcome{}, ward.Errorf(ward.CodeNotFound, "gated: %s is not prepared", spec.Digest)
	}
	g.running++
	g.memMB += spec.MemoryMB
	g.byDigest[spec.Digest]++
	g.maxRun = max(g.maxRun, g.running)
	g.maxMemMB = max(g.maxMemMB, g.memMB)
	g.maxDig[spec.Digest] = max(g.maxDig[spec.Digest], g.byDigest[spec.Digest])
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running--
		g.memMB -= spec.MemoryMB
		g.byDigest[spec.Digest]--
		g.mu.Unlock()
	}()
	g.started <- string(spec.Stdin)
	if g.gate != nil {
		select {
		case <-g.gate:
		case <-ctx.Done():
		}
	}
	return g.Sandbox.Run(ctx, spec)
}

type env struct {
	st store.Store
	q  *queue.Service
}

// newEnv opens a real store and queue with project p and the functions
// given (name → module, spec).
func newEnv(t *testing.T, fns map[string]fnDef) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/ward.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now
	if _, err := st.CreateProject(ctx, &store.CreateProjectParams{Name: "p", Now: now()}); err != nil {
		t.Fatal(err)
	}
	for name, d := range fns {
		if _, err := st.PutFunction(ctx, &store.PutFunctionParams{Project: "p", Name: name, Spec: d.spec.WithDefaults(), Now: now()}); err != nil {
			t.Fatal(err)
		}
		a := sandboxtest.ArtifactOf(d.code)
		if _, err := st.PutCode(ctx, &store.PutCodeParams{Project: "p", Function: name, Digest: a.Digest, Code: a.Code, Now: now()}); err != nil {
			t.Fatal(err)
		}
	}
	return &env{st: st, q: queue.New(queue.Options{Store: st, LeaseTTL: 5 * time.Second})}
}

type fnDef struct {
	code []byte
	spec ward.FunctionSpec
}

func (e *env) submit(t *testing.T, fn string, n int) []string {
	t.Helper()
	reqs := make([]ward.SubmitRequest, n)
	for i := range reqs {
		reqs[i] = ward.SubmitRequest{Function: fn, Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	res, err := e.q.Submit(context.Background(), &queue.SubmitParams{Project: "p", Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i, r := range res {
		ids[i] = r.Task.ID
	}
	return ids
}

func (e *env) await(t *testing.T, id string) store.TaskRecord {
	t.Helper()
	tk, err := e.q.Wait(context.Background(), "p", id, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !tk.Status.Terminal() {
		t.Fatalf("task %s of %s still %s: %+v", id, tk.Function, tk.Status, tk)
	}
	return tk
}

// start runs a runner until the test ends; stop ends it early and returns
// Run's error.
func start(t *testing.T, opts runner.Options) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if os.Getenv("WARD_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r := runner.New(opts)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestRunsTasksWithTheirPayloads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"echo": {code: sandboxtest.Module("echo")}})
	g := newGated(t, nil)
	start(t, runner.Options{Source: e.q, Sandbox: g, Slots: 8, MemoryBudgetMB: 1024})
	ids := e.submit(t, "echo", 100)
	for i, id := range ids {
		tk := e.await(t, id)
		if tk.Status != ward.StatusSucceeded {
			t.Fatalf("task %d: %s %+v", i, tk.Status, tk.Error)
		}
		res, err := e.q.Body(context.Background(), "p", id, store.BodyResult)
		if err != nil || string(res) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("task %d result %q, %v", i, res, err)
		}
	}
}

func TestMemoryBudgetIsNeverOvercommitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"echo": {code: sandboxtest.Module("echo"), spec: ward.FunctionSpec{Limits: ward.Limits{MemoryMB: 32}}}})
	gate := make(chan struct{})
	g := newGated(t, gate)
	// 100 MiB fits three 32 MiB tasks although eight slots are free.
	start(t, runner.Options{Source: e.q, Sandbox: g, Slots: 8, MemoryBudgetMB: 100, HeartbeatInterval: 50 * time.Millisecond})
	ids := e.submit(t, "echo", 9)
	for range 3 {
		<-g.started
	}
	for range 9 {
		gate <- struct{}{}
	}
	for _, id := range ids {
		if tk := e.await(t, id); tk.Status != ward.StatusSucceeded {
			t.Fatalf("%s: %s", id, tk.Status)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.maxMemMB > 100 || g.maxRun != 3 {
		t.Fatalf("at most %d MiB in %d runs at once; want ≤ 100 MiB and exactly 3 runs", g.maxMemMB, g.maxRun)
	}
}

func TestMaxConcurrencyHoldsAcrossRunners(t *testing.T) {
	t.Parallel()
	echo := sandboxtest.Module("echo")
	e := newEnv(t, map[string]fnDef{"echo": {code: echo, spec: ward.FunctionSpec{Limits: ward.Limits{MaxConcurrency: 2}}}})
	gate := make(chan struct{})
	g := newGated(t, gate)
	for range 2 {
		start(t, runner.Options{Source: e.q, Sandbox: g, Slots: 4, MemoryBudgetMB: 1024, LeaseWait: 100 * time.Millisecond})
	}
	ids := e.submit(t, "echo", 8)
	for range 2 {
		<-g.started
	}
	go func() {
		for range 8 {
			gate <- struct{}{}
		}
	}()
	for _, id := range ids {
		if tk := e.await(t, id); tk.Status != ward.StatusSucceeded {
			t.Fatalf("%s: %s", id, tk.Status)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if got := g.maxDig[sandboxtest.ArtifactOf(echo).Digest]; got != 2 {
		t.Fatalf("max concurrent runs of the function = %d, want 2", got)
	}
}

func TestCancelKillsARunningTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"loop": {code: sandboxtest.Module("loop"), spec: ward.FunctionSpec{Limits: ward.Limits{TimeoutS: 300}}}})
	g := newGated(t, nil)
	start(t, runner.Options{Source: e.q, Sandbox: g, Slots: 2, MemoryBudgetMB: 1024, HeartbeatInterval: 50 * time.Millisecond})
	id := e.submit(t, "loop", 1)[0]
	<-g.started
	if _, err := e.q.Cancel(context.Background(), "p", id); err != nil {
		t.Fatal(err)
	}
	// The run is killed at the next heartbeat: the runner's slot comes back.
	deadline := time.After(30 * time.Second)
	for {
		g.mu.Lock()
		n := g.running
		g.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("cancelled task still running")
		case <-time.After(10 * time.Millisecond):
		}
	}
	tk, _ := e.q.Get(context.Background(), "p", id)
	if tk.Status != ward.StatusCancelled || tk.Error == nil || tk.Error.Code != ward.CodeCancelled {
		t.Fatalf("after cancel: %s %+v", tk.Status, tk.Error)
	}
}

func TestShutdownReturnsUnfinishedTasksToTheQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"loop": {code: sandboxtest.Module("loop"), spec: ward.FunctionSpec{Limits: ward.Limits{TimeoutS: 300}}}})
	g := newGated(t, nil)
	stop := start(t, runner.Options{Source: e.q, Sandbox: g, Slots: 2, MemoryBudgetMB: 1024, ShutdownGrace: 100 * time.Millisecond})
	id := e.submit(t, "loop", 1)[0]
	<-g.started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	tk, _ := e.q.Get(context.Background(), "p", id)
	if tk.Status != ward.StatusQueued || tk.Attempts != 0 {
		t.Fatalf("after shutdown: %s attempts %d", tk.Status, tk.Attempts)
	}
}

func TestShutdownLetsRunningTasksFinish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"echo": {code: sandboxtest.Module("echo")}})
	gate := make(chan struct{})
	g := newGated(t, gate)
	stop := start(t, runner.Options{Source: e.q, Sandbox: g, Slots: 2, MemoryBudgetMB: 1024, ShutdownGrace: time.Minute})
	id := e.submit(t, "echo", 1)[0]
	<-g.started
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	close(gate)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if tk, _ := e.q.Get(context.Background(), "p", id); tk.Status != ward.StatusSucceeded {
		t.Fatalf("after graceful shutdown: %s", tk.Status)
	}
}

func TestHostileTasksEndWithTheirCode(t *testing.T) {
	t.Parallel()
	// Only loop needs its timeout to end; the others end on their own
	// limit, and a long timeout keeps a slow machine from ending them first.
	limits := ward.FunctionSpec{Limits: ward.Limits{TimeoutS: 30, MemoryMB: 32}}
	loopLimits := ward.FunctionSpec{Limits: ward.Limits{TimeoutS: 1, MemoryMB: 32}}
	e := newEnv(t, map[string]fnDef{
		"loop":    {code: sandboxtest.Module("loop"), spec: loopLimits},
		"membomb": {code: sandboxtest.Module("membomb"), spec: limits},
		"flood":   {code: sandboxtest.Module("flood"), spec: limits},
		"trap":    {code: sandboxtest.Module("trap"), spec: limits},
		"echo":    {code: sandboxtest.Module("echo"), spec: limits},
		"gopanic": {code: sandboxtest.GoModule(t, sandboxtest.GoPanic), spec: limits},
		"gobomb":  {code: sandboxtest.GoModule(t, sandboxtest.GoMemBomb), spec: limits},
	})
	g := newGated(t, nil)
	start(t, runner.Options{Source: e.q, Sandbox: g, Slots: 8, MemoryBudgetMB: 1024})
	want := map[string]ward.Code{
		"loop": ward.CodeTimeout, "membomb": ward.CodeMemoryLimit, "flood": ward.CodeOutputLimit, "trap": ward.CodeTrap,
		"gopanic": ward.CodeExitStatus, "gobomb": ward.CodeMemoryLimit,
	}
	ids := map[string]string{}
	for fn := range want {
		ids[fn] = e.submit(t, fn, 1)[0]
	}
	// Other tasks keep running meanwhile.
	echoIDs := e.submit(t, "echo", 20)
	for fn, code := range want {
		tk := e.await(t, ids[fn])
		if tk.Status != ward.StatusFailed || tk.Error == nil || tk.Error.Code != code {
			t.Errorf("%s: %s %+v, want failed %s", fn, tk.Status, tk.Error, code)
		}
		// The loop ends within its 1 s timeout plus one second. (started_at
		// also covers compiling the code on first use.)
		if tk.Usage == nil {
			t.Fatalf("%s: no usage recorded", fn)
		}
		ran := time.Duration(tk.Usage.DurationMs) * time.Millisecond
		if fn == "loop" && ran > 2*time.Second {
			t.Errorf("%s ran %v, past its limit plus one second", fn, ran)
		}
		t.Logf("%s: %s after %v, peak memory %d KiB", fn, tk.Error.Code, ran, tk.Usage.PeakMemoryBytes>>10)
	}
	for _, id := range echoIDs {
		if tk := e.await(t, id); tk.Status != ward.StatusSucceeded {
			t.Errorf("echo beside hostile tasks: %s", tk.Status)
		}
	}
}

func TestUnpreparableCodeFailsTheTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"bad": {code: []byte("not wasm at all")}})
	g := newGated(t, nil)
	start(t, runner.Options{Source: e.q, Sandbox: g, Slots: 2, MemoryBudgetMB: 1024})
	id := e.submit(t, "bad", 1)[0]
	tk := e.await(t, id)
	if tk.Status != ward.StatusFailed || tk.Error == nil || tk.Error.Code != ward.CodeCodeRejected {
		t.Fatalf("bad code: %s %+v", tk.Status, tk.Error)
	}
}

// When the sandbox evicts compiled code, the runner prepares it again.
func TestEvictedCodeIsPreparedAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{
		"echo":  {code: sandboxtest.Module("echo")},
		"exit3": {code: sandboxtest.Module("exit3")},
	})
	sb, err := wasm.New(context.Background(), wasm.Options{MaxModules: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	start(t, runner.Options{Source: e.q, Sandbox: sb, Slots: 1, MemoryBudgetMB: 1024})
	for range 3 {
		for fn, want := range map[string]ward.Status{"echo": ward.StatusSucceeded, "exit3": ward.StatusFailed} {
			if tk := e.await(t, e.submit(t, fn, 1)[0]); tk.Status != want || (want == ward.StatusFailed && tk.Error.Code != ward.CodeExitStatus) {
				t.Fatalf("%s: %s %+v", fn, tk.Status, tk.Error)
			}
		}
	}
}

// TestSecretsReachTheTaskAsFiles: a function's secrets (global overlaid by
// local) are files under /ward/secrets, and another function's are not.
func TestSecretsReachTheTaskAsFiles(t *testing.T) {
	t.Parallel()
	probe := sandboxtest.GoModule(t, "goprobe")
	e := newEnv(t, map[string]fnDef{"probe": {code: probe}, "other": {code: probe}})
	ctx := context.Background()
	put := func(fn, name, value string) {
		t.Helper()
		if _, err := e.st.PutSecret(ctx, &store.PutSecretParams{Project: "p", Function: fn, Name: name, Value: []byte(value), Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	put("", "api-key", "global-key")
	put("probe", "api-key", "local-key")
	start(t, runner.Options{Source: e.q, Sandbox: newGated(t, nil), Slots: 2, MemoryBudgetMB: 1024})
	for fn, want := range map[string]string{"probe": `secret="local-key"`, "other": `secret="global-key"`} {
		id := e.submit(t, fn, 1)[0]
		if tk := e.await(t, id); tk.Status != ward.StatusSucceeded {
			t.Fatalf("%s: %s %+v", fn, tk.Status, tk.Error)
		}
		res, err := e.q.Body(ctx, "p", id, store.BodyResult)
		if err != nil || !strings.Contains(string(res), want) {
			t.Fatalf("%s: result lacks %s:\n%s", fn, want, res)
		}
	}
}
