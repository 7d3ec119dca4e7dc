package postgres

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/postgres/pgtest"
	"github.com/wardhq/ward/internal/store/storetest"
)

// testLogger logs to the test.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// openTest opens a store on dsn, closed when the test ends.
func openTest(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, pgtest.DSN(t))
	})
}

func TestOpenBadDSN(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"postgres://user:hunter2@[::1", "port=notanumber password=hunter2"} {
		_, err := Open(t.Context(), dsn, nil)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open error reveals the password: %v", err)
		}
	}
}

func TestOpenMissingSchema(t *testing.T) {
	base := pgtest.URL(t)
	t.Parallel()
	dsn := pgtest.WithParams(t, base, map[string]string{"search_path": "ward_test_does_not_exist"})
	if _, err := Open(t.Context(), dsn, nil); err == nil {
		t.Fatal("Open with a search_path naming no schema succeeded")
	}
}

func TestMigrationsConcurrentOpen(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	dsn := pgtest.DSN(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), dsn, testLogger(t)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	ms, err := store.LoadMigrations(migrationsFS)
	if err != nil {
		t.Fatal(err)
	}
	var count, maxV int
	if err := stores[0].pool.QueryRow(t.Context(), `SELECT count(*), coalesce(max(version), 0) FROM schema_migrations`).
		Scan(&count, &maxV); err != nil {
		t.Fatal(err)
	}
	if count != len(ms) || maxV != len(ms) {
		t.Errorf("schema_migrations has %d rows, max version %d; want %d of each", count, maxV, len(ms))
	}
	// A fifth open applies nothing and works.
	s := openTest(t, dsn)
	if _, err := s.CreateProject(t.Context(), &store.CreateProjectParams{Name: "p", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	dsn := pgtest.DSN(t)
	s := openTest(t, dsn)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), dsn, nil)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open on a newer schema: %v, want a refusal", err)
	}
}

// TestMigrateTaskRuntime upgrades a schema of version 2 holding a queued
// task and checks migration 3 makes it a wasm task, leased as such.
func TestMigrateTaskRuntime(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	conn, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ms, err := store.LoadMigrations(migrationsFS)
	if err != nil || len(ms) < 3 {
		t.Fatalf("migrations: %d, %v", len(ms), err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
		ms[0].SQL, ms[1].SQL,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, '` + ms[0].Name + `', 0), (2, '` + ms[1].Name + `', 0)`,
		`INSERT INTO projects (name, created_at, retention_days) VALUES ('p', 0, 7)`,
		`INSERT INTO tasks (id, project, function, code_digest, status, priority, max_attempts, timeout_s, memory_mb, backoff_s,
			created_at, run_at, payload_size) VALUES ('t_1', 'p', 'f', 'sha256:00', 'queued', 0, 1, 30, 64, 5, 1, 1, 0)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
	}
	s := openTest(t, dsn)
	rec, err := s.GetTask(ctx, "p", "t_1")
	if err != nil || rec.Runtime != ward.RuntimeWasm {
		t.Fatalf("GetTask after migration = %+v, %v; want runtime wasm", rec, err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	lease := func(rt ward.Runtime) []store.Lease {
		t.Helper()
		ls, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: "r", Max: 1, FreeMemoryMB: 64,
			Runtimes: []ward.Runtime{rt}, TTL: time.Minute, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	if ls := lease(ward.RuntimeOCI); len(ls) != 0 {
		t.Fatalf("oci lease after migration took %d tasks, want none", len(ls))
	}
	if ls := lease(ward.RuntimeWasm); len(ls) != 1 || ls[0].Task.ID != "t_1" {
		t.Fatalf("wasm lease after migration took %d tasks, want t_1", len(ls))
	}
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	t.Parallel()
	ms, err := store.LoadMigrations(migrationsFS)
	if err != nil || len(ms) == 0 {
		t.Fatalf("embedded migrations: %d, %v", len(ms), err)
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %s has version %d, want %d", m.Name, m.Version, i+1)
		}
	}
}

// TestConcurrentLeasing has two stores on one schema (two servers) lease
// from several goroutines each while completing what they lease: no task
// is leased twice, and no function ever has more running tasks than its
// max_concurrency.
func TestConcurrentLeasing(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	dsn := pgtest.DSN(t)
	a, b := openTest(t, dsn), openTest(t, dsn)
	ctx := t.Context()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := a.CreateProject(ctx, &store.CreateProjectParams{Name: "p", Now: now}); err != nil {
		t.Fatal(err)
	}
	limits := map[string]int{"one": 1, "two": 2, "free": 0}
	for name, n := range limits {
		spec := ward.FunctionSpec{}
		spec.Limits.MaxConcurrency = n
		if _, err := a.PutFunction(ctx, &store.PutFunctionParams{Project: "p", Name: name, Spec: spec, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	const perFn = 30
	var tasks []store.NewTask
	for i := range perFn {
		for fn := range limits {
			tasks = append(tasks, store.NewTask{ID: fmt.Sprintf("%s-%02d", fn, i), Project: "p", Function: fn,
				RunAt: now, MemoryMB: 1, MaxAttempts: 1, TimeoutS: 1, Priority: i % 3})
		}
	}
	if _, err := a.InsertTasks(ctx, &store.InsertTasksParams{Tasks: tasks, Now: now}); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		leased  = map[string]int{}
		running = map[string]int{}
		errs    []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 6 {
		s := []*Store{a, b}[w%2]
		runner := fmt.Sprintf("runner-%d", w)
		wg.Go(func() {
			for idle := 0; idle < 20; {
				ls, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: runner, Max: 3, FreeMemoryMB: 100, TTL: time.Hour, Now: now})
				if err != nil {
					fail(err)
					return
				}
				if len(ls) == 0 {
					idle++
					time.Sleep(2 * time.Millisecond)
					continue
				}
				idle = 0
				mu.Lock()
				for _, l := range ls {
					leased[l.Task.ID]++
					running[l.Task.Function]++
					if n := limits[l.Task.Function]; n > 0 && running[l.Task.Function] > n {
						errs = append(errs, fmt.Errorf("function %s has %d running tasks, limit %d", l.Task.Function, running[l.Task.Function], n))
					}
				}
				mu.Unlock()
				time.Sleep(time.Millisecond) // hold the slots, so overlapping leases would show
				var cs []store.Completion
				for _, l := range ls {
					cs = append(cs, store.Completion{TaskID: l.Task.ID, LeaseID: l.LeaseID, Project: "p",
						Status: ward.StatusSucceeded, Now: now})
				}
				// Count the tasks as not running before the store does,
				// so that a lease seeing the freed slot never races the
				// bookkeeping here.
				mu.Lock()
				for _, l := range ls {
					running[l.Task.Function]--
				}
				mu.Unlock()
				res, err := s.CompleteTasks(ctx, &store.CompleteParams{Completions: cs})
				if err != nil {
					fail(err)
					return
				}
				for i, e := range res {
					if e != nil {
						fail(fmt.Errorf("complete %s: %w", cs[i].TaskID, e))
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(leased) != len(tasks) {
		t.Errorf("%d distinct tasks leased, want %d", len(leased), len(tasks))
	}
	for id, n := range leased {
		if n != 1 {
			t.Errorf("task %s leased %d times", id, n)
		}
	}
	for fn := range limits {
		if n, err := a.CountRunning(ctx, "p", fn); err != nil || n != 0 {
			t.Errorf("CountRunning(%s) = %d, %v; want 0", fn, n, err)
		}
	}
}

// TestNotify: a store listening for work hears a Notify from another store
// on the same database, and keeps listening after the first one.
func TestNotify(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := openTest(t, dsn)
	b := openTest(t, dsn)
	woken := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Listen(ctx, func() { woken <- struct{}{} })
	}()
	defer func() { cancel(); <-done }()
	for i := range 2 {
		// The listener may not be LISTENing yet: notify until it hears.
		heard := false
		for try := 0; try < 100 && !heard; try++ {
			b.Notify(ctx)
			select {
			case <-woken:
				heard = true
			case <-time.After(100 * time.Millisecond):
			}
		}
		if !heard {
			t.Fatalf("notification %d never heard", i)
		}
	}
}

// TestBroadcast: a message of any bytes, up to MaxBroadcast, reaches the
// subscribers of every store on the same schema, the sender's own
// included, and none on another schema; a bigger one is refused.
func TestBroadcast(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := openTest(t, dsn), openTest(t, dsn)
	other := openTest(t, pgtest.DSN(t))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	subscribe := func(s *Store) chan []byte {
		got := make(chan []byte, 64)
		wg.Go(func() {
			_ = s.Subscribe(ctx, func(msg []byte) { got <- bytes.Clone(msg) })
		})
		return got
	}
	fromA, fromB, fromOther := subscribe(a), subscribe(b), subscribe(other)

	msg := make([]byte, store.MaxBroadcast)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	// The subscribers may not be LISTENing yet: send until both hear one.
	heard := func(ch chan []byte) bool {
		select {
		case m := <-ch:
			if !bytes.Equal(m, msg) {
				t.Fatalf("heard %d bytes, not the %d sent", len(m), len(msg))
			}
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	}
	okA, okB := false, false
	for try := 0; try < 100 && !(okA && okB); try++ {
		if err := b.Broadcast(ctx, msg); err != nil {
			t.Fatalf("Broadcast: %v", err)
		}
		okA = okA || heard(fromA)
		okB = okB || heard(fromB)
	}
	if !okA || !okB {
		t.Fatalf("heard by a: %v, by the sender: %v", okA, okB)
	}
	// Messages that follow arrive in order.
	for i := range 5 {
		if err := a.Broadcast(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; {
		m := <-fromB
		if len(m) != 1 {
			continue // a late copy of the probe
		}
		if m[0] != byte(i) {
			t.Fatalf("message %d arrived as %d", i, m[0])
		}
		i++
	}
	select {
	case m := <-fromOther:
		t.Fatalf("a store on another schema heard %d bytes", len(m))
	default:
	}
	if err := a.Broadcast(ctx, make([]byte, store.MaxBroadcast+1)); err == nil {
		t.Fatal("a message over MaxBroadcast was sent")
	}
}

// TestMigrateProjectUsage upgrades a schema of version 5 holding task
// bodies and code and checks migration 6 counts them in the projects'
// stored bytes, which the store then keeps up to date.
func TestMigrateProjectUsage(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	conn, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ms, err := store.LoadMigrations(migrationsFS)
	if err != nil || len(ms) < 6 {
		t.Fatalf("migrations: %d, %v", len(ms), err)
	}
	qs := []string{`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`}
	for _, m := range ms[:5] {
		qs = append(qs, m.SQL, fmt.Sprintf(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, '%s', 0)`, m.Version, m.Name))
	}
	qs = append(qs,
		`INSERT INTO projects (name, created_at, retention_days) VALUES ('p', 0, 7), ('q', 0, 7), ('empty', 0, 7)`,
		`INSERT INTO tasks (id, project, function, code_digest, status, priority, max_attempts, timeout_s, memory_mb, backoff_s,
			created_at, run_at, payload_size) VALUES
			('t_1', 'p', 'f', 'sha256:00', 'succeeded', 0, 1, 30, 64, 5, 1, 1, 0),
			('t_2', 'p', 'f', 'sha256:00', 'queued', 0, 1, 30, 64, 5, 1, 1, 0),
			('t_3', 'q', 'f', 'sha256:00', 'queued', 0, 1, 30, 64, 5, 1, 1, 0)`,
		`INSERT INTO task_bodies (seq, kind, data)
			SELECT t.seq, b.kind, decode(b.hex, 'hex') FROM tasks t JOIN (VALUES ('t_1', 0, '0102'), ('t_1', 1, '010203'),
				('t_1', 2, '01020304'), ('t_2', 0, '0102030405'), ('t_3', 0, '01')) AS b (id, kind, hex) ON b.id = t.id`,
		`INSERT INTO code_blobs (project, digest, size, data, created_at) VALUES ('p', 'sha256:aa', 1, decode('010203040506', 'hex'), 1)`,
	)
	for _, q := range qs {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
	}
	s := openTest(t, dsn)
	for project, want := range map[string]int64{"p": 2 + 3 + 4 + 5 + 6, "q": 1, "empty": 0} {
		p, err := s.GetProject(ctx, project)
		if err != nil || p.Usage.StoredBytes != want {
			t.Errorf("GetProject(%s) after migration: stored bytes %d, %v; want %d", project, p.Usage.StoredBytes, err, want)
		}
	}
	if n, err := s.PurgeTasks(ctx, &store.PurgeParams{Project: "p", FinishedBefore: time.Unix(1, 0)}); err != nil || n != 0 {
		t.Fatalf("PurgeTasks = %d, %v", n, err)
	}
	if _, err := conn.Exec(ctx, `UPDATE tasks SET finished_at = 0 WHERE id = 't_1'`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeTasks(ctx, &store.PurgeParams{Project: "p", FinishedBefore: time.Unix(1, 0)}); err != nil || n != 1 {
		t.Fatalf("PurgeTasks = %d, %v", n, err)
	}
	if p, err := s.GetProject(ctx, "p"); err != nil || p.Usage.StoredBytes != 5+6 {
		t.Errorf("after purging the counted task: stored bytes %d, %v; want %d", p.Usage.StoredBytes, err, 5+6)
	}
}
