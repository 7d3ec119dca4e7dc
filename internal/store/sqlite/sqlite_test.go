package sqlite

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/storetest"
)

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, testLogger(t))
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, filepath.Join(t.TempDir(), "ward.db"))
	})
}

func TestOpenRejectsBadPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, path := range []string{
		"",
		":memory:",
		"file:" + filepath.Join(dir, "a.db"),
		filepath.Join(dir, "a.db?mode=ro"),
		filepath.Join(dir, "a#b.db"),
		filepath.Join(dir, "missing-dir", "a.db"),
	} {
		s, err := Open(t.Context(), path, nil)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestFileMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ward.db")
	s := openTest(t, path)
	if _, err := s.CreateProject(t.Context(), &store.CreateProjectParams{Name: "p", Now: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatalf("stat %s: %v", name, err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(name), mode)
		}
	}
	// The read pool cannot write.
	if _, err := s.r.ExecContext(t.Context(), `CREATE TABLE x (a INTEGER)`); err == nil {
		t.Error("the read pool accepted a write")
	}

	// An existing database readable by others is tightened.
	loose := filepath.Join(dir, "loose.db")
	if err := os.WriteFile(loose, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	openTest(t, loose)
	fi, err := os.Stat(loose)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("existing 0644 file has mode %v after Open, want 0600", mode)
	}
}

// populate writes one of everything and leaves one task running.
func populate(t *testing.T, ctx context.Context, s store.Store, now time.Time) store.Lease {
	t.Helper()
	code := []byte("\x00asm\x01\x00\x00\x00")
	steps := []func() error{
		func() error {
			_, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: "p", Now: now})
			return err
		},
		func() error {
			_, err := s.CreateToken(ctx, &store.CreateTokenParams{Token: ward.Token{ID: "tok_1", Project: "p", Role: ward.RoleOwner, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}})
			return err
		},
		func() error {
			_, err := s.PutFunction(ctx, &store.PutFunctionParams{Project: "p", Name: "f", Spec: ward.DefaultSpec(), Now: now})
			return err
		},
		func() error {
			_, err := s.PutCode(ctx, &store.PutCodeParams{Project: "p", Function: "f", Digest: ward.Digest(code), Code: code, Now: now})
			return err
		},
		func() error {
			return s.PutConfig(ctx, &store.PutConfigParams{Project: "p", Config: ward.Config{"k": "v"}, Now: now})
		},
		func() error {
			_, err := s.InsertTasks(ctx, &store.InsertTasksParams{Now: now, Tasks: []store.NewTask{
				{ID: "t_1", Project: "p", Function: "f", RunAt: now, TimeoutS: 30, MemoryMB: 64, MaxAttempts: 1, Payload: []byte("one"), IdempotencyKey: "k1"},
				{ID: "t_2", Project: "p", Function: "f", RunAt: now, TimeoutS: 30, MemoryMB: 64, MaxAttempts: 1, Payload: []byte("two")},
			}})
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("populate step %d: %v", i, err)
		}
	}
	ls, err := s.LeaseTasks(ctx, &store.LeaseParams{RunnerID: "r", Max: 1, FreeMemoryMB: 64, TTL: time.Minute, Now: now})
	if err != nil || len(ls) != 1 {
		t.Fatalf("lease: %d, %v", len(ls), err)
	}
	return ls[0]
}

// checkPopulated verifies what populate wrote, from a reopened store.
func checkPopulated(t *testing.T, ctx context.Context, s store.Store, l store.Lease, now time.Time) {
	t.Helper()
	if _, err := s.GetProject(ctx, "p"); err != nil {
		t.Fatalf("project lost: %v", err)
	}
	if tok, err := s.GetToken(ctx, "tok_1"); err != nil || tok.Role != ward.RoleOwner {
		t.Fatalf("token lost: %+v, %v", tok, err)
	}
	f, err := s.GetFunction(ctx, "p", "f")
	if err != nil || f.CodeVersion != 1 {
		t.Fatalf("function lost: %+v, %v", f, err)
	}
	if code, err := s.GetCode(ctx, f.CodeDigest); err != nil || len(code) == 0 {
		t.Fatalf("code lost: %v", err)
	}
	if cfg, err := s.GetConfig(ctx, "p", ""); err != nil || cfg["k"] != "v" {
		t.Fatalf("config lost: %v, %v", cfg, err)
	}
	got, err := s.GetTask(ctx, "p", l.Task.ID)
	if err != nil || got.Status != ward.StatusRunning || got.LeaseID != l.LeaseID {
		t.Fatalf("running task after reopen = %+v, %v", got, err)
	}
	if b, err := s.GetTaskBody(ctx, "p", "t_2", store.BodyPayload); err != nil || string(b) != "two" {
		t.Fatalf("payload after reopen = %q, %v", b, err)
	}
	res, err := s.InsertTasks(ctx, &store.InsertTasksParams{Now: now.Add(time.Second), Tasks: []store.NewTask{
		{ID: "t_3", Project: "p", Function: "f", RunAt: now, TimeoutS: 30, MemoryMB: 64, MaxAttempts: 1, IdempotencyKey: "k1"},
	}})
	if err != nil || !res[0].Existing || res[0].Task.ID != "t_1" {
		t.Fatalf("idempotency key lost: %+v, %v", res, err)
	}
	// The lease survives: its runner can still complete the task.
	errs, err := s.CompleteTasks(ctx, &store.CompleteParams{Completions: []store.Completion{
		{TaskID: l.Task.ID, LeaseID: l.LeaseID, Status: ward.StatusSucceeded, Result: []byte("ok"), Now: now.Add(time.Second)},
	}})
	if err != nil || errs[0] != nil {
		t.Fatalf("completing after reopen: %v, %v", err, errs)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ward.db")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := populate(t, t.Context(), s, now)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkPopulated(t, t.Context(), openTest(t, path), l, now)
}

// crashEnv names the database a child process of
// TestCommittedWriteSurvivesKill writes to before it kills itself.
const crashEnv = "WARD_SQLITE_CRASH_DB"

// TestCommittedWriteSurvivesKill runs a child process that commits writes
// and is then killed with SIGKILL (no Close, no checkpoint); every committed
// write must be there when the database is opened again.
func TestCommittedWriteSurvivesKill(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if path := os.Getenv(crashEnv); path != "" {
		s, err := Open(context.Background(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		l := populate(t, context.Background(), s, now)
		if err := os.WriteFile(path+".lease", []byte(l.LeaseID), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {} // the signal ends the process
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ward.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCommittedWriteSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
	lease, err := os.ReadFile(path + ".lease")
	if err != nil {
		t.Fatalf("child wrote no lease: %v\n%s", err, out)
	}
	s := openTest(t, path)
	got, err := s.GetTask(t.Context(), "p", "t_1")
	if err != nil {
		t.Fatal(err)
	}
	checkPopulated(t, t.Context(), s, store.Lease{Task: got, LeaseID: string(lease)}, now)
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "m.db"))
	// A bare connection to the same file, to migrate with test migrations
	// into a schema of their own.
	db := s.w
	fsys := fstest.MapFS{
		"migrations/0001_one.sql": {Data: []byte(`CREATE TABLE m_one (a INTEGER);`)},
		"migrations/0002_two.sql": {Data: []byte(`CREATE TABLE m_two (b INTEGER); INSERT INTO m_two VALUES (1);`)},
	}
	// The store's own schema is version 1, so start from a clean record.
	if _, err := db.ExecContext(ctx, `DELETE FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	version := func() int {
		t.Helper()
		var v int
		if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	tableExists := func(name string) bool {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	logger := testLogger(t)

	n, err := migrate(ctx, db, fsys, logger)
	if err != nil || n != 2 || version() != 2 || !tableExists("m_one") || !tableExists("m_two") {
		t.Fatalf("first migrate = %d, %v; version %d", n, err, version())
	}
	if n, err := migrate(ctx, db, fsys, logger); err != nil || n != 0 {
		t.Fatalf("second migrate = %d, %v; want nothing to do", n, err)
	}
	fsys["migrations/0003_three.sql"] = &fstest.MapFile{Data: []byte(`ALTER TABLE m_one ADD COLUMN c TEXT;`)}
	if n, err := migrate(ctx, db, fsys, logger); err != nil || n != 1 || version() != 3 {
		t.Fatalf("migrate with a new file = %d, %v; version %d", n, err, version())
	}

	// A failing migration changes nothing, not even its own first statement.
	broken := fstest.MapFS{}
	for k, v := range fsys {
		broken[k] = v
	}
	broken["migrations/0004_broken.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE m_four (a INTEGER); SELECT nope FROM nowhere;`)}
	broken["migrations/0005_after.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE m_five (a INTEGER);`)}
	if _, err := migrate(ctx, db, broken, logger); err == nil || !strings.Contains(err.Error(), "0004_broken.sql") {
		t.Fatalf("broken migration: err = %v, want one naming the file", err)
	}
	if version() != 3 || tableExists("m_four") || tableExists("m_five") {
		t.Fatalf("after a failed migration: version %d, m_four %t, m_five %t", version(), tableExists("m_four"), tableExists("m_five"))
	}

	// A database newer than the binary is refused.
	old := fstest.MapFS{"migrations/0001_one.sql": fsys["migrations/0001_one.sql"]}
	if _, err := migrate(ctx, db, old, logger); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("older binary: err = %v, want a 'newer' error", err)
	}

	for name, bad := range map[string]fstest.MapFS{
		"bad name": {"migrations/1_one.sql": {Data: []byte(`SELECT 1;`)}},
		"gap":      {"migrations/0001_one.sql": {Data: []byte(`SELECT 1;`)}, "migrations/0003_three.sql": {Data: []byte(`SELECT 1;`)}},
		"repeat":   {"migrations/0001_one.sql": {Data: []byte(`SELECT 1;`)}, "migrations/0001_uno.sql": {Data: []byte(`SELECT 1;`)}},
		"no start": {"migrations/0002_two.sql": {Data: []byte(`SELECT 1;`)}},
	} {
		if _, err := loadMigrations(bad); err == nil {
			t.Errorf("loadMigrations(%s) succeeded, want an error", name)
		}
	}
	if ms, err := loadMigrations(migrationsFS); err != nil || len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("embedded migrations: %d, %v", len(ms), err)
	}
}

func TestOpenNewerDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ward.db")
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), path, nil)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer ward succeeded")
	}
	if !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), "999") {
		t.Fatalf("error %q should say the database (999) is newer", err)
	}
}

// TestQueryPlans pins the indexes the hot and the listing queries use, so a
// schema or query change cannot silently turn them into table scans.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "ward.db"))
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"lease scan", leaseScanSQL + leaseScanOrder, []string{"COVERING INDEX tasks_queued (priority=? AND run_at>? AND run_at<?)"}},
		{"lease scan excluding", mustExcluding(), []string{"COVERING INDEX tasks_queued"}},
		{"function limits", `SELECT f.project, f.name, f.max_concurrency,
			(SELECT count(*) FROM tasks t WHERE t.status = 'running' AND t.project = f.project AND t.function = f.name)
			FROM functions f INDEXED BY functions_limited WHERE f.max_concurrency > 0`,
			[]string{"COVERING INDEX functions_limited", "COVERING INDEX tasks_running (project=? AND function=?)"}},
		{"lease", leaseSQL(2), []string{"tasks USING INTEGER PRIMARY KEY", "task_bodies USING INTEGER PRIMARY KEY"}},
		{"complete", completeSQL(2), []string{"tasks USING INDEX sqlite_autoindex_tasks_1 (id=?)"}},
		{"heartbeat", heartbeatSQL(2), []string{"tasks USING INDEX sqlite_autoindex_tasks_1 (id=?)"}},
		{"next run", nextRunAtSQL, []string{"COVERING INDEX tasks_queued (priority=?)"}},
		{"list", listQuery("", "", true), []string{"INDEX tasks_project (project=? AND seq<?)"}},
		{"list function", listQuery("f", "", false), []string{"INDEX tasks_project_function (project=? AND function=?)"}},
		{"list queued", listQuery("", ward.StatusQueued, true), []string{"INDEX tasks_project (project=? AND seq<?)"}},
		{"list succeeded", listQuery("", ward.StatusSucceeded, false), []string{"INDEX tasks_project (project=?)"}},
		{"list failed", listQuery("", ward.StatusFailed, true), []string{"INDEX tasks_project_failed (project=? AND seq<?)"}},
		{"list cancelled", listQuery("", ward.StatusCancelled, false), []string{"INDEX tasks_project_cancelled (project=?)"}},
		{"list function running", listQuery("f", ward.StatusRunning, true), []string{"INDEX tasks_"}},
		{"expire", expireFailSQL, []string{"INDEX tasks_running"}},
		{"expire requeue", expireRequeueSQL, []string{"INDEX tasks_running"}},
		{"requeue runner", requeueRunnerSQL, []string{"INDEX tasks_running"}},
	} {
		plan := explain(t, s, tc.query)
		for _, w := range tc.want {
			if !strings.Contains(plan, w) {
				t.Errorf("%s: plan lacks %q:\n%s", tc.name, w, plan)
			}
		}
		if strings.Contains(plan, "SCAN tasks\n") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s: plan scans the table or sorts:\n%s", tc.name, plan)
		}
	}
}

func listQuery(function string, status ward.Status, cursor bool) string {
	var before int64
	if cursor {
		before = 1
	}
	q, _ := listSQL(&store.ListTasksParams{Project: "p", Function: function, Status: status}, before, 10)
	return q
}

func mustExcluding() string {
	q, _ := scanExcluding(map[fnKey]*fnSlots{{"p", "f"}: {limit: 1, running: 1}})
	return q
}

func explain(t *testing.T, s *Store, q string) string {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, make([]any, strings.Count(q, "?"))...)
	if err != nil {
		t.Fatalf("explain %q: %v", q, err)
	}
	defer rows.Close()
	var b bytes.Buffer
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
