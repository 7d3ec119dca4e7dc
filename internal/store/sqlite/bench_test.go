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
	digest := ward.Digest([]byte("module"))
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
			tasks[i] = store.NewTask{ID: fmt.Sprintf("t_%012d", seq), Project: "bench", Function: "echo", CodeDigest: digest,
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

// BenchmarkInsertTokens measures inserting batches of 1000 tasks of a
// function with input rules: each task has input info and two token vault
// entries, one new and one written again (a value seen before). One
// iteration is one batch; tasks/s is the figure that matters.
func BenchmarkInsertTokens(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "bench", Now: now}); err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	digest := ward.Digest([]byte("module"))
	info := &ward.PayloadInfo{Fields: []string{"/order/id", "/customer/email", "/customer/name"}, Tokenized: []string{"/customer/email", "/customer/name"}}
	value := make([]byte, 64) // about an envelope of a short value
	tasks := make([]store.NewTask, batch)
	tokens := make([]store.TokenValue, 2*batch)
	seq := 0
	b.ResetTimer()
	for b.Loop() {
		for i := range tasks {
			seq++
			tasks[i] = store.NewTask{ID: fmt.Sprintf("t_%012d", seq), Project: "bench", Function: "echo", CodeDigest: digest,
				RunAt: now, TimeoutS: 30, MemoryMB: 1, MaxAttempts: 1, BackoffS: 5, SubmittedBy: "tok",
				Payload: []byte(`{"order":{"id":1},"customer":{"email":"tok_a","name":"tok_b"}}`), Input: info}
			tokens[2*i] = store.TokenValue{Project: "bench", Token: fmt.Sprintf("tok_new_%012d", seq), Value: value}
			tokens[2*i+1] = store.TokenValue{Project: "bench", Token: fmt.Sprintf("tok_old_%06d", seq%5000), Value: value}
		}
		if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Tasks: tasks, Tokens: tokens, Now: now}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "tasks/s")
}

// cpuTime returns the user and system CPU time used by the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLeaseBacklog measures one lease of 256 tasks and their
// completion with 100,000 tasks queued ahead: "blocked" puts 50,000 of them,
// first in line, behind a function already at its max_concurrency of 1,
// so every lease must pass over that backlog. "wasm" leases as a wasm-only
// runner does, naming its runtime; "oci-ahead" does too, with the 50,000
// first in line oci tasks it must pass over.
func BenchmarkLeaseBacklog(b *testing.B) {
	for _, bc := range []struct {
		name     string
		ahead    string // the function of the first 50,000 tasks; "" = none
		runtime  ward.Runtime
		runtimes []ward.Runtime
	}{
		{name: "plain"},
		{name: "blocked", ahead: "slow"},
		{name: "wasm", runtimes: []ward.Runtime{ward.RuntimeWasm}},
		{name: "oci-ahead", ahead: "box", runtime: ward.RuntimeOCI, runtimes: []ward.Runtime{ward.RuntimeWasm}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "bench", Now: now}); err != nil {
				b.Fatal(err)
			}
			spec := ward.DefaultSpec()
			spec.Limits.MaxConcurrency = 1
			if _, err := s.PutFunction(ctx, &store.PutFunctionParams{Project: "bench", Name: "slow", Spec: spec, Now: now}); err != nil {
				b.Fatal(err)
			}
			seq := 0
			insert := func(fn string, rt ward.Runtime, n int) {
				tasks := make([]store.NewTask, 0, 1000)
				for range n / 1000 {
					tasks = tasks[:0]
					for range 1000 {
						seq++
						tasks = append(tasks, store.NewTask{ID: fmt.Sprintf("t_%012d", seq), Project: "bench", Function: fn,
							Runtime: rt, RunAt: now, TimeoutS: 30, MemoryMB: 1, MaxAttempts: 1, Payload: []byte(`{}`)})
					}
					if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Tasks: tasks, Now: now}); err != nil {
						b.Fatal(err)
					}
				}
			}
			switch bc.ahead {
			case "slow":
				insert("slow", "", 50_000)
				if ls, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: "hog", Max: 1, FreeMemoryMB: 1, TTL: time.Hour, Now: now}); err != nil || len(ls) != 1 {
					b.Fatalf("lease the one slot: %d, %v", len(ls), err)
				}
				insert("echo", "", 50_000)
			case "":
				insert("echo", "", 100_000)
			default:
				insert(bc.ahead, bc.runtime, 50_000)
				insert("echo", "", 50_000)
			}
			b.ResetTimer()
			for b.Loop() {
				ls, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: "r", Max: 256, FreeMemoryMB: 1 << 20, Runtimes: bc.runtimes,
					TTL: time.Minute, Now: now})
				if err != nil || len(ls) != 256 {
					b.Fatalf("lease: %d, %v", len(ls), err)
				}
				cs := make([]store.Completion, len(ls))
				for i, l := range ls {
					cs[i] = store.Completion{TaskID: l.Task.ID, LeaseID: l.LeaseID, Status: ward.StatusSucceeded, Now: now}
				}
				if _, err := s.CompleteTasks(ctx, &store.CompleteParams{Completions: cs}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				insert("echo", "", 1000) // keep the backlog deep
				b.StartTimer()
			}
		})
	}
}

// BenchmarkNextRunAt measures the next-due probe of the queue's idle gate
// with 10,000 oci tasks queued ahead of one wasm task, for every runtime
// and for wasm alone (which passes over the oci ones).
func BenchmarkNextRunAt(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "bench", Now: now}); err != nil {
		b.Fatal(err)
	}
	tasks := make([]store.NewTask, 0, 10_001)
	for i := range 10_001 {
		rt := ward.RuntimeOCI
		if i == 10_000 {
			rt = ward.RuntimeWasm
		}
		tasks = append(tasks, store.NewTask{ID: fmt.Sprintf("t_%012d", i), Project: "bench", Function: "f", Runtime: rt,
			RunAt: now.Add(time.Duration(i) * time.Microsecond), TimeoutS: 30, MemoryMB: 1, MaxAttempts: 1})
	}
	if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Tasks: tasks, Now: now}); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name     string
		runtimes []ward.Runtime
	}{{"all", nil}, {"wasm", []ward.Runtime{ward.RuntimeWasm}}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, ok, err := s.NextRunAt(ctx, bc.runtimes...); err != nil || !ok {
					b.Fatalf("NextRunAt = %t, %v", ok, err)
				}
			}
		})
	}
}
