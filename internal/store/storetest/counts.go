package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// countTests cover TaskCounts, the figures metrics read.
var countTests = []test{
	{"TaskCounts", testTaskCounts},
	{"TaskCountsEmpty", testTaskCountsEmpty},
}

// counts reads TaskCounts at now as "project/function due delayed running"
// lines.
func (e *env) counts(now time.Time) []string {
	e.t.Helper()
	cs, err := e.s.TaskCounts(e.ctx, &store.TaskCountsParams{Now: now})
	if err != nil {
		e.t.Fatalf("TaskCounts: %v", err)
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s/%s %d %d %d", c.Project, c.Function, c.Due, c.Delayed, c.Running)
	}
	return out
}

func wantCounts(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: TaskCounts =\n\t%s\nwant\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func testTaskCountsEmpty(t *testing.T, e *env) {
	wantCounts(t, "empty store", e.counts(t0))
	e.project("p")
	e.function("p", "f", nil)
	wantCounts(t, "a function without tasks", e.counts(t0), "p/f 0 0 0")
}

func testTaskCounts(t *testing.T, e *env) {
	e.project("q", "p")
	for _, fn := range []string{"b", "a", "idle"} {
		e.function("p", fn, nil)
	}
	e.function("q", "a", nil)
	delayed := func(d time.Duration) func(*store.NewTask) {
		return func(n *store.NewTask) { n.RunAt = at(d) }
	}
	e.insert(
		e.task("p", "a"), e.task("p", "a"), e.task("p", "a", delayed(time.Second)), // due at t0 (run_at = Now counts), one later
		e.task("p", "a", delayed(time.Hour)),
		e.task("p", "b", func(n *store.NewTask) { n.Priority = 2 }), e.task("p", "b", func(n *store.NewTask) { n.Runtime = ward.RuntimeOCI }),
		e.task("q", "a", delayed(-time.Minute)),
		e.task("p", "gone"), e.task("p", "gone"), // a function never created (or since deleted)
	)
	wantCounts(t, "all queued", e.counts(t0),
		"p/a 2 2 0", "p/b 2 0 0", "p/gone 2 0 0", "p/idle 0 0 0", "q/a 1 0 0")
	// Time moves: the task delayed by a second is due.
	wantCounts(t, "a second later", e.counts(at(time.Second)),
		"p/a 3 1 0", "p/b 2 0 0", "p/gone 2 0 0", "p/idle 0 0 0", "q/a 1 0 0")

	// Leasing moves tasks from due to running; completing and cancelling
	// take them off.
	// Lease order: p/b's priority 2, q/a's earlier run_at, then insertion.
	ls := e.lease("r", 6, 1<<20, t0)
	if len(ls) != 6 {
		t.Fatalf("leased %d, want 6 of the 7 due", len(ls))
	}
	wantCounts(t, "leased", e.counts(t0),
		"p/a 0 2 2", "p/b 0 0 2", "p/gone 1 0 1", "p/idle 0 0 0", "q/a 0 0 1")
	var byFn = map[string][]store.Lease{}
	for _, l := range ls {
		k := l.Task.Project + "/" + l.Task.Function
		byFn[k] = append(byFn[k], l)
	}
	e.completeOK(succeed(byFn["p/a"][0], at(time.Second)))
	retry := succeed(byFn["p/b"][0], at(time.Second))
	retry.Status, retry.RunAt, retry.Result, retry.Error = ward.StatusQueued, at(time.Minute), nil, &ward.TaskError{Code: ward.CodeExitStatus}
	e.completeOK(retry)
	if _, err := e.s.CancelTask(e.ctx, &store.CancelParams{Project: "q", ID: byFn["q/a"][0].Task.ID, Now: at(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteFunction(e.ctx, "p", "idle"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, "after completion, retry, cancel and delete", e.counts(at(time.Second)),
		"p/a 1 1 1", "p/b 0 1 1", "p/gone 1 0 1", "q/a 0 0 0")

	// Finished tasks count nowhere.
	e.completeOK(succeed(byFn["p/a"][1], at(2*time.Second)), succeed(byFn["p/b"][1], at(2*time.Second)),
		succeed(byFn["p/gone"][0], at(2*time.Second)))
	wantCounts(t, "all finished but the queued", e.counts(at(time.Hour)),
		"p/a 2 0 0", "p/b 1 0 0", "p/gone 1 0 0", "q/a 0 0 0")
}
