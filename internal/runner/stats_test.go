package runner_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

// TestStatsAndColdStarts: Stats reports the budget, the memory and slots
// the running tasks hold, and OnColdStart is told once per preparation.
func TestStatsAndColdStarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]fnDef{"echo": {code: sandboxtest.Module("echo"), spec: ward.FunctionSpec{Limits: ward.Limits{MemoryMB: 32}}}})
	gate := make(chan struct{})
	g := newGated(t, gate)
	var mu sync.Mutex
	var cold []ward.Runtime
	r := runner.New(runner.Options{Source: e.q, Sandbox: g, Slots: 4, MemoryBudgetMB: 100,
		OnColdStart: func(rt ward.Runtime, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if d < 0 {
				t.Errorf("cold start of %v", d)
			}
			cold = append(cold, rt)
		}})
	if got, want := r.Stats(), (runner.Stats{MemoryBudgetMB: 100, Slots: 4, FreeSlots: 4}); got != want {
		t.Fatalf("idle stats %+v, want %+v", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	ids := e.submit(t, "echo", 2)
	for range 2 {
		<-g.started
	}
	if got, want := r.Stats(), (runner.Stats{MemoryBudgetMB: 100, MemoryInUseMB: 64, Slots: 4, FreeSlots: 2}); got != want {
		t.Fatalf("stats with two tasks running %+v, want %+v", got, want)
	}
	mu.Lock()
	if len(cold) != 1 || cold[0] != ward.RuntimeWasm {
		t.Errorf("cold starts %v, want one of wasm", cold)
	}
	mu.Unlock()
	close(gate)
	for _, id := range ids {
		if tk := e.await(t, id); tk.Status != ward.StatusSucceeded {
			t.Fatalf("%s: %s", id, tk.Status)
		}
	}
	// Slots come back once the results are handed over.
	want := runner.Stats{MemoryBudgetMB: 100, Slots: 4, FreeSlots: 4}
	for deadline := time.Now().Add(10 * time.Second); r.Stats() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("stats after the runs %+v, want %+v", r.Stats(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The code stays prepared: more runs are no cold start.
	for _, id := range e.submit(t, "echo", 3) {
		e.await(t, id)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(cold) != 1 {
		t.Errorf("%d cold starts for one digest", len(cold))
	}
}
