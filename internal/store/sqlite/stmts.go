package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
)

// stmts are the hot-path write statements, prepared on the write connection
// and bound to each transaction with tx.StmtContext, which reuses the
// prepared statement because there is only one write connection.
//
// Batch statements carry many rows each: batch[k][i] is statement k for 1<<i
// rows, so a batch of n rows runs as at most log2(n)+n/maxChunk statements
// and no SQL is parsed on the hot path. They are prepared on first use, by
// prepareBatch, outside any transaction (the write connection is busy inside
// one).
type stmts struct {
	idemLookup, idemPut    *sql.Stmt
	leaseLimits, leaseScan *sql.Stmt
	projectExists, maxSeq  *sql.Stmt // the submit path's lookups

	mu    sync.Mutex
	batch [numBatchKinds][maxChunkLog2 + 1]*sql.Stmt
	all   []*sql.Stmt
}

// batchKind names a multi-row statement.
type batchKind int

// Multi-row statements.
const (
	batchInsertTasks  batchKind = iota // insertTasksSQL
	batchPutBodies                     // putBodiesSQL
	batchDeleteBodies                  // deleteBodiesSQL
	batchLease                         // leaseSQL
	batchComplete                      // completeSQL
	batchHeartbeat                     // heartbeatSQL
	batchPutTokens                     // putTokensSQL
	batchLeaseScan                     // leaseScanRuntimesSQL: its "rows" are runtimes
	numBatchKinds
)

// The multi-row statements use OR FAIL: a constraint error then stops the
// statement without undoing its earlier rows, so SQLite needs no statement
// journal; every caller rolls the whole transaction back on any error.

// maxChunkLog2 sets maxChunk, the most rows one multi-row statement
// carries: 256 rows × 20 parameters stays well under SQLite's limit.
const (
	maxChunkLog2 = 8
	maxChunk     = 1 << maxChunkLog2
)

// leaseScanSQL selects due queued tasks of one priority in lease order,
// after a (run_at, seq) cursor, that fit a memory budget, of every
// runtime; leaseScanRuntimesSQL narrows it to some runtimes, and
// scanExcluding appends filters on (project, function) pairs and on
// projects.
const leaseScanSQL = `SELECT seq, run_at, memory_mb, project, function FROM tasks INDEXED BY tasks_queued
	WHERE status = 'queued' AND priority = ? AND run_at <= ? AND memory_mb <= ? AND (run_at, seq) > (?, ?)`

const leaseScanOrder = ` ORDER BY run_at, seq LIMIT ?`

// leaseLimitsSQL reads, for every lease, the functions with a
// max_concurrency and the projects with a max_running (as rows of
// an empty function), each with its running count. Both come from partial
// indexes, empty when no limit is set.
const leaseLimitsSQL = `SELECT f.project, f.name, f.max_concurrency,
	(SELECT count(*) FROM tasks t WHERE t.status = 'running' AND t.project = f.project AND t.function = f.name)
	FROM functions f INDEXED BY functions_limited WHERE f.max_concurrency > 0
	UNION ALL
	SELECT p.name, '', p.max_running,
	(SELECT count(*) FROM tasks t INDEXED BY tasks_running WHERE t.status = 'running' AND t.project = p.name)
	FROM projects p INDEXED BY projects_running_limited WHERE p.max_running > 0`

// runtimesIn is the filter on n runtimes (" AND runtime IN (?, …)"), or ""
// for n = 0. The runtime is a column of tasks_queued, so the filter is
// applied within the index scan. Callers pass n a power of two
// (padRuntimes), so that a few prepared statements serve every list.
func runtimesIn(n int) string {
	if n == 0 {
		return ""
	}
	return ` AND runtime IN (` + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
}

// leaseScanRuntimesSQL is leaseScanSQL for tasks of n runtimes, given
// after the cursor; the scan's limit follows them.
func leaseScanRuntimesSQL(n int) string {
	return leaseScanSQL + runtimesIn(n) + leaseScanOrder
}

// padRuntimes returns the runtimes of a lease or probe as arguments,
// padded to a power of two by repeating the last (a repeat matches
// nothing more); nil for none.
func padRuntimes(names []string) []any {
	if len(names) == 0 {
		return nil
	}
	n := 1 << bits.Len(uint(len(names)-1))
	args := make([]any, n)
	for i := range args {
		args[i] = names[min(i, len(names)-1)]
	}
	return args
}

func prepare(ctx context.Context, db *sql.DB) (*stmts, error) {
	s := &stmts{}
	for _, q := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.idemLookup, `SELECT ` + prefixed("t.", taskCols) + `, k.created_at
			FROM idempotency_keys k JOIN tasks t ON t.id = k.task_id WHERE k.project = ? AND k.key = ?`},
		{&s.idemPut, `INSERT INTO idempotency_keys (project, key, task_id, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project, key) DO UPDATE SET task_id = excluded.task_id, created_at = excluded.created_at`},
		{&s.leaseLimits, leaseLimitsSQL},
		{&s.leaseScan, leaseScanSQL + leaseScanOrder},
		{&s.projectExists, `SELECT 1 FROM projects WHERE name = ?`},
		{&s.maxSeq, `SELECT coalesce(max(seq), 0) FROM tasks`},
	} {
		st, err := db.PrepareContext(ctx, q.sql)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare %.60q…: %w", q.sql, err)
		}
		*q.dst = st
		s.all = append(s.all, st)
	}
	return s, nil
}

// batchBuilders build the SQL of each batch statement for n rows.
var batchBuilders = [numBatchKinds]func(n int) string{
	batchInsertTasks:  insertTasksSQL,
	batchPutBodies:    putBodiesSQL,
	batchDeleteBodies: deleteBodiesSQL,
	batchLease:        leaseSQL,
	batchComplete:     completeSQL,
	batchHeartbeat:    heartbeatSQL,
	batchPutTokens:    putTokensSQL,
	batchLeaseScan:    leaseScanRuntimesSQL,
}

// prepareBatch makes sure the statements of kind k for every piece size up
// to n rows are prepared. It must not be called inside a write transaction.
func (s *Store) prepareBatch(ctx context.Context, k batchKind, n int) error {
	for i := 0; i <= maxChunkLog2 && 1<<i <= n; i++ {
		s.st.mu.Lock()
		ok := s.st.batch[k][i] != nil
		s.st.mu.Unlock()
		if ok {
			continue
		}
		// Not under mu: preparing waits for the write connection, and a
		// transaction holding it may need mu to bind a statement.
		st, err := s.w.PrepareContext(ctx, batchBuilders[k](1<<i))
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		s.st.mu.Lock()
		if s.st.batch[k][i] == nil {
			s.st.batch[k][i] = st
			s.st.all = append(s.st.all, st)
			st = nil
		}
		s.st.mu.Unlock()
		if st != nil {
			st.Close()
		}
	}
	return nil
}

func (s *stmts) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, st := range s.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// pieces calls fn for consecutive ranges [lo, hi) covering [0, n), each a
// power of two long and at most maxChunk, with the statement of kind k for
// that many rows bound to tx. prepareBatch(k, n) must have run before.
func (s *Store) pieces(ctx context.Context, tx *sql.Tx, k batchKind, n int, fn func(st *sql.Stmt, lo, hi int) error) error {
	for lo := 0; lo < n; {
		size := min(maxChunk, 1<<(bits.Len(uint(n-lo))-1))
		st, err := s.batchStmt(ctx, tx, k, size)
		if err != nil {
			return err
		}
		if err := fn(st, lo, lo+size); err != nil {
			return err
		}
		lo += size
	}
	return nil
}

// batchStmt returns the statement of kind k for n rows (a power of two,
// at most maxChunk) bound to tx; prepareBatch(k, n) must have run before.
func (s *Store) batchStmt(ctx context.Context, tx *sql.Tx, k batchKind, n int) (*sql.Stmt, error) {
	var prepared *sql.Stmt
	if n > 0 && n&(n-1) == 0 && n <= maxChunk {
		s.st.mu.Lock()
		prepared = s.st.batch[k][bits.TrailingZeros(uint(n))]
		s.st.mu.Unlock()
	}
	if prepared == nil {
		return nil, fmt.Errorf("sqlite: batch statement %d for %d rows not prepared", k, n)
	}
	return tx.StmtContext(ctx, prepared), nil
}

// placeholders returns "(?, ?), (?, ?)" for rows tuples of cols parameters.
func placeholders(rows, cols int) string {
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	var b strings.Builder
	b.Grow(rows * (len(tuple) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	return b.String()
}

// prefixed qualifies every column of a comma-separated list with prefix.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// insertTasksCols is the number of values insertTasksSQL takes per task.
const insertTasksCols = 20

// insertTasksSQL inserts n tasks, each given as insertTasksCols values in
// the column order below; a task whose ID exists is skipped (and the caller,
// seeing fewer rows inserted, fails the batch).
func insertTasksSQL(n int) string {
	return `INSERT OR FAIL INTO tasks (seq, id, project, function, code_digest, priority, max_attempts,
		timeout_s, memory_mb, backoff_s, created_at, run_at, labels, parent_id, payload_size, submitted_by, status, sealed,
		input_info, runtime)
		VALUES ` + placeholders(n, insertTasksCols) + ` ON CONFLICT (id) DO NOTHING`
}

// putTokensSQL upserts n token vault entries given as (project, token,
// value, created_at, updated_at) tuples: an existing entry gets the value and
// updated_at and keeps its created_at. Rows are applied in order, so of an
// entry given twice the last value stays.
func putTokensSQL(n int) string {
	return `INSERT OR FAIL INTO token_vault (project, token, value, created_at, updated_at) VALUES ` + placeholders(n, 5) + `
		ON CONFLICT (project, token) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
}

// putBodiesSQL writes n bodies given as (id, data) pairs.
func putBodiesSQL(n int) string {
	return `INSERT OR FAIL INTO task_bodies (id, data) VALUES ` + placeholders(n, 2) + `
		ON CONFLICT (id) DO UPDATE SET data = excluded.data`
}

// deleteBodiesSQL deletes n bodies by ID.
func deleteBodiesSQL(n int) string {
	return `DELETE FROM task_bodies WHERE id IN (` + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
}

// leaseSQL leases n queued tasks given as (seq, lease ID) pairs, followed by
// started_at, runner ID and lease expiry; it returns taskCols, seq and the
// payload of each.
func leaseSQL(n int) string {
	return `WITH l (seq, lease_id) AS (VALUES ` + placeholders(n, 2) + `)
		UPDATE OR FAIL tasks SET status = 'running', attempts = attempts + 1, started_at = ?, runner_id = ?,
			lease_expires_at = ?, lease_id = l.lease_id
		FROM l WHERE tasks.seq = l.seq AND tasks.status = 'queued'
		RETURNING ` + prefixed("tasks.", taskCols) + `, tasks.seq, (SELECT data FROM task_bodies WHERE id = tasks.seq * 4)`
}

// completeSQL applies n completions given as (id, lease, status,
// finished_at, run_at, error code, error message, exit code, peak memory,
// cpu ms, duration ms, platform try increment) tuples, to tasks running
// under that lease; it returns the ID, seq, attempts and project of each
// task changed.
func completeSQL(n int) string {
	return `WITH c (id, lease, st, fin, run, ec, em, ex, pk, cpu, dur, inc) AS (VALUES ` + placeholders(n, 12) + `)
		UPDATE OR FAIL tasks SET status = c.st,
			finished_at = CASE WHEN c.st = 'queued' THEN NULL ELSE c.fin END,
			run_at = CASE WHEN c.st = 'queued' THEN c.run ELSE tasks.run_at END,
			started_at = CASE WHEN c.st = 'queued' THEN NULL ELSE tasks.started_at END,
			error_code = c.ec, error_message = c.em, exit_code = c.ex,
			usage_peak_memory = c.pk, usage_cpu_ms = c.cpu, usage_duration_ms = c.dur,
			platform_tries = tasks.platform_tries + c.inc,
			lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		FROM c WHERE tasks.id = c.id AND tasks.status = 'running' AND tasks.lease_id = c.lease
		RETURNING tasks.id, tasks.seq, tasks.attempts, tasks.project`
}

// heartbeatSQL extends n leases given as (task ID, lease ID) pairs,
// followed by the new expiry; it returns the pairs still held.
func heartbeatSQL(n int) string {
	return `WITH h (id, lease) AS (VALUES ` + placeholders(n, 2) + `)
		UPDATE OR FAIL tasks SET lease_expires_at = ?
		FROM h WHERE tasks.id = h.id AND tasks.status = 'running' AND tasks.lease_id = h.lease
		RETURNING tasks.id, tasks.lease_id`
}
