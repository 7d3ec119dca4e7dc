package runner_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/store"
)

// runUntilDone runs r and returns a channel with Run's result.
func runUntilDone(t *testing.T, r *runner.Runner) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return done
}

func (e *env) statuses(t *testing.T, ids []string) map[ward.Status]int {
	t.Helper()
	n := map[ward.Status]int{}
	for _, id := range ids {
		tk, err := e.q.Get(context.Background(), "p", id)
		if err != nil {
			t.Fatal(err)
		}
		n[tk.Status]++
	}
	return n
}

func (e *env) runnerState(t *testing.T, id string) ward.Runner {
	t.Helper()
	rn, err := e.st.GetRunner(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rn
}

// A draining runner takes no new task, lets its running tasks finish,
// records itself drained and returns nil.
func TestDrainFinishesRunningTasksAndTakesNoMore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"echo": {code: sandboxtest.Module("echo")}})
	gate := make(chan struct{})
	g := newGated(t, gate)
	r := runner.New(runner.Options{Source: e.q, Sandbox: g, Slots: 3, MemoryBudgetMB: 1024, HeartbeatInterval: 20 * time.Millisecond})
	done := runUntilDone(t, r)
	first := e.submit(t, "echo", 3)
	for range 3 {
		<-g.started
	}
	if st := e.runnerState(t, r.ID()); st.State != ward.RunnerActive || st.Running != 3 {
		t.Fatalf("before draining: %s with %d running", st.State, st.Running)
	}
	r.Drain("test")
	later := e.submit(t, "echo", 5)
	select {
	case err := <-done:
		t.Fatalf("Run returned %v with tasks still running", err)
	case <-time.After(100 * time.Millisecond):
	}
	for range 3 {
		gate <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after drain: %v", err)
	}
	if n := e.statuses(t, first); n[ward.StatusSucceeded] != 3 {
		t.Fatalf("running tasks at drain: %v, want all 3 succeeded", n)
	}
	if n := e.statuses(t, later); n[ward.StatusQueued] != 5 {
		t.Fatalf("tasks submitted after drain: %v, want all 5 still queued", n)
	}
	if st := e.runnerState(t, r.ID()); st.State != ward.RunnerDrained || st.Running != 0 {
		t.Fatalf("after: %s with %d running", st.State, st.Running)
	}
	if r.Leased() != 3 {
		t.Fatalf("leased %d, want 3", r.Leased())
	}
}

// --max-tasks: the runner leases exactly that many tasks, runs them, and
// returns nil.
func TestMaxTasksRecycles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"echo": {code: sandboxtest.Module("echo")}})
	ids := e.submit(t, "echo", 40)
	r := runner.New(runner.Options{Source: e.q, Sandbox: newGated(t, nil), Slots: 8, MemoryBudgetMB: 1024, MaxTasks: 25})
	if err := <-runUntilDone(t, r); err != nil {
		t.Fatal(err)
	}
	n := e.statuses(t, ids)
	if n[ward.StatusSucceeded] != 25 || n[ward.StatusQueued] != 15 || r.Leased() != 25 {
		t.Fatalf("after a 25-task runner: %v, leased %d", n, r.Leased())
	}
	if st := e.runnerState(t, r.ID()); st.State != ward.RunnerDrained || st.MaxTasks != 25 {
		t.Fatalf("runner: %+v", st)
	}
}

// --max-age: the runner drains once it is that old.
func TestMaxAgeRecycles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"echo": {code: sandboxtest.Module("echo")}})
	r := runner.New(runner.Options{Source: e.q, Sandbox: newGated(t, nil), Slots: 2, MemoryBudgetMB: 1024, MaxAge: 50 * time.Millisecond})
	done := runUntilDone(t, r)
	select {
	case <-r.Draining():
	case <-time.After(time.Minute):
		t.Fatal("no drain after max age")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := e.runnerState(t, r.ID()); st.State != ward.RunnerDrained {
		t.Fatalf("state %s", st.State)
	}
}

// A drain asked through the store (the API's `ward runner drain`) reaches
// the runner at its next heartbeat, and its lease calls are refused.
func TestDrainAskedByThePlatform(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"echo": {code: sandboxtest.Module("echo")}})
	gate := make(chan struct{})
	g := newGated(t, gate)
	r := runner.New(runner.Options{Source: e.q, Sandbox: g, Slots: 2, MemoryBudgetMB: 1024, HeartbeatInterval: 20 * time.Millisecond})
	done := runUntilDone(t, r)
	first := e.submit(t, "echo", 1)
	<-g.started
	if _, err := e.st.SetRunnerState(context.Background(), &store.SetRunnerStateParams{ID: r.ID(), State: ward.RunnerDraining, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	<-r.Draining()
	_, err := e.q.Lease(context.Background(), &runner.LeaseRequest{RunnerID: r.ID(), Max: 1, FreeMemoryMB: 64})
	if !errors.Is(err, ward.ErrRunnerDraining) {
		t.Fatalf("lease of a draining runner: %v", err)
	}
	later := e.submit(t, "echo", 2)
	gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := e.statuses(t, first); n[ward.StatusSucceeded] != 1 {
		t.Fatalf("running task: %v", n)
	}
	if n := e.statuses(t, later); n[ward.StatusQueued] != 2 {
		t.Fatalf("later tasks: %v", n)
	}
}
