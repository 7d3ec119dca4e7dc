package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// InsertTasks inserts a batch in one transaction. Every task's project must
// exist (not_found) and its priority lie in [ward.MinPriority,
// ward.MaxPriority] (invalid_argument); a repeated task ID → already_exists.
// Any error inserts nothing.
//
// Idempotency: a task whose key maps, in its project, to a task created less
// than ward.IdempotencyTTL before Now is not inserted; its result is the
// stored task with Existing set. A key repeated within the batch likewise
// returns the first task. An older mapping is replaced by the new task.
func (s *Store) InsertTasks(ctx context.Context, p *store.InsertTasksParams) ([]store.InsertResult, error) {
	for i := range p.Tasks {
		t := &p.Tasks[i]
		switch {
		case t.ID == "":
			return nil, ward.FieldError("id", "task %d has no ID", i)
		case t.Priority < ward.MinPriority || t.Priority > ward.MaxPriority:
			return nil, ward.FieldError("priority", "must be between %d and %d", ward.MinPriority, ward.MaxPriority)
		}
	}
	out := make([]store.InsertResult, len(p.Tasks))
	now := micros(p.Now)
	ttl := ward.IdempotencyTTL.Microseconds()
	qctx := context.WithoutCancel(ctx) // the transaction still ends with ctx
	err := s.write(ctx, func(tx *sql.Tx) error {
		ins := tx.StmtContext(ctx, s.st.insertTask)
		body := tx.StmtContext(ctx, s.st.putBody)
		var idemLookup, idemPut *sql.Stmt
		projects := map[string]bool{}
		type idemKey struct{ project, key string }
		seen := map[idemKey]int{}
		for i := range p.Tasks {
			t := &p.Tasks[i]
			if err := ctx.Err(); err != nil {
				return err
			}
			if ok, known := projects[t.Project]; !known {
				var err error
				if ok, err = projectExists(qctx, tx, t.Project); err != nil {
					return err
				}
				projects[t.Project] = ok
				if !ok {
					return notFoundProject(t.Project)
				}
			} else if !ok {
				return notFoundProject(t.Project)
			}
			if t.IdempotencyKey != "" {
				k := idemKey{t.Project, t.IdempotencyKey}
				if j, ok := seen[k]; ok {
					out[i] = store.InsertResult{Task: out[j].Task, Existing: true}
					continue
				}
				seen[k] = i
				if idemLookup == nil {
					idemLookup = tx.StmtContext(ctx, s.st.idemLookup)
					idemPut = tx.StmtContext(ctx, s.st.idemPut)
				}
				var created int64
				rec, err := scanTask(idemLookup.QueryRowContext(qctx, t.Project, t.IdempotencyKey), &created)
				switch {
				case err == nil && now-created < ttl:
					out[i] = store.InsertResult{Task: rec, Existing: true}
					continue
				case err != nil && !errors.Is(err, sql.ErrNoRows):
					return fmt.Errorf("sqlite: look up idempotency key: %w", err)
				}
			}
			labels, err := labelsArg(t.Labels)
			if err != nil {
				return err
			}
			res, err := ins.ExecContext(qctx, t.ID, t.Project, t.Function, t.CodeDigest, t.Priority, t.MaxAttempts,
				t.TimeoutS, t.MemoryMB, t.BackoffS, now, micros(t.RunAt), labels, t.ParentID, len(t.Payload), t.SubmittedBy)
			if err != nil {
				return fmt.Errorf("sqlite: insert task: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return ward.Errorf(ward.CodeAlreadyExists, "task %s already exists", t.ID)
			}
			if len(t.Payload) > 0 {
				seq, err := res.LastInsertId()
				if err != nil {
					return err
				}
				if _, err := body.ExecContext(qctx, bodyID(seq, kindPayload), t.Payload); err != nil {
					return fmt.Errorf("sqlite: insert payload: %w", err)
				}
			}
			if t.IdempotencyKey != "" {
				if _, err := idemPut.ExecContext(qctx, t.Project, t.IdempotencyKey, t.ID, now); err != nil {
					return fmt.Errorf("sqlite: record idempotency key: %w", err)
				}
			}
			out[i] = store.InsertResult{Task: newRecord(t, now)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// newRecord is the record of a task just inserted at now.
func newRecord(t *store.NewTask, now int64) store.TaskRecord {
	var labels map[string]string
	if len(t.Labels) > 0 {
		labels = maps.Clone(t.Labels)
	}
	return store.TaskRecord{
		Task: ward.Task{
			ID:          t.ID,
			Project:     t.Project,
			Function:    t.Function,
			CodeDigest:  t.CodeDigest,
			Status:      ward.StatusQueued,
			Priority:    t.Priority,
			MaxAttempts: t.MaxAttempts,
			TimeoutS:    t.TimeoutS,
			CreatedAt:   fromMicros(now),
			RunAt:       fromMicros(micros(t.RunAt)),
			Labels:      labels,
			ParentID:    t.ParentID,
			PayloadSize: len(t.Payload),
		},
		SubmittedBy: t.SubmittedBy,
		MemoryMB:    t.MemoryMB,
		BackoffS:    t.BackoffS,
	}
}

// GetTask returns a task of the project; a task of another project is
// not_found too.
func (s *Store) GetTask(ctx context.Context, project, id string) (store.TaskRecord, error) {
	rec, err := scanTask(s.r.QueryRowContext(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = ? AND project = ?`, id, project))
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
	limit := p.Limit
	switch {
	case limit < 0:
		return nil, ward.FieldError("limit", "must not be negative")
	case limit == 0:
		limit = ward.DefaultPageSize
	case limit > ward.MaxPageSize:
		limit = ward.MaxPageSize
	}
	if p.Status != "" && !p.Status.Valid() {
		return nil, ward.FieldError("status", "unknown status %q", p.Status)
	}
	var q strings.Builder
	q.WriteString(`SELECT ` + taskCols + ` FROM tasks WHERE project = ?`)
	args := []any{p.Project}
	if p.Function != "" {
		q.WriteString(` AND function = ?`)
		args = append(args, p.Function)
	}
	if p.Status != "" {
		q.WriteString(` AND status = ?`)
		args = append(args, string(p.Status))
	}
	if p.Before != "" {
		var seq int64
		err := s.r.QueryRowContext(ctx, `SELECT seq FROM tasks WHERE id = ? AND project = ?`, p.Before, p.Project).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ward.FieldError("cursor", "unknown cursor")
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: list tasks: cursor: %w", err)
		}
		q.WriteString(` AND seq < ?`)
		args = append(args, seq)
	}
	q.WriteString(` ORDER BY seq DESC LIMIT ?`)
	args = append(args, limit)

	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tasks: %w", err)
	}
	defer rows.Close()
	recs := []store.TaskRecord{}
	for rows.Next() {
		rec, err := scanTask(rows)
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
			return nil, notFoundProject(p.Project)
		}
	}
	return recs, nil
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
	err := s.r.QueryRowContext(ctx, `SELECT b.data FROM tasks t LEFT JOIN task_bodies b ON b.id = t.seq * 4 + ?
		WHERE t.id = ? AND t.project = ?`, kind, id, project).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFoundTask(id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get task %s: %w", body, err)
	}
	return data, nil
}

// CountRunning returns the number of running tasks of a function.
func (s *Store) CountRunning(ctx context.Context, project, function string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM tasks WHERE status = 'running' AND project = ? AND function = ?`,
		project, function).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count running: %w", err)
	}
	return n, nil
}

// nextRunAtSQL takes the earliest run_at of each priority, each an index
// seek, and the least of those.
var nextRunAtSQL = func() string {
	var parts []string
	for p := ward.MinPriority; p <= ward.MaxPriority; p++ {
		parts = append(parts, fmt.Sprintf(`SELECT min(run_at) AS m FROM tasks WHERE status = 'queued' AND priority = %d`, p))
	}
	return `SELECT min(m) FROM (` + strings.Join(parts, ` UNION ALL `) + `)`
}()

// NextRunAt returns the earliest run_at of a queued task, or ok=false when
// no task is queued.
func (s *Store) NextRunAt(ctx context.Context) (time.Time, bool, error) {
	var m sql.NullInt64
	if err := s.r.QueryRowContext(ctx, nextRunAtSQL).Scan(&m); err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: next run: %w", err)
	}
	if !m.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(m.Int64), true, nil
}
