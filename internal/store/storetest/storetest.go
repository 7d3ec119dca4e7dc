// Package storetest is the conformance suite every store.Store must pass.
// A store package calls Run from its tests with a constructor that returns a
// fresh, empty store; every subtest gets its own store and runs in parallel.
// The suite uses fixed times (explicit Now fields), never the wall clock.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// t0 is the suite's fixed "now" (never changed); tests move time by adding to it.
var t0 = time.Date(2030, time.March, 4, 5, 6, 7, 123456000, time.UTC)

// test is one behaviour of the suite.
type test struct {
	name string
	fn   func(t *testing.T, e *env)
}

// Run runs the conformance suite. newStore must return a new, empty store
// and arrange for it to be closed when t ends (t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	var tests []test
	tests = append(tests, catalogTests...)
	tests = append(tests, taskTests...)
	tests = append(tests, leaseTests...)
	tests = append(tests, runtimeTests...)
	tests = append(tests, secretTests...)
	tests = append(tests, retentionTests...)
	tests = append(tests, quotaTests...)
	tests = append(tests, tokenTests...)
	tests = append(tests, runnerTests...)
	tests = append(tests, countTests...)
	tests = append(tests, alertTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, &env{t: t, ctx: t.Context(), s: newStore(t)})
		})
	}
}

// env is one subtest's store with helpers that fail the test on error.
type env struct {
	t   *testing.T
	ctx context.Context
	s   store.Store
	n   int // task ID counter
}

// project creates projects.
func (e *env) project(names ...string) {
	e.t.Helper()
	for _, name := range names {
		if _, err := e.s.CreateProject(e.ctx, &store.CreateProjectParams{Name: name, Now: t0}); err != nil {
			e.t.Fatalf("CreateProject(%s): %v", name, err)
		}
	}
}

// function creates a function with the default spec changed by edit.
func (e *env) function(project, name string, edit func(*ward.FunctionSpec)) ward.Function {
	e.t.Helper()
	spec := ward.DefaultSpec()
	if edit != nil {
		edit(&spec)
	}
	f, err := e.s.PutFunction(e.ctx, &store.PutFunctionParams{Project: project, Name: name, Spec: spec, Now: t0})
	if err != nil {
		e.t.Fatalf("PutFunction(%s/%s): %v", project, name, err)
	}
	return f
}

// task returns a new task of project/function with a fresh ID, due at t0,
// changed by edits.
func (e *env) task(project, function string, edits ...func(*store.NewTask)) store.NewTask {
	e.n++
	t := store.NewTask{
		ID:          fmt.Sprintf("t_%06d", e.n),
		Project:     project,
		Function:    function,
		CodeDigest:  ward.Digest([]byte("code")),
		RunAt:       t0,
		TimeoutS:    30,
		MemoryMB:    64,
		MaxAttempts: 3,
		BackoffS:    5,
		SubmittedBy: "tok_1",
		Payload:     fmt.Appendf(nil, `{"n":%d}`, e.n),
	}
	for _, edit := range edits {
		edit(&t)
	}
	return t
}

// insert inserts tasks at t0 and returns their records.
func (e *env) insert(tasks ...store.NewTask) []store.TaskRecord {
	e.t.Helper()
	res := e.insertAt(t0, tasks...)
	recs := make([]store.TaskRecord, len(res))
	for i, r := range res {
		recs[i] = r.Task
	}
	return recs
}

// insertAt inserts tasks at now.
func (e *env) insertAt(now time.Time, tasks ...store.NewTask) []store.InsertResult {
	e.t.Helper()
	res, err := e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: tasks, Now: now})
	if err != nil {
		e.t.Fatalf("InsertTasks: %v", err)
	}
	if len(res) != len(tasks) {
		e.t.Fatalf("InsertTasks: %d results for %d tasks", len(res), len(tasks))
	}
	return res
}

// lease leases for runner with a one-minute TTL.
func (e *env) lease(runner string, maxTasks, freeMB int, now time.Time) []store.Lease {
	e.t.Helper()
	ls, err := e.s.LeaseTasks(e.ctx, &store.LeaseParams{RunnerID: runner, Max: maxTasks, FreeMemoryMB: freeMB, TTL: time.Minute, Now: now})
	if err != nil {
		e.t.Fatalf("LeaseTasks(%s): %v", runner, err)
	}
	return ls
}

// leaseOne leases exactly one task, with a large memory budget.
func (e *env) leaseOne(runner string, now time.Time) store.Lease {
	e.t.Helper()
	ls := e.lease(runner, 1, 1<<20, now)
	if len(ls) != 1 {
		e.t.Fatalf("LeaseTasks(%s) at %v: %d leases, want 1", runner, now, len(ls))
	}
	return ls[0]
}

// get reads a task.
func (e *env) get(project, id string) store.TaskRecord {
	e.t.Helper()
	r, err := e.s.GetTask(e.ctx, project, id)
	if err != nil {
		e.t.Fatalf("GetTask(%s, %s): %v", project, id, err)
	}
	return r
}

// body reads a task body.
func (e *env) body(project, id string, b store.Body) []byte {
	e.t.Helper()
	data, err := e.s.GetTaskBody(e.ctx, project, id, b)
	if err != nil {
		e.t.Fatalf("GetTaskBody(%s, %s, %s): %v", project, id, b, err)
	}
	return data
}

// complete applies completions; the call itself must succeed.
func (e *env) complete(cs ...store.Completion) []error {
	e.t.Helper()
	errs, err := e.s.CompleteTasks(e.ctx, &store.CompleteParams{Completions: cs})
	if err != nil {
		e.t.Fatalf("CompleteTasks: %v", err)
	}
	if len(errs) != len(cs) {
		e.t.Fatalf("CompleteTasks: %d errors for %d completions", len(errs), len(cs))
	}
	return errs
}

// completeOK applies completions that must all apply.
func (e *env) completeOK(cs ...store.Completion) {
	e.t.Helper()
	for i, err := range e.complete(cs...) {
		if err != nil {
			e.t.Fatalf("completion %d (%s): %v", i, cs[i].TaskID, err)
		}
	}
}

// succeed is a successful completion of a lease at now.
func succeed(l store.Lease, now time.Time) store.Completion {
	code := 0
	return store.Completion{TaskID: l.Task.ID, Project: l.Task.Project, LeaseID: l.LeaseID, Status: ward.StatusSucceeded, ExitCode: &code,
		Usage: &ward.Usage{PeakMemoryBytes: 1 << 20, CPUMs: 5, DurationMs: 7}, Result: []byte(`{"ok":true}`), Log: []byte("done\n"), Now: now}
}

// wantCode fails unless err is a *ward.Error with code.
func wantCode(t *testing.T, what string, err error, code ward.Code) {
	t.Helper()
	var we *ward.Error
	switch {
	case err == nil:
		t.Fatalf("%s: no error, want %s", what, code)
	case !errors.As(err, &we):
		t.Fatalf("%s: error %v (%T) is not a *ward.Error, want code %s", what, err, err, code)
	case we.Code != code:
		t.Fatalf("%s: code %s (%v), want %s", what, we.Code, err, code)
	case !errors.Is(err, &ward.Error{Code: code}):
		t.Fatalf("%s: errors.Is does not match code %s", what, code)
	}
}

// sameRecord fails unless two records are equal, comparing their JSON (which
// also requires times to be in UTC).
func sameRecord(t *testing.T, what string, got, want store.TaskRecord) {
	t.Helper()
	g, w := mustJSON(t, got), mustJSON(t, want)
	if g != w {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantTime fails unless got is want, in UTC.
func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("%s = %v, want %v (UTC)", what, got, want)
	}
}

// wantTimePtr fails unless got is set to want (or nil when want is nil).
func wantTimePtr(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Fatalf("%s = %v, want %v", what, got, want)
	default:
		wantTime(t, what, *got, *want)
	}
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

// ids returns the task IDs of leases.
func ids(ls []store.Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Task.ID
	}
	return out
}
