package queue

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/sqlite"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type bundle struct {
	st    store.Store
	q     *Service
	clock *clock
}

var testCode = []byte("\x00asm\x01\x00\x00\x00")

func testDigest() string { return ward.Digest(testCode) }

// setup opens a real SQLite store with project p and function fn (with code).
func setup(t *testing.T, spec ward.FunctionSpec) *bundle {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/ward.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	mustDo(t, func() error {
		_, err := st.CreateProject(ctx, &store.CreateProjectParams{Name: "p", Now: c.now()})
		return err
	})
	mustDo(t, func() error {
		_, err := st.PutFunction(ctx, &store.PutFunctionParams{Project: "p", Name: "fn", Spec: spec.WithDefaults(), Now: c.now()})
		return err
	})
	mustDo(t, func() error {
		_, err := st.PutCode(ctx, &store.PutCodeParams{Project: "p", Function: "fn", Digest: testDigest(), Code: testCode, Now: c.now()})
		return err
	})
	q := New(Options{Store: st, Now: c.now, LeaseTTL: 10 * time.Second})
	return &bundle{st: st, q: q, clock: c}
}

func mustDo(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) submit(t *testing.T, reqs ...ward.SubmitRequest) []store.InsertResult {
	t.Helper()
	res, err := b.q.Submit(context.Background(), &SubmitParams{Project: "p", SubmittedBy: "tok", Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (b *bundle) lease(t *testing.T, max int) []runner.Job {
	t.Helper()
	jobs, err := b.q.Lease(context.Background(), &runner.LeaseRequest{RunnerID: "r1", Max: max, FreeMemoryMB: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		base  time.Duration
		n     int
		limit time.Duration
		want  time.Duration
	}{
		{5 * time.Second, 1, time.Hour, 5 * time.Second},
		{5 * time.Second, 2, time.Hour, 10 * time.Second},
		{5 * time.Second, 4, time.Hour, 40 * time.Second},
		{5 * time.Second, 40, time.Hour, time.Hour},
		{0, 3, time.Hour, 0},
		{time.Second, 0, time.Hour, 0},
	} {
		if got := backoff(tc.base, tc.n, tc.limit); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.base, tc.n, got, tc.want)
		}
	}
}

func TestCompletionPolicy(t *testing.T) {
	t.Parallel()
	q := New(Options{Store: nil})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		code      ward.Code
		rs        runner.RetryState
		want      ward.Status
		wantDelay time.Duration
		platform  bool
	}{
		{"success", "", runner.RetryState{Attempt: 1, MaxAttempts: 1}, ward.StatusSucceeded, 0, false},
		{"user failure, attempts left", ward.CodeExitStatus, runner.RetryState{Attempt: 1, MaxAttempts: 3, BackoffS: 5}, ward.StatusQueued, 5 * time.Second, false},
		{"second failure doubles backoff", ward.CodeTimeout, runner.RetryState{Attempt: 2, MaxAttempts: 3, BackoffS: 5}, ward.StatusQueued, 10 * time.Second, false},
		{"last attempt", ward.CodeTrap, runner.RetryState{Attempt: 3, MaxAttempts: 3, BackoffS: 5}, ward.StatusFailed, 0, false},
		{"platform tries do not use attempts", ward.CodeMemoryLimit, runner.RetryState{Attempt: 3, MaxAttempts: 2, PlatformTries: 2, BackoffS: 1}, ward.StatusQueued, time.Second, false},
		{"platform failure retried", ward.CodeNodePressure, runner.RetryState{Attempt: 1, MaxAttempts: 1, PlatformTries: 2}, ward.StatusQueued, 0, true},
		{"platform retries used up", ward.CodeNodePressure, runner.RetryState{Attempt: 4, MaxAttempts: 1, PlatformTries: 3}, ward.StatusFailed, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := q.completion(runner.Result{TaskID: "t", LeaseID: "l", Code: tc.code, Stdout: []byte("out"), Stderr: []byte("log"), Retry: tc.rs}, now)
			if c.Status != tc.want {
				t.Fatalf("status = %s, want %s", c.Status, tc.want)
			}
			if c.PlatformRetry != tc.platform {
				t.Errorf("platform retry = %v, want %v", c.PlatformRetry, tc.platform)
			}
			if tc.want == ward.StatusQueued && c.RunAt.Sub(now) != tc.wantDelay {
				t.Errorf("run_at delay = %v, want %v", c.RunAt.Sub(now), tc.wantDelay)
			}
			if tc.want == ward.StatusSucceeded && string(c.Result) != "out" {
				t.Errorf("result = %q", c.Result)
			}
			if tc.want != ward.StatusSucceeded && (c.Result != nil || c.Error == nil || c.Error.Code != tc.code) {
				t.Errorf("failure must keep its code and drop stdout: %+v", c)
			}
			if string(c.Log) != "log" {
				t.Errorf("log = %q", c.Log)
			}
		})
	}
}

func TestSubmitValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{Limits: ward.Limits{TimeoutS: 10, MaxPayloadKB: 1}})
	ctx := context.Background()
	mustDo(t, func() error {
		_, err := b.st.PutFunction(ctx, &store.PutFunctionParams{Project: "p", Name: "nocode", Spec: ward.DefaultSpec(), Now: b.clock.now()})
		return err
	})
	big := `"` + strings.Repeat("x", 1100) + `"`
	for _, tc := range []struct {
		name  string
		req   ward.SubmitRequest
		code  ward.Code
		field string
	}{
		{"unknown function", ward.SubmitRequest{Function: "nope"}, ward.CodeNotFound, "function"},
		{"bad function name", ward.SubmitRequest{Function: "No/pe"}, ward.CodeInvalidArgument, "function"},
		{"no code", ward.SubmitRequest{Function: "nocode"}, ward.CodeNoCode, "function"},
		{"payload too large", ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(big)}, ward.CodePayloadTooLarge, "payload"},
		{"b64 payload too large", ward.SubmitRequest{Function: "fn", PayloadB64: make([]byte, 1025)}, ward.CodePayloadTooLarge, "payload"},
		{"both payloads", ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`1`), PayloadB64: []byte("x")}, ward.CodeInvalidArgument, "payload"},
		{"priority high", ward.SubmitRequest{Function: "fn", Priority: 3}, ward.CodeInvalidArgument, "priority"},
		{"priority negative", ward.SubmitRequest{Function: "fn", Priority: -1}, ward.CodeInvalidArgument, "priority"},
		{"timeout above function's", ward.SubmitRequest{Function: "fn", TimeoutS: 11}, ward.CodeInvalidArgument, "timeout_s"},
		{"timeout negative", ward.SubmitRequest{Function: "fn", TimeoutS: -1}, ward.CodeInvalidArgument, "timeout_s"},
		{"delay negative", ward.SubmitRequest{Function: "fn", DelayS: -1}, ward.CodeInvalidArgument, "delay_s"},
		{"delay too long", ward.SubmitRequest{Function: "fn", DelayS: ward.MaxDelayS + 1}, ward.CodeInvalidArgument, "delay_s"},
		{"attempts", ward.SubmitRequest{Function: "fn", MaxAttempts: ward.MaxAttempts + 1}, ward.CodeInvalidArgument, "max_attempts"},
		{"empty label key", ward.SubmitRequest{Function: "fn", Labels: map[string]string{"": "v"}}, ward.CodeInvalidArgument, "labels"},
		{"idempotency key", ward.SubmitRequest{Function: "fn", IdempotencyKey: strings.Repeat("k", 300)}, ward.CodeInvalidArgument, "idempotency_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.q.Submit(ctx, &SubmitParams{Project: "p", Requests: []ward.SubmitRequest{tc.req}})
			var we *ward.Error
			if !errors.As(err, &we) || we.Code != tc.code || we.Field != tc.field {
				t.Fatalf("err = %#v, want code %s field %s", err, tc.code, tc.field)
			}
			if strings.Contains(we.Message, "xxxx") {
				t.Errorf("error echoes the payload: %s", we.Message)
			}
			// A batch names the index, and nothing of the batch is stored.
			_, err = b.q.Submit(ctx, &SubmitParams{Project: "p", Batch: true, Requests: []ward.SubmitRequest{{Function: "fn"}, tc.req}})
			if !errors.As(err, &we) || we.Code != tc.code || !strings.HasPrefix(we.Field, "tasks[1]") {
				t.Fatalf("batch err = %#v", err)
			}
		})
	}
	list, err := b.st.ListTasks(ctx, &store.ListTasksParams{Project: "p"})
	if err != nil || len(list) != 0 {
		t.Fatalf("rejected submissions stored tasks: %d, %v", len(list), err)
	}
}

func TestSubmitLeaseCompleteRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{Retries: ward.Retries{MaxAttempts: 2, BackoffS: 3}})
	ctx := context.Background()
	res := b.submit(t, ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`{"a":1}`)})
	id := res[0].Task.ID
	jobs := b.lease(t, 10)
	if len(jobs) != 1 || jobs[0].TaskID != id || string(jobs[0].Payload) != `{"a":1}` || jobs[0].Retry.Attempt != 1 {
		t.Fatalf("jobs = %+v", jobs)
	}
	if string(jobs[0].Config) != "{}" {
		t.Errorf("config = %s", jobs[0].Config)
	}
	errs, err := b.q.Complete(ctx, []runner.Result{{TaskID: id, LeaseID: jobs[0].LeaseID, Project: "p", Code: ward.CodeExitStatus, Retry: jobs[0].Retry}})
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	tk, _ := b.q.Get(ctx, "p", id)
	if tk.Status != ward.StatusQueued || !tk.RunAt.Equal(b.clock.now().Add(3*time.Second)) {
		t.Fatalf("after first failure: %s run_at %v", tk.Status, tk.RunAt)
	}
	if jobs := b.lease(t, 10); len(jobs) != 0 {
		t.Fatal("leased before its backoff")
	}
	b.clock.add(3 * time.Second)
	jobs = b.lease(t, 10)
	if len(jobs) != 1 || jobs[0].Retry.Attempt != 2 {
		t.Fatalf("retry jobs = %+v", jobs)
	}
	// A stale lease (the first one) cannot complete the task.
	errs, err = b.q.Complete(ctx, []runner.Result{{TaskID: id, LeaseID: "stale", Project: "p"}})
	if err != nil || !errors.Is(errs[0], ward.ErrStaleLease) {
		t.Fatalf("stale completion: %v %v", err, errs)
	}
	errs, err = b.q.Complete(ctx, []runner.Result{{TaskID: id, LeaseID: jobs[0].LeaseID, Project: "p", Stdout: []byte(`"ok"`)}})
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	tk, _ = b.q.Get(ctx, "p", id)
	if tk.Status != ward.StatusSucceeded || tk.Attempts != 2 {
		t.Fatalf("final: %+v", tk.Task)
	}
	body, _ := b.q.Body(ctx, "p", id, store.BodyResult)
	if string(body) != `"ok"` {
		t.Fatalf("result = %q", body)
	}
	// Retry of a finished task queues it again.
	tk, err = b.q.Retry(ctx, "p", id)
	if err != nil || tk.Status != ward.StatusQueued {
		t.Fatal(err, tk.Status)
	}
}

func TestLeaseWakesOnSubmit(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	got := make(chan []runner.Job, 1)
	go func() {
		jobs, err := b.q.Lease(context.Background(), &runner.LeaseRequest{RunnerID: "r", Max: 5, FreeMemoryMB: 1024, Wait: time.Minute})
		if err != nil {
			t.Error(err)
		}
		got <- jobs
	}()
	b.submit(t, ward.SubmitRequest{Function: "fn"})
	if jobs := <-got; len(jobs) != 1 {
		t.Fatalf("woken lease got %d jobs", len(jobs))
	}
}

func TestWaitReturnsWhenTerminal(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	ctx := context.Background()
	id := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	done := make(chan store.TaskRecord, 1)
	go func() {
		tk, err := b.q.Wait(ctx, "p", id, time.Minute)
		if err != nil {
			t.Error(err)
		}
		done <- tk
	}()
	jobs := b.lease(t, 1)
	if _, err := b.q.Complete(ctx, []runner.Result{{TaskID: id, LeaseID: jobs[0].LeaseID, Project: "p"}}); err != nil {
		t.Fatal(err)
	}
	if tk := <-done; tk.Status != ward.StatusSucceeded {
		t.Fatalf("wait returned %s", tk.Status)
	}
	// Zero wait returns at once.
	tk, err := b.q.Wait(ctx, "p", id, 0)
	if err != nil || tk.ID != id {
		t.Fatal(err)
	}
	if _, err := b.q.Wait(ctx, "other", id, time.Second); !errors.Is(err, ward.ErrNotFound) {
		t.Fatalf("cross-project wait: %v", err)
	}
}

func TestCancelRunningIsReportedLost(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	ctx := context.Background()
	id := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	jobs := b.lease(t, 1)
	if _, err := b.q.Cancel(ctx, "p", id); err != nil {
		t.Fatal(err)
	}
	reply, err := b.q.Heartbeat(ctx, "r1", []runner.LeaseRef{{TaskID: id, LeaseID: jobs[0].LeaseID}})
	if err != nil || len(reply.Lost) != 1 || reply.Lost[0] != id {
		t.Fatalf("lost = %v, %v", reply.Lost, err)
	}
	if _, err := b.q.Cancel(ctx, "p", id); !errors.Is(err, ward.ErrInvalidState) {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestReapRequeuesExpiredLeases(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	ctx := context.Background()
	id := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	for i := range ward.PlatformRetries + 1 {
		if jobs := b.lease(t, 1); len(jobs) != 1 {
			t.Fatalf("round %d: no lease", i)
		}
		b.clock.add(11 * time.Second)
		if err := b.q.Reap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tk, _ := b.q.Get(ctx, "p", id)
	if tk.Status != ward.StatusFailed || tk.Error == nil || tk.Error.Code != ward.CodeLeaseExpired {
		t.Fatalf("after %d expiries: %s %+v", ward.PlatformRetries+1, tk.Status, tk.Error)
	}
}

func TestInvokeBusy(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{Limits: ward.Limits{MaxConcurrency: 1}})
	b.submit(t, ward.SubmitRequest{Function: "fn"})
	b.lease(t, 1)
	_, _, err := b.q.Invoke(context.Background(), &InvokeParams{Project: "p", Function: "fn"})
	if !errors.Is(err, ward.ErrFunctionBusy) {
		t.Fatalf("invoke at the limit: %v", err)
	}
}

func TestIdempotentSubmit(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	a := b.submit(t, ward.SubmitRequest{Function: "fn", IdempotencyKey: "k1"})
	c := b.submit(t, ward.SubmitRequest{Function: "fn", IdempotencyKey: "k1"})
	if a[0].Existing || !c[0].Existing || a[0].Task.ID != c[0].Task.ID {
		t.Fatalf("idempotency: %+v %+v", a[0], c[0])
	}
}

// A lease granted as the runner's context ends must still reach the runner:
// otherwise the task would sit leased to nobody until its lease expired.
func TestLeaseGrantedDespiteCancelledContext(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	id := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	jobs, err := b.q.Lease(ctx, &runner.LeaseRequest{RunnerID: "r", Max: 5, FreeMemoryMB: 1024, Wait: time.Minute})
	if err != nil || len(jobs) != 1 || jobs[0].TaskID != id {
		t.Fatalf("jobs = %+v, err = %v", jobs, err)
	}
}

func TestReapOrphansReturnsLiveLeases(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	ctx := context.Background()
	id := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	b.lease(t, 1)
	if err := b.q.Reap(ctx); err != nil { // the lease is live: Reap leaves it
		t.Fatal(err)
	}
	if tk, _ := b.q.Get(ctx, "p", id); tk.Status != ward.StatusRunning {
		t.Fatalf("Reap took a live lease: %s", tk.Status)
	}
	n, err := b.q.ReapOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ReapOrphans = %d, %v", n, err)
	}
	tk, _ := b.q.Get(ctx, "p", id)
	if tk.Status != ward.StatusQueued || tk.PlatformTries != 1 || tk.Error == nil || tk.Error.Code != ward.CodeLeaseExpired {
		t.Fatalf("after ReapOrphans: %s %+v", tk.Status, tk.Error)
	}
}
