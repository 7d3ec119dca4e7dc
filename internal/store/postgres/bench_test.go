package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/postgres/pgtest"
)

// benchStore opens a store on a fresh schema with project p and function f.
func benchStore(b *testing.B) *Store {
	b.Helper()
	dsn := pgtest.DSN(b)
	s, err := Open(b.Context(), dsn, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateProject(b.Context(), &store.CreateProjectParams{Name: "p", Now: now}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.PutFunction(b.Context(), &store.PutFunctionParams{Project: "p", Name: "f", Now: now}); err != nil {
		b.Fatal(err)
	}
	return s
}

// benchTasks returns n tasks of p/f with IDs from prefix.
func benchTasks(prefix string, n int, now time.Time) []store.NewTask {
	ts := make([]store.NewTask, n)
	for i := range ts {
		ts[i] = store.NewTask{ID: fmt.Sprintf("%s-%d", prefix, i), Project: "p", Function: "f", RunAt: now,
			MemoryMB: 1, MaxAttempts: 1, TimeoutS: 1, Payload: []byte(`{"n":1}`)}
	}
	return ts
}

// BenchmarkInsertTasks100 inserts batches of 100 tasks.
func BenchmarkInsertTasks100(b *testing.B) {
	s := benchStore(b)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	for b.Loop() {
		if _, err := s.InsertTasks(b.Context(), &store.InsertTasksParams{Tasks: benchTasks(fmt.Sprint(i), 100, now), Now: now}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLeaseComplete10 leases 10 tasks and completes them; "wasm"
// leases as a wasm-only runner does, naming its runtime.
func BenchmarkLeaseComplete10(b *testing.B) {
	benchLeaseComplete10(b, nil)
}

// BenchmarkLeaseComplete10Wasm is BenchmarkLeaseComplete10 for a lease
// naming the wasm runtime, as runners do.
func BenchmarkLeaseComplete10Wasm(b *testing.B) {
	benchLeaseComplete10(b, []ward.Runtime{ward.RuntimeWasm})
}

func benchLeaseComplete10(b *testing.B, runtimes []ward.Runtime) {
	s := benchStore(b)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	for b.Loop() {
		b.StopTimer()
		if _, err := s.InsertTasks(b.Context(), &store.InsertTasksParams{Tasks: benchTasks(fmt.Sprint(i), 10, now), Now: now}); err != nil {
			b.Fatal(err)
		}
		i++
		b.StartTimer()
		ls, err := s.LeaseTasks(b.Context(), &store.LeaseParams{RunnerID: "r", Max: 10, FreeMemoryMB: 1000, Runtimes: runtimes,
			TTL: time.Minute, Now: now})
		if err != nil || len(ls) != 10 {
			b.Fatalf("lease: %d, %v", len(ls), err)
		}
		cs := make([]store.Completion, len(ls))
		for j, l := range ls {
			cs[j] = store.Completion{TaskID: l.Task.ID, LeaseID: l.LeaseID, Project: "p", Status: ward.StatusSucceeded,
				Result: []byte(`{"ok":true}`), Now: now}
		}
		if _, err := s.CompleteTasks(b.Context(), &store.CompleteParams{Completions: cs}); err != nil {
			b.Fatal(err)
		}
	}
}
