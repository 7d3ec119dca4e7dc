package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// stmts are the hot-path write statements, prepared once on the write
// connection and bound to each transaction with tx.StmtContext, which reuses
// the prepared statement because there is only one write connection.
//
// Batch statements carry many rows each; batch[k][i] is statement k for
// 1<<i rows, so a batch of n rows runs as at most log2(n)+n/maxChunk
// statements and no SQL is parsed on the hot path.
type stmts struct {
	idemLookup, idemPut    *sql.Stmt
	leaseLimits, leaseScan *sql.Stmt
	batch                  [numBatchKinds][]*sql.Stmt
	all                    []*sql.Stmt
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
	numBatchKinds
)

// maxChunkLog2 sets maxChunk, the most rows one multi-row statement
// carries: 256 rows × 17 parameters stays well under SQLite's limit.
const (
	maxChunkLog2 = 8
	maxChunk     = 1 << maxChunkLog2
)

// leaseScanSQL selects due queued tasks of one priority in lease order,
// after a (run_at, seq) cursor, that fit a memory budget; scanExcluding
// appends a filter on (project, function) pairs to it.
const leaseScanSQL = `SELECT seq, run_at, memory_mb, project, function FROM tasks INDEXED BY tasks_queued
	WHERE status = 'queued' AND priority = ? AND run_at <= ? AND memory_mb <= ? AND (run_at, seq) > (?, ?)`

const leaseScanOrder = ` ORDER BY run_at, seq LIMIT ?`

func prepare(ctx context.Context, db *sql.DB) (*stmts, error) {
	s := &stmts{}
	add := func(q string) (*sql.Stmt, error) {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("prepare %.60q…: %w", q, err)
		}
		s.all = append(s.all, st)
		return st, nil
	}
	for _, q := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.idemLookup, `SELECT ` + prefixed("t.", taskCols) + `, k.created_at
			FROM idempotency_keys k JOIN tasks t ON t.id = k.task_id WHERE k.project = ? AND k.key = ?`},
		{&s.idemPut, `INSERT INTO idempotency_keys (project, key, task_id, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project, key) DO UPDATE SET task_id = excluded.task_id, created_at = excluded.created_at`},
		{&s.leaseLimits, `SELECT f.project, f.name, f.max_concurrency,
			(SELECT count(*) FROM tasks t WHERE t.status = 'running' AND t.project = f.project AND t.function = f.name)
			FROM functions f INDEXED BY functions_limited WHERE f.max_concurrency > 0`},
		{&s.leaseScan, leaseScanSQL + leaseScanOrder},
	} {
		st, err := add(q.sql)
		if err != nil {
			s.close()
			return nil, err
		}
		*q.dst = st
	}
	builders := [numBatchKinds]func(n int) string{
		batchInsertTasks:  insertTasksSQL,
		batchPutBodies:    putBodiesSQL,
		batchDeleteBodies: deleteBodiesSQL,
		batchLease:        leaseSQL,
		batchComplete:     completeSQL,
		batchHeartbeat:    heartbeatSQL,
	}
	for k, build := range builders {
		for i := 0; i <= maxChunkLog2; i++ {
			st, err := add(build(1 << i))
			if err != nil {
				s.close()
				return nil, err
			}
			s.batch[k] = append(s.batch[k], st)
		}
	}
	return s, nil
}

func (s *stmts) close() error {
	var errs []error
	for _, st := range s.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// pieces calls fn for consecutive ranges [lo, hi) covering [0, n), each a
// power of two long and at most maxChunk, with the statement of kind k for
// that many rows bound to tx.
func (s *Store) pieces(ctx context.Context, tx *sql.Tx, k batchKind, n int, fn func(st *sql.Stmt, lo, hi int) error) error {
	for lo := 0; lo < n; {
		size := min(maxChunk, 1<<(bits.Len(uint(n-lo))-1))
		st := tx.StmtContext(ctx, s.st.batch[k][bits.TrailingZeros(uint(size))])
		if err := fn(st, lo, lo+size); err != nil {
			return err
		}
		lo += size
	}
	return nil
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

// insertTasksSQL inserts n tasks, each given as 17 values in the column
// order below; a task whose ID exists is skipped (and the caller, seeing
// fewer rows inserted, fails the batch).
func insertTasksSQL(n int) string {
	return `INSERT INTO tasks (seq, id, project, function, code_digest, priority, max_attempts,
		timeout_s, memory_mb, backoff_s, created_at, run_at, labels, parent_id, payload_size, submitted_by, status)
		VALUES ` + placeholders(n, 17) + ` ON CONFLICT (id) DO NOTHING`
}

// putBodiesSQL writes n bodies given as (id, data) pairs.
func putBodiesSQL(n int) string {
	return `INSERT INTO task_bodies (id, data) VALUES ` + placeholders(n, 2) + `
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
		UPDATE tasks SET status = 'running', attempts = attempts + 1, started_at = ?, runner_id = ?,
			lease_expires_at = ?, lease_id = l.lease_id
		FROM l WHERE tasks.seq = l.seq AND tasks.status = 'queued'
		RETURNING ` + prefixed("tasks.", taskCols) + `, tasks.seq, (SELECT data FROM task_bodies WHERE id = tasks.seq * 4)`
}

// completeSQL applies n completions given as (id, lease, status,
// finished_at, run_at, error code, error message, exit code, peak memory,
// cpu ms, duration ms, platform try increment) tuples, to tasks running
// under that lease; it returns the ID, seq and attempts of each task changed.
func completeSQL(n int) string {
	return `WITH c (id, lease, st, fin, run, ec, em, ex, pk, cpu, dur, inc) AS (VALUES ` + placeholders(n, 12) + `)
		UPDATE tasks SET status = c.st,
			finished_at = CASE WHEN c.st = 'queued' THEN NULL ELSE c.fin END,
			run_at = CASE WHEN c.st = 'queued' THEN c.run ELSE tasks.run_at END,
			started_at = CASE WHEN c.st = 'queued' THEN NULL ELSE tasks.started_at END,
			error_code = c.ec, error_message = c.em, exit_code = c.ex,
			usage_peak_memory = c.pk, usage_cpu_ms = c.cpu, usage_duration_ms = c.dur,
			platform_tries = tasks.platform_tries + c.inc,
			lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		FROM c WHERE tasks.id = c.id AND tasks.status = 'running' AND tasks.lease_id = c.lease
		RETURNING tasks.id, tasks.seq, tasks.attempts`
}

// heartbeatSQL extends n leases given as (task ID, lease ID) pairs,
// followed by the new expiry; it returns the pairs still held.
func heartbeatSQL(n int) string {
	return `WITH h (id, lease) AS (VALUES ` + placeholders(n, 2) + `)
		UPDATE tasks SET lease_expires_at = ?
		FROM h WHERE tasks.id = h.id AND tasks.status = 'running' AND tasks.lease_id = h.lease
		RETURNING tasks.id, tasks.lease_id`
}
