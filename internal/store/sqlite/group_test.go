package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// TestInsertGroup holds the write connection while concurrent InsertTasks
// calls gather, then checks that they were committed together and that each
// got its own outcome: a call naming a missing project fails alone, and a
// call whose caller has gone writes nothing.
func TestInsertGroup(t *testing.T) {
	t.Parallel()
	s := openWithProject(t)
	ctx := t.Context()
	now := projectTime
	task := func(id, project string) store.NewTask { return newTask(id, project, []byte(id)) }

	// Prepare the statements for one task (preparing needs the write
	// connection), then hold the connection so that the calls below queue.
	if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Now: now, Tasks: []store.NewTask{task("t_first", "p")}}); err != nil {
		t.Fatal(err)
	}
	before := s.inserts.groups.Load()
	held, release := make(chan struct{}), make(chan struct{})
	go s.write(ctx, func(*sql.Tx) error {
		close(held)
		<-release
		return nil
	})
	<-held
	// The first call takes the lead and waits for the connection; the
	// others gather behind it.
	const n = 12
	errs := make([]error, n)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, project := ctx, "p"
			switch i {
			case 3:
				project = "missing"
			case 5:
				c = gone
			}
			_, errs[i] = s.InsertTasks(c, &store.InsertTasksParams{Now: now, Tasks: []store.NewTask{task(fmt.Sprintf("t_%02d", i), project)}})
		})
	}
	for {
		s.inserts.mu.Lock()
		queued := len(s.inserts.queue)
		s.inserts.mu.Unlock()
		if queued == n { // the leader takes the queue once it holds the connection
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()

	if g := s.inserts.groups.Load() - before; g != 1 {
		t.Errorf("%d calls took %d transactions; want them grouped", n, g)
	}
	for i, err := range errs {
		id := fmt.Sprintf("t_%02d", i)
		_, gerr := s.GetTask(ctx, "p", id)
		switch i {
		case 3:
			if ward.CodeOf(err) != ward.CodeNotFound || ward.CodeOf(gerr) != ward.CodeNotFound {
				t.Errorf("call with a missing project: %v; stored: %v", err, gerr)
			}
		case 5:
			if err == nil || ward.CodeOf(gerr) != ward.CodeNotFound {
				t.Errorf("call whose caller had gone: %v; stored: %v", err, gerr)
			}
		default:
			if err != nil || gerr != nil {
				t.Errorf("call %d: %v; stored: %v", i, err, gerr)
			}
		}
	}
}

// projectTime is when openWithProject's project and newTask's tasks are made.
var projectTime = time.Unix(1000, 0)

// openWithProject opens a store in a new directory with project p.
func openWithProject(t *testing.T) *Store {
	t.Helper()
	s := openTest(t, filepath.Join(t.TempDir(), "ward.db"))
	if _, err := s.CreateProject(t.Context(), &store.CreateProjectParams{Name: "p", Now: projectTime}); err != nil {
		t.Fatal(err)
	}
	return s
}

// newTask is a task of function f, due at projectTime.
func newTask(id, project string, payload []byte) store.NewTask {
	return store.NewTask{ID: id, Project: project, Function: "f", RunAt: projectTime, TimeoutS: 30, MemoryMB: 64, MaxAttempts: 1, Payload: payload}
}
