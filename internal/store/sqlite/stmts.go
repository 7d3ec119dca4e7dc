package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// stmts are the hot-path write statements, prepared once on the write
// connection and bound to each transaction with tx.StmtContext, which reuses
// the prepared statement because there is only one write connection.
type stmts struct {
	insertTask, putBody, deleteBody           *sql.Stmt
	idemLookup, idemPut                       *sql.Stmt
	leaseLimits, leaseScan, leaseTask         *sql.Stmt
	heartbeat, completeFinal, completeRequeue *sql.Stmt
	all                                       []*sql.Stmt
}

// leaseScanSQL selects due queued tasks of one priority in lease order,
// after a (run_at, seq) cursor, that fit a memory budget. leaseScanExcluding
// appends a filter on (project, function) pairs to it.
const leaseScanSQL = `SELECT seq, run_at, memory_mb, project, function FROM tasks INDEXED BY tasks_queued
	WHERE status = 'queued' AND priority = ? AND run_at <= ? AND memory_mb <= ? AND (run_at, seq) > (?, ?)`

const leaseScanOrder = ` ORDER BY run_at, seq LIMIT ?`

func prepare(ctx context.Context, db *sql.DB) (*stmts, error) {
	s := &stmts{}
	for _, q := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.insertTask, `INSERT INTO tasks (id, project, function, code_digest, status, priority, max_attempts,
			timeout_s, memory_mb, backoff_s, created_at, run_at, labels, parent_id, payload_size, submitted_by)
			VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{&s.putBody, `INSERT INTO task_bodies (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data`},
		{&s.deleteBody, `DELETE FROM task_bodies WHERE id = ?`},
		{&s.idemLookup, `SELECT ` + prefixed("t.", taskCols) + `, k.created_at
			FROM idempotency_keys k JOIN tasks t ON t.id = k.task_id WHERE k.project = ? AND k.key = ?`},
		{&s.idemPut, `INSERT INTO idempotency_keys (project, key, task_id, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project, key) DO UPDATE SET task_id = excluded.task_id, created_at = excluded.created_at`},
		{&s.leaseLimits, `SELECT f.project, f.name, f.max_concurrency,
			(SELECT count(*) FROM tasks t WHERE t.status = 'running' AND t.project = f.project AND t.function = f.name)
			FROM functions f INDEXED BY functions_limited WHERE f.max_concurrency > 0`},
		{&s.leaseScan, leaseScanSQL + leaseScanOrder},
		{&s.leaseTask, `UPDATE tasks SET status = 'running', attempts = attempts + 1, started_at = ?1,
			lease_id = ?2, runner_id = ?3, lease_expires_at = ?4
			WHERE seq = ?5 AND status = 'queued'
			RETURNING ` + taskCols + `, (SELECT data FROM task_bodies WHERE id = ?5 * 4)`},
		{&s.heartbeat, `UPDATE tasks SET lease_expires_at = ? WHERE id = ? AND status = 'running' AND lease_id = ?`},
		{&s.completeFinal, `UPDATE tasks SET status = ?, finished_at = ?, error_code = ?, error_message = ?, exit_code = ?,
			usage_peak_memory = ?, usage_cpu_ms = ?, usage_duration_ms = ?,
			lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
			WHERE id = ? AND status = 'running' AND lease_id = ? RETURNING seq`},
		{&s.completeRequeue, `UPDATE tasks SET status = 'queued', run_at = ?, error_code = ?, error_message = ?, exit_code = ?,
			usage_peak_memory = ?, usage_cpu_ms = ?, usage_duration_ms = ?, platform_tries = platform_tries + ?,
			started_at = NULL, lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
			WHERE id = ? AND status = 'running' AND lease_id = ? RETURNING seq`},
	} {
		st, err := db.PrepareContext(ctx, q.sql)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare %.40q…: %w", q.sql, err)
		}
		*q.dst = st
		s.all = append(s.all, st)
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

// prefixed qualifies every column of a comma-separated list with prefix.
func prefixed(prefix, cols string) string {
	out := make([]byte, 0, len(cols)*2)
	start := true
	for i := 0; i < len(cols); i++ {
		c := cols[i]
		if start && c != ' ' && c != '\t' && c != '\n' {
			out = append(out, prefix...)
			start = false
		}
		if c == ',' {
			start = true
		}
		out = append(out, c)
	}
	return string(out)
}
