package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// InsertTasks inserts a batch, with its token vault entries, in one
// transaction. Every task's and token's project must exist (not_found); a
// task's priority must lie in [ward.MinPriority, ward.MaxPriority] and a
// token must not be empty (invalid_argument); a repeated task ID →
// already_exists. Any error writes nothing.
//
// Tokens are upserted at Now, after the tasks, even when every task of the
// batch is an idempotent repeat: an entry written again gets the new value
// and updated_at and keeps its created_at.
//
// Idempotency: a task whose key maps, in its project, to a task created less
// than ward.IdempotencyTTL before Now is not inserted; its result is the
// stored task with Existing set. A key repeated within the batch likewise
// returns the first task. An older mapping is replaced by the new task.
func (s *Store) InsertTasks(ctx context.Context, p *store.InsertTasksParams) ([]store.InsertResult, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if err := s.prepareBatch(ctx, batchInsertTasks, len(p.Tasks)); err != nil {
		return nil, err
	}
	if err := s.prepareBatch(ctx, batchPutBodies, len(p.Tasks)); err != nil {
		return nil, err
	}
	if err := s.prepareBatch(ctx, batchPutTokens, len(p.Tokens)); err != nil {
		return nil, err
	}
	return s.inserts.do(ctx, s, p)
}

// insertBatch inserts the tasks and tokens of p within tx.
func (s *Store) insertBatch(ctx context.Context, tx *sql.Tx, p *store.InsertTasksParams) ([]store.InsertResult, error) {
	out := make([]store.InsertResult, len(p.Tasks))
	now := micros(p.Now)
	if err := s.checkProjects(ctx, tx, p); err != nil {
		return nil, err
	}
	fresh, dups, err := s.resolveIdempotency(ctx, tx, p.Tasks, now, out)
	if err != nil {
		return nil, err
	}
	if err := s.insertFresh(ctx, tx, p.Tasks, fresh, now); err != nil {
		return nil, err
	}
	for _, i := range fresh {
		out[i] = store.InsertResult{Task: store.NewRecord(&p.Tasks[i], fromMicros(now))}
	}
	for _, d := range dups {
		out[d[0]] = store.InsertResult{Task: out[d[1]].Task, Existing: true}
	}
	if err := s.putTokens(ctx, tx, p.Tokens, now); err != nil {
		return nil, err
	}
	return out, nil
}

// insertFresh inserts tasks[i] for i in fresh, with their payloads and
// idempotency keys, at now.
func (s *Store) insertFresh(ctx context.Context, tx *sql.Tx, tasks []store.NewTask, fresh []int, now int64) error {
	if len(fresh) == 0 {
		return nil
	}
	// Seqs are assigned here, under the write lock, so the payload rows can
	// be written without reading them back.
	var last int64
	if err := tx.StmtContext(ctx, s.st.maxSeq).QueryRowContext(ctx).Scan(&last); err != nil {
		return fmt.Errorf("sqlite: insert tasks: %w", err)
	}
	var bodies []any
	stored := map[string]int64{} // each project's payload bytes
	err := s.pieces(ctx, tx, batchInsertTasks, len(fresh), func(st *sql.Stmt, lo, hi int) error {
		args := make([]any, 0, (hi-lo)*insertTasksCols)
		for j, i := range fresh[lo:hi] {
			t := &tasks[i]
			labels, err := labelsArg(t.Labels)
			if err != nil {
				return err
			}
			input, err := inputArg(t.Input)
			if err != nil {
				return err
			}
			seq := last + int64(lo+j) + 1
			args = append(args, seq, t.ID, t.Project, t.Function, t.CodeDigest, t.Priority, t.MaxAttempts,
				t.TimeoutS, t.MemoryMB, t.BackoffS, now, micros(t.RunAt), labels, t.ParentID, t.Size(), t.SubmittedBy,
				string(ward.StatusQueued), t.Sealed, input, string(t.TaskRuntime()))
			if len(t.Payload) > 0 {
				bodies = append(bodies, bodyID(seq, kindPayload), t.Payload)
				stored[t.Project] += int64(len(t.Payload))
			}
		}
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("sqlite: insert tasks: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != int64(hi-lo) {
			return duplicateTask(ctx, tx, tasks, fresh[lo:hi], last+int64(lo)+1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.putBodies(ctx, tx, bodies); err != nil {
		return fmt.Errorf("sqlite: insert payloads: %w", err)
	}
	for project, n := range stored {
		if err := addStored(ctx, tx, project, n); err != nil {
			return err
		}
	}
	var put *sql.Stmt
	for _, i := range fresh {
		t := &tasks[i]
		if t.IdempotencyKey == "" {
			continue
		}
		if put == nil {
			put = tx.StmtContext(ctx, s.st.idemPut)
		}
		if _, err := put.ExecContext(ctx, t.Project, t.IdempotencyKey, t.ID, now); err != nil {
			return fmt.Errorf("sqlite: record idempotency key: %w", err)
		}
	}
	return nil
}

// duplicateTask names the first task of a chunk (inserted from seq first on)
// that was not inserted because its ID exists.
func duplicateTask(ctx context.Context, tx *sql.Tx, tasks []store.NewTask, chunk []int, first int64) error {
	for j, i := range chunk {
		var seq int64
		if err := tx.QueryRowContext(ctx, `SELECT seq FROM tasks WHERE id = ?`, tasks[i].ID).Scan(&seq); err != nil {
			return fmt.Errorf("sqlite: insert tasks: %w", err)
		}
		if seq != first+int64(j) {
			return ward.Errorf(ward.CodeAlreadyExists, "task %s already exists", tasks[i].ID)
		}
	}
	return ward.Errorf(ward.CodeAlreadyExists, "a task ID in the batch already exists")
}

// putBodies writes bodies given as (id, data) pairs.
func (s *Store) putBodies(ctx context.Context, tx *sql.Tx, pairs []any) error {
	return s.pieces(ctx, tx, batchPutBodies, len(pairs)/2, func(st *sql.Stmt, lo, hi int) error {
		_, err := st.ExecContext(ctx, pairs[2*lo:2*hi]...)
		return err
	})
}

// deleteBodies deletes bodies by ID.
func (s *Store) deleteBodies(ctx context.Context, tx *sql.Tx, ids []any) error {
	return s.pieces(ctx, tx, batchDeleteBodies, len(ids), func(st *sql.Stmt, lo, hi int) error {
		_, err := st.ExecContext(ctx, ids[lo:hi]...)
		return err
	})
}

// checkProjects returns not_found unless the project of every task and
// every token of p exists.
func (s *Store) checkProjects(ctx context.Context, tx *sql.Tx, p *store.InsertTasksParams) error {
	seen := map[string]bool{}
	var exists *sql.Stmt
	check := func(name string) error {
		if seen[name] {
			return nil
		}
		if exists == nil {
			exists = tx.StmtContext(ctx, s.st.projectExists)
		}
		var one int
		switch err := exists.QueryRowContext(ctx, name).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return store.ProjectNotFound(name)
		case err != nil:
			return fmt.Errorf("sqlite: look up project: %w", err)
		}
		seen[name] = true
		return nil
	}
	for i := range p.Tasks {
		if err := check(p.Tasks[i].Project); err != nil {
			return err
		}
	}
	for i := range p.Tokens {
		if err := check(p.Tokens[i].Project); err != nil {
			return err
		}
	}
	return nil
}

// resolveIdempotency fills out[i] for the tasks whose idempotency key is in
// use in the store within the TTL. It returns the indexes of the tasks to
// insert and, for each task repeating a key used earlier in the batch, the
// pair (its index, the first task's index).
func (s *Store) resolveIdempotency(ctx context.Context, tx *sql.Tx, tasks []store.NewTask, now int64,
	out []store.InsertResult) (fresh []int, dups [][2]int, err error) {
	qctx := context.WithoutCancel(ctx)
	ttl := ward.IdempotencyTTL.Microseconds()
	type idemKey struct{ project, key string }
	var seen map[idemKey]int
	var lookup *sql.Stmt
	fresh = make([]int, 0, len(tasks))
	for i := range tasks {
		t := &tasks[i]
		if t.IdempotencyKey == "" {
			fresh = append(fresh, i)
			continue
		}
		k := idemKey{t.Project, t.IdempotencyKey}
		if j, ok := seen[k]; ok {
			dups = append(dups, [2]int{i, j})
			continue
		}
		if seen == nil {
			seen = map[idemKey]int{}
			lookup = tx.StmtContext(ctx, s.st.idemLookup)
		}
		seen[k] = i
		var created int64
		rec, err := scanTask(lookup.QueryRowContext(qctx, t.Project, t.IdempotencyKey), &created)
		switch {
		case err == nil && now-created < ttl:
			out[i] = store.InsertResult{Task: rec, Existing: true}
			continue
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return nil, nil, fmt.Errorf("sqlite: look up idempotency key: %w", err)
		}
		fresh = append(fresh, i)
	}
	return fresh, dups, nil
}

// GetTask returns a task of the project; a task of another project is
// not_found too.
func (s *Store) GetTask(ctx context.Context, project, id string) (store.TaskRecord, error) {
	rec, err := scanTask(s.row(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = ? AND project = ?`, id, project))
	if errors.Is(err, sql.ErrNoRows) {
		return store.TaskRecord{}, notFoundTask(id)
	}
	if err != nil {
		return store.TaskRecord{}, fmt.Errorf("sqlite: get task: %w", err)
	}
	return rec, nil
}

func notFoundTask(id string) error { return ward.Errorf(ward.CodeNotFound, "task %s not found", id) }

// ListTasks lists a project's tasks newest first (by insertion order). Limit
// 0 means ward.DefaultPageSize and is capped at ward.MaxPageSize; Before is
// the ID of the last task of the previous page, and an ID that is not a task
// of the project → invalid_argument. A missing project → not_found.
func (s *Store) ListTasks(ctx context.Context, p *store.ListTasksParams) ([]store.TaskRecord, error) {
	limit, err := p.PageSize()
	if err != nil {
		return nil, err
	}
	var before int64
	if p.Before != "" {
		err := s.row(ctx, `SELECT seq FROM tasks WHERE id = ? AND project = ?`, p.Before, p.Project).Scan(&before)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ward.FieldError("cursor", "unknown cursor")
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: list tasks: cursor: %w", err)
		}
	}
	q, args := listSQL(p, before, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tasks: %w", err)
	}
	defer rows.Close()
	recs := []store.TaskRecord{}
	ts := newTaskScanner()
	for rows.Next() {
		rec, err := ts.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list tasks: %w", err)
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list tasks: %w", err)
	}
	if len(recs) == 0 && p.Before == "" {
		if ok, err := projectExists(ctx, s.r, p.Project); err != nil {
			return nil, err
		} else if !ok {
			return nil, store.ProjectNotFound(p.Project)
		}
	}
	return recs, nil
}

// listSQL builds the listing query: tasks of p.Project with the optional
// filters, before the task with seq before (0 = from the newest), newest
// first. The status, already validated, is a literal so that SQLite can use
// the partial indexes on failed and cancelled tasks.
func listSQL(p *store.ListTasksParams, before int64, limit int) (string, []any) {
	var q strings.Builder
	q.WriteString(`SELECT ` + taskCols + ` FROM tasks WHERE project = ?`)
	args := []any{p.Project}
	if p.Function != "" {
		q.WriteString(` AND function = ?`)
		args = append(args, p.Function)
	}
	if p.Status != "" {
		q.WriteString(` AND status = '` + string(p.Status) + `'`)
	}
	if before != 0 {
		q.WriteString(` AND seq < ?`)
		args = append(args, before)
	}
	q.WriteString(` ORDER BY seq DESC LIMIT ?`)
	return q.String(), append(args, limit)
}

// GetTaskBody returns a body of a task of the project. A body not written
// (yet) is nil with no error; a missing task → not_found; an unknown body →
// invalid_argument.
func (s *Store) GetTaskBody(ctx context.Context, project, id string, body store.Body) ([]byte, error) {
	var kind int
	switch body {
	case store.BodyPayload:
		kind = kindPayload
	case store.BodyResult:
		kind = kindResult
	case store.BodyLog:
		kind = kindLog
	default:
		return nil, ward.FieldError("body", "unknown body %q", body)
	}
	var data []byte
	err := s.row(ctx, `SELECT b.data FROM tasks t LEFT JOIN task_bodies b ON b.id = t.seq * 4 + ?
		WHERE t.id = ? AND t.project = ?`, kind, id, project).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFoundTask(id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get task %s: %w", body, err)
	}
	return data, nil
}

// CountRunning returns the number of running tasks of a function, or of
// the whole project when function is "".
func (s *Store) CountRunning(ctx context.Context, project, function string) (int, error) {
	var n int
	err := s.row(ctx, `SELECT count(*) FROM tasks INDEXED BY tasks_running WHERE status = 'running' AND project = ?
		AND (? = '' OR function = ?)`, project, function, function).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count running: %w", err)
	}
	return n, nil
}

// nextRunAtSQL builds the next-due probe for tasks of n runtimes (0 =
// every runtime), given once per priority: each priority's queued index
// entries are read in run_at order up to the first of those runtimes, and
// the least of those run_ats is the answer.
func nextRunAtSQL(n int) string {
	var parts []string
	for p := ward.MinPriority; p <= ward.MaxPriority; p++ {
		parts = append(parts, fmt.Sprintf(`SELECT (SELECT run_at FROM tasks INDEXED BY tasks_queued
			WHERE status = 'queued' AND priority = %d%s ORDER BY run_at LIMIT 1) AS m`, p, runtimesIn(n)))
	}
	return `SELECT min(m) FROM (` + strings.Join(parts, ` UNION ALL `) + `)`
}

// nextRunAtQueries[0] is nextRunAtSQL for every runtime and [i] for
// 1<<(i-1) runtimes, up to the power of two padRuntimes makes of the most.
var nextRunAtQueries = func() []string {
	qs := []string{nextRunAtSQL(0)}
	for n := 1; n < 2*store.MaxLeaseRuntimes; n *= 2 {
		qs = append(qs, nextRunAtSQL(n))
	}
	return qs
}()

// NextRunAt returns the earliest run_at of a queued task of one of
// runtimes (none = every runtime), or ok=false when there is none.
func (s *Store) NextRunAt(ctx context.Context, runtimes ...ward.Runtime) (time.Time, bool, error) {
	names, err := store.RuntimeNames(runtimes)
	if err != nil {
		return time.Time{}, false, err
	}
	q, args := nextRunAtQueries[0], []any(nil)
	if rts := padRuntimes(names); len(rts) > 0 {
		// The runtimes once per priority.
		q = nextRunAtQueries[1+bits.TrailingZeros(uint(len(rts)))]
		for range ward.MaxPriority - ward.MinPriority + 1 {
			args = append(args, rts...)
		}
	}
	var m sql.NullInt64
	if err := s.row(ctx, q, args...).Scan(&m); err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: next run: %w", err)
	}
	if !m.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(m.Int64), true, nil
}
