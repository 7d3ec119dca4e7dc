package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// TestRunnerQueryPlans pins the index the running counts read, so that a
// runner's heartbeat does not scan every running task.
func TestRunnerQueryPlans(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "ward.db"))
	for _, tc := range []struct {
		name, query, want string
	}{
		{"get runner", getRunnerSQL, "COVERING INDEX tasks_running_runner (runner_id=?)"},
		{"list runners", listRunnersSQL, "COVERING INDEX tasks_running_runner"},
	} {
		plan := explain(t, s, tc.query)
		if !strings.Contains(plan, tc.want) {
			t.Errorf("%s: plan lacks %q:\n%s", tc.name, tc.want, plan)
		}
		if strings.Contains(plan, "SCAN tasks") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s: plan scans tasks or sorts:\n%s", tc.name, plan)
		}
	}
}

// BenchmarkTouchRunner measures a runner's heartbeat mark (TouchRunner,
// with its running count) on a store where 100 runners hold 20 leases
// each, and ListRunners on the same store.
func BenchmarkTouchRunner(b *testing.B) {
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
	const runners, each = 100, 20
	tasks := make([]store.NewTask, runners*each)
	for i := range tasks {
		tasks[i] = store.NewTask{ID: fmt.Sprintf("t_%06d", i), Project: "bench", Function: "f", CodeDigest: ward.Digest([]byte("m")),
			RunAt: now, TimeoutS: 30, MemoryMB: 1, MaxAttempts: 1, BackoffS: 1, Payload: []byte(`{}`)}
	}
	if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Tasks: tasks, Now: now}); err != nil {
		b.Fatal(err)
	}
	for i := range runners {
		id := fmt.Sprintf("runner-%03d", i)
		if _, err := s.RegisterRunner(ctx, &store.RegisterRunnerParams{Runner: ward.Runner{ID: id, Drivers: []string{"wasm"}, Slots: each}, Now: now}); err != nil {
			b.Fatal(err)
		}
		if ls, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: id, Max: each, FreeMemoryMB: 1 << 20, TTL: time.Hour, Now: now}); err != nil || len(ls) != each {
			b.Fatalf("lease: %d, %v", len(ls), err)
		}
	}
	b.Run("touch", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			r, err := s.TouchRunner(ctx, fmt.Sprintf("runner-%03d", i%runners), now.Add(time.Duration(i)*time.Millisecond))
			if err != nil || r.Running != each {
				b.Fatalf("TouchRunner = %d running, %v", r.Running, err)
			}
		}
	})
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			rs, err := s.ListRunners(ctx)
			if err != nil || len(rs) != runners || rs[0].Running != each {
				b.Fatalf("ListRunners = %d, %v", len(rs), err)
			}
		}
	})
}
