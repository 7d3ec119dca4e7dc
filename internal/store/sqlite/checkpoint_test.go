package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward/internal/store"
)

// TestCheckpointer checks that committed writes reach the database file
// without the write connection checkpointing: the checkpointer copies them.
func TestCheckpointer(t *testing.T) {
	t.Parallel()
	s := openWithProject(t)
	ctx := t.Context()
	tasks := make([]store.NewTask, 200)
	for i := range tasks {
		tasks[i] = newTask(fmt.Sprintf("t_%03d", i), "p", make([]byte, 2000))
	}
	if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Now: projectTime, Tasks: tasks}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.ckpt.frames.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no frame checkpointed within 20 s of the writes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Nothing is left to copy: the checkpointer has caught up.
	var busy, log, copied int
	if err := s.ckpt.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &copied); err != nil {
		t.Fatal(err)
	}
	if busy != 0 || copied != log {
		t.Fatalf("checkpoint after catching up: busy %d, log %d, copied %d", busy, log, copied)
	}
}
