package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// BenchmarkCycle measures the full life of trivial tasks through the store:
// insert in batches of 1000, lease in batches of 256, complete in batches of
// 256. One iteration is 1000 tasks; tasks/s is the figure that matters.
func BenchmarkCycle(b *testing.B) {
	// A cancellable context, as on the server's request paths.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "bench", Now: now}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.PutFunction(ctx, &store.PutFunctionParams{Project: "bench", Name: "echo", Spec: ward.DefaultSpec(), Now: now}); err != nil {
		b.Fatal(err)
	}
	const batch, leaseBatch = 1000, 256
	tasks := make([]store.NewTask, batch)
	result := []byte(`{"ok":true}`)
	code := 0
	seq := 0
	done := 0
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		for i := range tasks {
			seq++
			tasks[i] = store.NewTask{ID: fmt.Sprintf("t_%012d", seq), Project: "bench", Function: "echo", CodeDigest: "sha256:00",
				RunAt: now, TimeoutS: 30, MemoryMB: 1, MaxAttempts: 1, BackoffS: 5, SubmittedBy: "tok", Payload: []byte(`{"n":1}`)}
		}
		if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Tasks: tasks, Now: now}); err != nil {
			b.Fatal(err)
		}
		for left := batch; left > 0; {
			ls, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: "r", Max: leaseBatch, FreeMemoryMB: 1 << 20, TTL: time.Minute, Now: now})
			if err != nil {
				b.Fatal(err)
			}
			if len(ls) == 0 {
				b.Fatalf("nothing to lease with %d tasks left", left)
			}
			cs := make([]store.Completion, len(ls))
			for i, l := range ls {
				cs[i] = store.Completion{TaskID: l.Task.ID, LeaseID: l.LeaseID, Status: ward.StatusSucceeded, ExitCode: &code,
					Usage: &ward.Usage{DurationMs: 1}, Result: result, Now: now}
			}
			errs, err := s.CompleteTasks(ctx, &store.CompleteParams{Completions: cs})
			if err != nil {
				b.Fatal(err)
			}
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
			left -= len(ls)
		}
		done += batch
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "tasks/s")
	// CPU seconds of the whole process (GC included): steadier than the
	// wall clock on a shared machine.
	b.ReportMetric(float64(done)/(cpuTime(b)-cpu0).Seconds(), "tasks/cpu-s")
}

// cpuTime returns the user and system CPU time used by the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
