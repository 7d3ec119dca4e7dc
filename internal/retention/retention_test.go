package retention

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/sealed"
	"github.com/wardhq/ward/internal/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var day0 = time.Date(2026, 5, 10, 9, 0, 0, 0, time.UTC)

type bundle struct {
	ctx context.Context
	st  store.Store
	ks  *seal.Keystore
	now time.Time
}

func newBundle(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ward.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	root, err := seal.LoadOrCreateRootKeyFile(filepath.Join(dir, "root.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := seal.OpenKeystore(ctx, filepath.Join(dir, "keys.db"), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	b := &bundle{ctx: ctx, ks: ks, now: day0}
	b.st = sealed.New(db, ks, func() time.Time { return b.now })
	return b
}

// finished inserts a task of fn at at and completes it there.
func (b *bundle) finished(t *testing.T, project, fn string, at time.Time) string {
	t.Helper()
	b.now = at
	id := b.queued(t, project, fn, at)
	ls, err := b.st.LeaseTasks(b.ctx, &store.LeaseParams{RunnerID: "r", Max: 10, FreeMemoryMB: 1 << 20, TTL: time.Minute, Now: at})
	if err != nil || len(ls) != 1 {
		t.Fatalf("lease: %d %v", len(ls), err)
	}
	errs, err := b.st.CompleteTasks(b.ctx, &store.CompleteParams{Completions: []store.Completion{{
		TaskID: id, LeaseID: ls[0].LeaseID, Project: project, Status: ward.StatusSucceeded, Result: []byte("result"), Now: at,
	}}})
	if err != nil || errs[0] != nil {
		t.Fatalf("complete: %v %v", errs, err)
	}
	return id
}

var seq int

func (b *bundle) queued(t *testing.T, project, fn string, at time.Time) string {
	t.Helper()
	seq++
	id := fmt.Sprintf("t_%04d", seq)
	b.now = at
	if _, err := b.st.InsertTasks(b.ctx, &store.InsertTasksParams{Now: at, Tasks: []store.NewTask{{
		ID: id, Project: project, Function: fn, CodeDigest: "sha256:00", RunAt: at, TimeoutS: 10, MemoryMB: 1, MaxAttempts: 1,
		Payload: []byte("payload of " + id),
	}}}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (b *bundle) setup(t *testing.T, project string, retention int, fns map[string]int) {
	t.Helper()
	if _, err := b.st.CreateProject(b.ctx, &store.CreateProjectParams{Name: project, RetentionDays: retention, Now: day0}); err != nil {
		t.Fatal(err)
	}
	for fn, days := range fns {
		spec := ward.DefaultSpec()
		spec.RetentionDays = days
		if _, err := b.st.PutFunction(b.ctx, &store.PutFunctionParams{Project: project, Name: fn, Spec: spec, Now: day0}); err != nil {
			t.Fatal(err)
		}
	}
}

func exists(t *testing.T, b *bundle, project, id string) bool {
	t.Helper()
	_, err := b.st.GetTask(b.ctx, project, id)
	if err != nil && !errors.Is(err, ward.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestPurge(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	// Project a keeps 3 days; its function "short" only 1. Project b keeps 10.
	b.setup(t, "a", 3, map[string]int{"long": 7, "short": 1})
	b.setup(t, "b", 10, map[string]int{"f": 7})
	h := time.Hour
	oldLong := b.finished(t, "a", "long", day0)               // 5 days old at purge: past a's 3
	newLong := b.finished(t, "a", "long", day0.Add(3*24*h))   // 2 days old: kept
	oldShort := b.finished(t, "a", "short", day0.Add(3*24*h)) // 2 days old: past short's 1
	newShort := b.finished(t, "a", "short", day0.Add(5*24*h-h))
	otherProject := b.finished(t, "b", "f", day0)
	stillQueued := b.queued(t, "a", "long", day0) // never finished: never purged
	// An epoch key sealed config does not live under: config survives.
	if err := b.st.PutConfig(b.ctx, &store.PutConfigParams{Project: "a", Config: ward.Config{"K": "v"}, Now: day0}); err != nil {
		t.Fatal(err)
	}

	now := day0.Add(5 * 24 * h)
	p := New(Options{Store: b.st, Keys: b.ks, Now: func() time.Time { return now }, Batch: 1})
	r, err := p.Purge(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Tasks != 2 {
		t.Errorf("purged %d tasks, want 2", r.Tasks)
	}
	// a has keys for day0, day0+3 and day0+4; only day0 lies before the
	// kept window (day0+2 on). b keeps its day0 key (10 days).
	if r.Keys != 1 {
		t.Errorf("destroyed %d epoch keys, want 1 (a's day0)", r.Keys)
	}
	for id, want := range map[string]bool{oldLong: false, newLong: true, oldShort: false, newShort: true, stillQueued: true} {
		if got := exists(t, b, "a", id); got != want {
			t.Errorf("task %s exists = %v, want %v", id, got, want)
		}
	}
	if !exists(t, b, "b", otherProject) {
		t.Error("another project's task was purged")
	}
	// The queued task outlived its payload's key: it cannot be read any more.
	if _, err := b.st.GetTaskBody(b.ctx, "a", stillQueued, store.BodyPayload); ward.CodeOf(err) != seal.CodeKeyDestroyed {
		t.Errorf("payload of a task older than retention: %v, want key_destroyed", err)
	}
	if cfg, err := b.st.GetConfig(b.ctx, "a", ""); err != nil || cfg["K"] != "v" {
		t.Errorf("config after purge: %v %v", cfg, err)
	}
	if body, err := b.st.GetTaskBody(b.ctx, "a", newLong, store.BodyResult); err != nil || string(body) != "result" {
		t.Errorf("kept task's result: %q %v", body, err)
	}
	// A second pass finds nothing more.
	if r, err := p.Purge(b.ctx); err != nil || r != (Report{}) {
		t.Errorf("second pass = %+v, %v", r, err)
	}
}

// failingKeys fails every destruction.
type failingKeys struct{ calls int }

func (f *failingKeys) DestroyBefore(context.Context, string, time.Time) (int, error) {
	f.calls++
	return 0, errors.New("keystore unavailable")
}

func TestPurgeKeepsGoingPastAFailingProject(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	b.setup(t, "a", 1, nil)
	b.setup(t, "b", 1, nil)
	keys := &failingKeys{}
	p := New(Options{Store: b.st, Keys: keys, Now: func() time.Time { return day0 }})
	if _, err := p.Purge(b.ctx); err == nil {
		t.Fatal("a failing keystore went unreported")
	}
	if keys.calls != 2 {
		t.Errorf("tried %d projects, want both", keys.calls)
	}
}

func TestRunStops(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	go func() {
		New(Options{Store: b.st, Keys: b.ks, Interval: time.Hour}).Run(ctx)
		close(done)
	}()
	cancel()
	<-done
}
