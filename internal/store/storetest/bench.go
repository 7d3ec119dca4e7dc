package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// BenchTaskCounts measures the metrics' read of every function's task
// counts with 10k and 100k queued tasks over 20 functions, a tenth of them
// delayed. open must return a new, empty store and arrange for it to be
// closed when b ends (b.Cleanup).
func BenchTaskCounts(b *testing.B, open func(*testing.B) store.Store) {
	for _, queued := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("queued=%d", queued), func(b *testing.B) {
			ctx := context.Background()
			s := open(b)
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "bench", Now: now}); err != nil {
				b.Fatal(err)
			}
			const fns = 20
			for f := range fns {
				if _, err := s.PutFunction(ctx, &store.PutFunctionParams{Project: "bench", Name: fmt.Sprintf("f%d", f), Spec: ward.DefaultSpec(), Now: now}); err != nil {
					b.Fatal(err)
				}
			}
			tasks := make([]store.NewTask, 0, 1000)
			for i := range queued {
				runAt := now
				if i%10 == 0 {
					runAt = now.Add(time.Hour)
				}
				tasks = append(tasks, store.NewTask{ID: fmt.Sprintf("t_%012d", i), Project: "bench", Function: fmt.Sprintf("f%d", i%fns),
					CodeDigest: "sha256:x", RunAt: runAt, TimeoutS: 30, MemoryMB: 1, MaxAttempts: 1, SubmittedBy: "tok", Payload: []byte(`{}`)})
				if len(tasks) == cap(tasks) || i == queued-1 {
					if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Tasks: tasks, Now: now}); err != nil {
						b.Fatal(err)
					}
					tasks = tasks[:0]
				}
			}
			if _, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: "r", Max: 200, FreeMemoryMB: 1 << 20, TTL: time.Hour, Now: now}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				cs, err := s.TaskCounts(ctx, &store.TaskCountsParams{Now: now})
				if err != nil || len(cs) != fns {
					b.Fatalf("%d counts, %v", len(cs), err)
				}
			}
		})
	}
}
