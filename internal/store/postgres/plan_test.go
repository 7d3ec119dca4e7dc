package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/internal/store/postgres/pgtest"
)

// TestQueuePlans checks that the queue's hot statements read the queued
// index in order and stop early, on the statistics a table has when it grew
// quickly from empty: the case where the planner, left alone, reads every
// queued task and sorts them.
func TestQueuePlans(t *testing.T) {
	t.Parallel()
	s := openTest(t, pgtest.DSN(t))
	ctx := t.Context()
	for _, q := range []string{
		`ANALYZE tasks`, // as the table was when empty
		`INSERT INTO projects (name, created_at, retention_days) VALUES ('p', 0, 7)`,
		`INSERT INTO tasks (id, project, function, code_digest, priority, max_attempts, timeout_s, memory_mb, backoff_s,
			created_at, run_at, payload_size, status, runtime)
		SELECT 't_' || g, 'p', 'f', 'sha256:00', g % 3, 1, 30, 64, 5, g, g, 10, CASE WHEN g % 4 = 0 THEN 'succeeded' ELSE 'queued' END,
			CASE WHEN g % 5 = 0 THEN 'oci' ELSE 'wasm' END
		FROM generate_series(1, 20000) AS g`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	plan := func(t *testing.T, tx pgx.Tx, sql string, args ...any) string {
		rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, leasePlanSQL); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []any
	}{
		{"first scan", []any{int64(1 << 40), 4096, nil, int64(0), int64(0), []string{}, []string{}, 50, []string{}, []string{}}},
		{"scan after a cursor", []any{int64(1 << 40), 4096, 1, int64(300), int64(300), []string{"p"}, []string{"g"}, 50, []string{},
			[]string{}}},
		{"first scan of one runtime", []any{int64(1 << 40), 4096, nil, int64(0), int64(0), []string{}, []string{}, 50, []string{"oci"},
			[]string{}}},
		{"scan of two runtimes after a cursor", []any{int64(1 << 40), 4096, 1, int64(300), int64(300), []string{"p"}, []string{"g"}, 50,
			[]string{"oci", "wasm"}, []string{}}},
		{"scan excluding projects", []any{int64(1 << 40), 4096, 1, int64(300), int64(300), []string{}, []string{}, 50, []string{},
			[]string{"q", "r"}}},
	} {
		p := plan(t, tx, leaseScanSQL, tc.args...)
		if !strings.Contains(p, "Index Scan using tasks_queued on tasks") || strings.Contains(p, "Sort") || strings.Contains(p, "Bitmap") {
			t.Errorf("lease scan, %s: not an ordered scan of tasks_queued:\n%s", tc.name, p)
		}
	}
	for _, runtimes := range [][]string{{}, {"oci"}, {"oci", "wasm"}} {
		if p := plan(t, tx, nextRunAtSQL, runtimes); strings.Contains(p, "Seq Scan on tasks") || strings.Contains(p, "Bitmap") ||
			strings.Contains(p, "Sort") || !strings.Contains(p, "tasks_queued") || !strings.Contains(p, "Limit") {
			t.Errorf("next run of runtimes %q: not a probe of tasks_queued per priority:\n%s", runtimes, p)
		}
	}
}
