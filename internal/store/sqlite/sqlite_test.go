package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
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
				{ID: "t_2", Project: "p", Function: "f", RunAt: now, TimeoutS: 30, MemoryMB: 64, MaxAttempts: 1, Payload: []byte("two"),
					Input: &ward.PayloadInfo{Fields: []string{"/a"}, Tokenized: []string{"/a"}}},
			}, Tokens: []store.TokenValue{{Project: "p", Token: "tok_a", Value: []byte("original")}}})
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
	if code, err := s.GetCode(ctx, "p", f.CodeDigest); err != nil || len(code) == 0 {
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
	if rec, err := s.GetTask(ctx, "p", "t_2"); err != nil || rec.Input == nil || len(rec.Input.Tokenized) != 1 || rec.Input.Tokenized[0] != "/a" {
		t.Fatalf("input info after reopen = %+v, %v", rec.Input, err)
	}
	if m, err := s.GetTokens(ctx, "p", []string{"tok_a"}); err != nil || string(m["tok_a"]) != "original" {
		t.Fatalf("token vault after reopen = %q, %v", m, err)
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
	// The store's own migrations are recorded, so start from a clean record.
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
		if _, err := store.LoadMigrations(bad); err == nil {
			t.Errorf("store.LoadMigrations(%s) succeeded, want an error", name)
		}
	}
	if ms, err := store.LoadMigrations(migrationsFS); err != nil || len(ms) == 0 || ms[0].Version != 1 {
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
		{"lease scan excluding", mustExcluding(0), []string{"COVERING INDEX tasks_queued"}},
		{"lease scan, 1 runtime", leaseScanRuntimesSQL(1), []string{"COVERING INDEX tasks_queued (priority=? AND run_at>? AND run_at<?)"}},
		{"lease scan, 2 runtimes", leaseScanRuntimesSQL(2), []string{"COVERING INDEX tasks_queued (priority=? AND run_at>? AND run_at<?)"}},
		{"lease scan, 8 runtimes", leaseScanRuntimesSQL(8), []string{"COVERING INDEX tasks_queued (priority=? AND run_at>? AND run_at<?)"}},
		{"lease scan excluding, runtimes", mustExcluding(2), []string{"COVERING INDEX tasks_queued (priority=? AND run_at>? AND run_at<?)"}},
		{"lease limits", leaseLimitsSQL,
			[]string{"COVERING INDEX functions_limited", "COVERING INDEX tasks_running (project=? AND function=?)",
				"COVERING INDEX projects_running_limited", "COVERING INDEX tasks_running (project=?)"}},
		{"lease scan excluding projects", mustExcludingProjects(), []string{"COVERING INDEX tasks_queued (priority=? AND run_at>? AND run_at<?)"}},
		{"lease", leaseSQL(2), []string{"tasks USING INTEGER PRIMARY KEY", "task_bodies USING INTEGER PRIMARY KEY"}},
		{"complete", completeSQL(2), []string{"tasks USING INDEX sqlite_autoindex_tasks_1 (id=?)"}},
		{"heartbeat", heartbeatSQL(2), []string{"tasks USING INDEX sqlite_autoindex_tasks_1 (id=?)"}},
		{"next run", nextRunAtQueries[0], []string{"COVERING INDEX tasks_queued (priority=?)"}},
		{"next run, 1 runtime", nextRunAtQueries[1], []string{"COVERING INDEX tasks_queued (priority=?)"}},
		{"next run, 8 runtimes", nextRunAtQueries[4], []string{"COVERING INDEX tasks_queued (priority=?)"}},
		{"list", listQuery("", "", true), []string{"INDEX tasks_project (project=? AND seq<?)"}},
		{"list function", listQuery("f", "", false), []string{"INDEX tasks_project_function (project=? AND function=?)"}},
		{"list queued", listQuery("", ward.StatusQueued, true), []string{"INDEX tasks_project_queued (project=? AND rowid<?)"}},
		{"list succeeded", listQuery("", ward.StatusSucceeded, false), []string{"INDEX tasks_project (project=?)"}},
		{"list failed", listQuery("", ward.StatusFailed, true), []string{"INDEX tasks_project_failed (project=? AND seq<?)"}},
		{"list cancelled", listQuery("", ward.StatusCancelled, false), []string{"INDEX tasks_project_cancelled (project=?)"}},
		{"list function running", listQuery("f", ward.StatusRunning, true), []string{"INDEX tasks_"}},
		{"expire", expireFailSQL, []string{"INDEX tasks_running"}},
		{"expire requeue", expireRequeueSQL, []string{"INDEX tasks_running"}},
		{"requeue runner", requeueRunnerSQL, []string{"INDEX tasks_running"}},
		{"purge bodies", purgeAll[0], []string{"INDEX tasks_project_finished (project=? AND finished_at>? AND finished_at<?)",
			"task_bodies USING INTEGER PRIMARY KEY"}},
		{"purge keys", purgeAll[1], []string{"INDEX tasks_project_finished (project=?", "INDEX idempotency_keys_task (task_id=?)"}},
		{"purge tasks", purgeAll[2], []string{"INDEX tasks_project_finished (project=?", "tasks USING INTEGER PRIMARY KEY"}},
		{"purge function tasks", purgeFunction[2], []string{"INDEX tasks_project_finished (project=?"}},
		{"delete project bodies", deleteProjectSQL[0], []string{"INDEX tasks_project (project=?)", "task_bodies USING INTEGER PRIMARY KEY"}},
		{"delete project tasks", deleteProjectSQL[2], []string{"INDEX tasks_project (project=?)"}},
		{"delete project tokens", deleteProjectSQL[3], []string{"token_vault USING PRIMARY KEY (project=?)"}},
		{"get tokens", getTokensSQL(3), []string{"token_vault USING PRIMARY KEY (project=? AND token=?)"}},
		{"purge all tokens", purgeAllTokensSQL, []string{"token_vault USING PRIMARY KEY (project=?)"}},
	} {
		plan := explain(t, s, tc.query)
		for _, w := range tc.want {
			if !strings.Contains(plan, w) {
				t.Errorf("%s: plan lacks %q:\n%s", tc.name, w, plan)
			}
		}
		if strings.Contains(plan, "SCAN tasks\n") || strings.Contains(plan, "SCAN token_vault\n") || strings.Contains(plan, "TEMP B-TREE") {
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

func mustExcluding(runtimes int) string {
	q, _ := scanExcluding(map[fnKey]*fnSlots{{"p", "f"}: {limit: 1, running: 1}}, runtimes)
	return q
}

// mustExcludingProjects is the lease scan that skips a function and two
// projects at their limits.
func mustExcludingProjects() string {
	q, _ := scanExcluding(map[fnKey]*fnSlots{{"p", "f"}: {limit: 1, running: 1},
		{"p", ""}: {limit: 2, running: 2}, {"q", ""}: {limit: 1, running: 3}}, 0)
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

// TestTransformedValues stores, under one digest, different bytes in two
// projects, as the sealing adapter does (it hands the store each project's
// copy encrypted under that project's key, with the plaintext's size): the
// store does not hash the code, each project reads back its own blob, a
// blob is stored once, and sizes are the given ones.
func TestTransformedValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "ward.db"))
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, pf := range [][2]string{{"p", "a"}, {"p", "a2"}, {"q", "b"}} {
		if _, err := s.CreateProject(ctx, &store.CreateProjectParams{Name: pf[0], Now: now}); err != nil && ward.CodeOf(err) != ward.CodeAlreadyExists {
			t.Fatal(err)
		}
		if _, err := s.PutFunction(ctx, &store.PutFunctionParams{Project: pf[0], Name: pf[1], Spec: ward.DefaultSpec(), Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	module := []byte("the module")
	digest := ward.Digest(module)
	put := func(project, fn string, code []byte) ward.Function {
		t.Helper()
		f, err := s.PutCode(ctx, &store.PutCodeParams{Project: project, Function: fn, Digest: digest, Code: code, Size: len(module), Now: now})
		if err != nil {
			t.Fatalf("PutCode(%s/%s): %v", project, fn, err)
		}
		if f.CodeDigest != digest || f.CodeSize != int64(len(module)) {
			t.Fatalf("PutCode(%s/%s) = digest %q size %d, want %q, %d (the given size)", project, fn, f.CodeDigest, f.CodeSize, digest, len(module))
		}
		return f
	}
	blobs := map[string][]byte{"p": []byte("sealed for p"), "q": []byte("sealed for q, longer")}
	put("p", "a", blobs["p"])
	put("q", "b", blobs["q"])
	put("p", "a2", []byte("sealed for p again")) // p holds the digest: its first blob stays
	for project, want := range blobs {
		b, err := s.GetCode(ctx, project, digest)
		if err != nil || !bytes.Equal(b, want) {
			t.Fatalf("GetCode(%s) = %q, %v; want %q (the project's own blob)", project, b, err, want)
		}
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM code_blobs`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("code_blobs rows = %d, %v; want 2", n, err)
	}
	if f, err := s.GetFunction(ctx, "q", "b"); err != nil || f.CodeSize != int64(len(module)) {
		t.Fatalf("GetFunction(q, b) = %+v, %v; want code size %d", f, err, len(module))
	}
	_, err := s.PutCode(ctx, &store.PutCodeParams{Project: "p", Function: "a", Digest: digest, Code: module, Size: -1, Now: now})
	if ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Fatalf("PutCode(negative size) = %v, want invalid_argument", err)
	}

	// A secret's size is likewise the given one when its value is stored
	// transformed, and len(Value) otherwise.
	for _, tc := range []struct{ value, size, want int }{{14, 5, 5}, {14, 0, 14}} {
		res, err := s.PutSecret(ctx, &store.PutSecretParams{Project: "p", Name: "k", Value: make([]byte, tc.value), Size: tc.size, Now: now})
		if err != nil || res.Secret.Size != tc.want {
			t.Fatalf("PutSecret(%d bytes, Size %d) = %+v, %v; want size %d", tc.value, tc.size, res, err, tc.want)
		}
		if secs, err := s.ListSecrets(ctx, "p", ""); err != nil || len(secs) != 1 || secs[0].Size != tc.want {
			t.Fatalf("ListSecrets = %+v, %v; want size %d", secs, err, tc.want)
		}
	}
	_, err = s.PutSecret(ctx, &store.PutSecretParams{Project: "p", Name: "k", Value: []byte("v"), Size: -1, Now: now})
	if ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Fatalf("PutSecret(negative size) = %v, want invalid_argument", err)
	}
}

// TestMigrateCodeBlobsPerProject upgrades a database of schema 1, whose code
// blobs are shared by digest, and checks what migrations 2 and 3 make of
// it: each project gets its own copy of every blob its functions or tasks
// point at, a blob nothing points at is dropped, projects get the default
// retention, tasks are not sealed, have no input info and are wasm ones,
// and the token vault is empty.
func TestMigrateCodeBlobsPerProject(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ward.db")
	if err := ensureFile(path, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v1, err := fs.ReadFile(migrationsFS, "migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := migrate(ctx, db, fstest.MapFS{"migrations/0001_init.sql": {Data: v1}}, testLogger(t)); err != nil || n != 1 {
		t.Fatalf("migrate to schema 1 = %d, %v", n, err)
	}
	fn, task, shared, orphan := []byte("function code"), []byte("older code a task ran"), []byte("shared code"), []byte("orphan")
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO projects (name, created_at) VALUES ('p', 1), ('q', 2)`, nil},
		{`INSERT INTO code_blobs (digest, size, data, created_at) VALUES (?, 1, ?, 1), (?, 1, ?, 1), (?, 1, ?, 1), (?, 1, ?, 1)`,
			[]any{ward.Digest(fn), fn, ward.Digest(task), task, ward.Digest(shared), shared, ward.Digest(orphan), orphan}},
		{`INSERT INTO functions (project, name, spec, max_concurrency, code_digest, code_version, code_size, created_at, updated_at)
			VALUES ('p', 'f', '{}', 0, ?, 2, 1, 1, 1), ('q', 'g', '{}', 0, ?, 1, 1, 1, 1), ('q', 'none', '{}', 0, '', 0, 0, 1, 1)`,
			[]any{ward.Digest(fn), ward.Digest(shared)}},
		{`INSERT INTO tasks (seq, id, project, function, code_digest, status, priority, max_attempts, timeout_s, memory_mb,
			backoff_s, created_at, run_at, payload_size) VALUES
			(1, 't_1', 'p', 'f', ?, 'queued', 0, 1, 30, 64, 5, 1, 1, 0),
			(2, 't_2', 'p', 'f', ?, 'queued', 0, 1, 30, 64, 5, 1, 1, 0)`,
			[]any{ward.Digest(task), ward.Digest(shared)}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%.40s…: %v", q.sql, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, path)
	for _, c := range []struct {
		project string
		code    []byte
		want    bool
	}{
		{"p", fn, true}, {"p", task, true}, {"p", shared, true},
		{"q", shared, true}, {"q", fn, false}, {"q", task, false},
		{"p", orphan, false}, {"q", orphan, false},
	} {
		b, err := s.GetCode(ctx, c.project, ward.Digest(c.code))
		switch {
		case c.want && (err != nil || !bytes.Equal(b, c.code)):
			t.Errorf("GetCode(%s, %q) after migration = %q, %v; want the blob", c.project, c.code, b, err)
		case !c.want && ward.CodeOf(err) != ward.CodeNotFound:
			t.Errorf("GetCode(%s, %q) after migration = %q, %v; want not_found", c.project, c.code, b, err)
		}
	}
	p, err := s.GetProject(ctx, "q")
	if err != nil || p.RetentionDays != ward.DefaultRetentionDays {
		t.Fatalf("GetProject after migration = %+v, %v; want retention %d", p, err, ward.DefaultRetentionDays)
	}
	rec, err := s.GetTask(ctx, "p", "t_1")
	if err != nil || rec.Sealed || rec.Input != nil || rec.Runtime != ward.RuntimeWasm {
		t.Fatalf("GetTask after migration = %+v, %v; want not sealed, no input info, runtime wasm", rec, err)
	}
	// Migration 6: the tasks from before are wasm ones, leased as such.
	if at, ok, err := s.NextRunAt(ctx, ward.RuntimeWasm); err != nil || !ok || !at.Equal(fromMicros(1)) {
		t.Fatalf("NextRunAt(wasm) after migration = %v, %t, %v; want the old tasks' run_at", at, ok, err)
	}
	if _, ok, err := s.NextRunAt(ctx, ward.RuntimeOCI); err != nil || ok {
		t.Fatalf("NextRunAt(oci) after migration = %t, %v; want none", ok, err)
	}
	// Migration 3's vault is there and empty.
	if m, err := s.GetTokens(ctx, "p", []string{"tok_1"}); err != nil || len(m) != 0 {
		t.Fatalf("GetTokens after migration = %v, %v; want none", m, err)
	}
}

// TestDeleteLeavesNoRows checks, below the Store interface, that deleting a
// project and purging tasks leave no rows behind: no body without its task,
// no idempotency key pointing at a deleted task, nothing of the project.
func TestDeleteLeavesNoRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), "ward.db"))
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	l := populate(t, ctx, s, now) // project p: t_1 running (key k1), t_2 queued
	if _, err := s.PutSecret(ctx, &store.PutSecretParams{Project: "p", Function: "f", Name: "s", Value: []byte("v"), Now: now}); err != nil {
		t.Fatal(err)
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := s.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	orphans := func() int {
		t.Helper()
		return count(`SELECT count(*) FROM task_bodies b WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.seq = b.id / 4)`) +
			count(`SELECT count(*) FROM idempotency_keys k WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = k.task_id)`)
	}

	// Purge: t_1, finished with a result and a log, goes with its key.
	if errs, err := s.CompleteTasks(ctx, &store.CompleteParams{Completions: []store.Completion{{TaskID: l.Task.ID, LeaseID: l.LeaseID,
		Status: ward.StatusSucceeded, Result: []byte("r"), Log: []byte("l"), Now: now}}}); err != nil || errs[0] != nil {
		t.Fatalf("complete: %v, %v", err, errs)
	}
	if n := count(`SELECT count(*) FROM idempotency_keys`); n != 1 {
		t.Fatalf("idempotency keys before purging = %d, want 1", n)
	}
	if n, err := s.PurgeTasks(ctx, &store.PurgeParams{Project: "p", FinishedBefore: now.Add(time.Second)}); err != nil || n != 1 {
		t.Fatalf("PurgeTasks = %d, %v; want 1", n, err)
	}
	if n := orphans(); n != 0 {
		t.Fatalf("%d orphaned bodies or keys after purging", n)
	}
	if n := count(`SELECT count(*) FROM idempotency_keys`); n != 0 {
		t.Fatalf("idempotency keys after purging = %d, want 0", n)
	}
	if n := count(`SELECT count(*) FROM task_bodies`); n != 1 {
		t.Fatalf("bodies after purging = %d, want t_2's payload", n)
	}

	// Delete: nothing of p is left in any table.
	if _, err := s.InsertTasks(ctx, &store.InsertTasksParams{Now: now, Tasks: []store.NewTask{
		{ID: "t_3", Project: "p", Function: "f", RunAt: now, TimeoutS: 30, MemoryMB: 64, MaxAttempts: 1, Payload: []byte("three"), IdempotencyKey: "k3"},
	}}); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM token_vault WHERE project = 'p'`); n != 1 {
		t.Fatalf("token vault entries before deleting = %d, want 1", n)
	}
	if err := s.DeleteProject(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"tokens", "functions", "code_blobs", "config", "secrets", "tasks", "idempotency_keys", "token_vault"} {
		if n := count(`SELECT count(*) FROM ` + table + ` WHERE project = 'p'`); n != 0 {
			t.Errorf("%d rows of p left in %s", n, table)
		}
	}
	if n := count(`SELECT count(*) FROM task_bodies`); n != 0 {
		t.Errorf("%d bodies left", n)
	}
	if n := count(`SELECT count(*) FROM projects`); n != 0 {
		t.Errorf("%d projects left", n)
	}
}

// TestMigrateProjectUsage upgrades a database of schema 8 holding task
// bodies and code and checks migration 9 counts them in the projects'
// stored bytes, which the store then keeps up to date.
func TestMigrateProjectUsage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ward.db")
	if err := ensureFile(path, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old := fstest.MapFS{}
	entries, err := fs.ReadDir(migrationsFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries[:8] {
		b, err := fs.ReadFile(migrationsFS, "migrations/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		old["migrations/"+e.Name()] = &fstest.MapFile{Data: b}
	}
	if n, err := migrate(ctx, db, old, testLogger(t)); err != nil || n != 8 {
		t.Fatalf("migrate to schema 8 = %d, %v", n, err)
	}
	for _, q := range []string{
		`INSERT INTO projects (name, created_at, retention_days) VALUES ('p', 0, 7), ('q', 0, 7), ('empty', 0, 7)`,
		`INSERT INTO tasks (seq, id, project, function, code_digest, status, priority, max_attempts, timeout_s, memory_mb,
			backoff_s, created_at, run_at, finished_at, payload_size) VALUES
			(1, 't_1', 'p', 'f', 'sha256:00', 'succeeded', 0, 1, 30, 64, 5, 1, 1, 0, 0),
			(2, 't_2', 'p', 'f', 'sha256:00', 'queued', 0, 1, 30, 64, 5, 1, 1, NULL, 0),
			(3, 't_3', 'q', 'f', 'sha256:00', 'queued', 0, 1, 30, 64, 5, 1, 1, NULL, 0)`,
		`INSERT INTO task_bodies (id, data) VALUES (4, x'0102'), (5, x'010203'), (6, x'01020304'), (8, x'0102030405'), (12, x'01')`,
		`INSERT INTO code_blobs (project, digest, size, data, created_at) VALUES ('p', 'sha256:aa', 1, x'010203040506', 1)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path)
	for project, want := range map[string]int64{"p": 2 + 3 + 4 + 5 + 6, "q": 1, "empty": 0} {
		p, err := s.GetProject(ctx, project)
		if err != nil || p.Usage.StoredBytes != want {
			t.Errorf("GetProject(%s) after migration: stored bytes %d, %v; want %d", project, p.Usage.StoredBytes, err, want)
		}
	}
	if n, err := s.PurgeTasks(ctx, &store.PurgeParams{Project: "p", FinishedBefore: time.Unix(1, 0)}); err != nil || n != 1 {
		t.Fatalf("PurgeTasks = %d, %v", n, err)
	}
	if p, err := s.GetProject(ctx, "p"); err != nil || p.Usage.StoredBytes != 5+6 {
		t.Errorf("after purging the counted task: stored bytes %d, %v; want %d", p.Usage.StoredBytes, err, 5+6)
	}
}
