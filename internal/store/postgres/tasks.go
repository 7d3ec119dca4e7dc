package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// idemKey is an idempotency key in a project.
type idemKey struct{ project, key string }

// InsertTasks inserts a batch, with its token vault entries, in one
// transaction. Every task's and token's project must exist (not_found); a
// task's priority must lie in [ward.MinPriority, ward.MaxPriority] and a
// token must not be empty (invalid_argument); a repeated task ID →
// already_exists. Any error writes nothing.
//
// Tokens are upserted at Now, after the tasks, even when every task of the
// batch is an idempotent repeat.
//
// Idempotency: a task whose key maps, in its project, to a task created less
// than ward.IdempotencyTTL before Now is not inserted; its result is the
// stored task with Existing set. A key repeated within the batch likewise
// returns the first task. An older mapping is replaced by the new task.
// Keys are locked (advisory locks) for the transaction, so two servers
// submitting the same key at once insert one task.
func (s *Store) InsertTasks(ctx context.Context, p *store.InsertTasksParams) ([]store.InsertResult, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	out := make([]store.InsertResult, len(p.Tasks))
	now := micros(p.Now)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := checkProjects(ctx, tx, p); err != nil {
			return err
		}
		fresh, dups, err := resolveIdempotency(ctx, tx, p.Tasks, now, out)
		if err != nil {
			return err
		}
		if err := insertFresh(ctx, tx, p.Tasks, fresh, now); err != nil {
			return err
		}
		for _, i := range fresh {
			out[i] = store.InsertResult{Task: store.NewRecord(&p.Tasks[i], fromMicros(now))}
		}
		for _, d := range dups {
			out[d[0]] = store.InsertResult{Task: out[d[1]].Task, Existing: true}
		}
		return putTokens(ctx, tx, p.Tokens, now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkProjects returns not_found unless the project of every task and
// every token of p exists, and share-locks those projects.
func checkProjects(ctx context.Context, tx pgx.Tx, p *store.InsertTasksParams) error {
	seen := map[string]bool{}
	var names []string
	for i := range p.Tasks {
		if n := p.Tasks[i].Project; !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for i := range p.Tokens {
		if n := p.Tokens[i].Project; !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, n := range names {
		ok, err := projectExists(ctx, tx, n, true)
		if err != nil {
			return err
		}
		if !ok {
			return store.ProjectNotFound(n)
		}
	}
	return nil
}

// resolveIdempotency fills out[i] for the tasks whose idempotency key is in
// use in the store within the TTL. It returns the indexes of the tasks to
// insert and, for each task repeating a key used earlier in the batch, the
// pair (its index, the first task's index).
func resolveIdempotency(ctx context.Context, tx pgx.Tx, tasks []store.NewTask, now int64,
	out []store.InsertResult) (fresh []int, dups [][2]int, err error) {
	ttl := ward.IdempotencyTTL.Microseconds()
	var keys []idemKey
	first := map[idemKey]int{}
	for i := range tasks {
		t := &tasks[i]
		if t.IdempotencyKey == "" {
			continue
		}
		k := idemKey{t.Project, t.IdempotencyKey}
		if _, ok := first[k]; !ok {
			first[k] = i
			keys = append(keys, k)
		}
	}
	// Lock the keys in one order, so that concurrent batches cannot deadlock.
	slices.SortFunc(keys, func(a, b idemKey) int {
		return cmp.Or(strings.Compare(a.project, b.project), strings.Compare(a.key, b.key))
	})
	for _, k := range keys {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('ward.idem/' || current_schema() || '/' || $1 || '/' || $2, 0))`,
			k.project, k.key); err != nil {
			return nil, nil, fmt.Errorf("postgres: lock idempotency key: %w", err)
		}
	}
	fresh = make([]int, 0, len(tasks))
	for i := range tasks {
		t := &tasks[i]
		if t.IdempotencyKey == "" {
			fresh = append(fresh, i)
			continue
		}
		k := idemKey{t.Project, t.IdempotencyKey}
		if j := first[k]; j != i {
			dups = append(dups, [2]int{i, j})
			continue
		}
		var created int64
		rec, err := scanTask(tx.QueryRow(ctx, `SELECT `+prefixed("t.", taskCols)+`, k.created_at
			FROM idempotency_keys k JOIN tasks t ON t.id = k.task_id WHERE k.project = $1 AND k.key = $2`,
			t.Project, t.IdempotencyKey), &created)
		switch {
		case err == nil && now-created < ttl:
			out[i] = store.InsertResult{Task: rec, Existing: true}
			continue
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return nil, nil, fmt.Errorf("postgres: look up idempotency key: %w", err)
		}
		fresh = append(fresh, i)
	}
	return fresh, dups, nil
}

// insertManySQL inserts a batch of tasks given as parallel arrays, in
// array order (so seq follows the batch), and their non-empty payload
// bodies, counting them in their projects' stored bytes, in one
// statement, and returns the IDs it inserted: a task whose
// ID is stored already is left out. The IDs must differ from each other.
var insertManySQL = `WITH x AS (
		SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[], $9::int[],
			$10::int[], $11::bigint[], $12::text[], $13::text[], $14::bigint[], $15::text[], $16::bool[], $17::text[], $18::bytea[],
			$19::text[])
			WITH ORDINALITY AS x (id, project, function, code_digest, priority, max_attempts, timeout_s, memory_mb,
				backoff_s, run_at, labels, parent_id, payload_size, submitted_by, sealed, input_info, payload, runtime, ord)),
	t AS (
		INSERT INTO tasks (id, project, function, code_digest, priority, max_attempts, timeout_s, memory_mb, backoff_s,
			created_at, run_at, labels, parent_id, payload_size, submitted_by, status, sealed, input_info, runtime)
		SELECT id, project, function, code_digest, priority, max_attempts, timeout_s, memory_mb, backoff_s,
			$1, run_at, labels, parent_id, payload_size, submitted_by, 'queued', sealed, input_info, runtime
		FROM x ORDER BY ord
		ON CONFLICT (id) DO NOTHING
		RETURNING seq, id),
	b AS (
		INSERT INTO task_bodies (seq, kind, data)
		SELECT t.seq, 0, x.payload FROM t JOIN x ON x.id = t.id WHERE length(x.payload) > 0),
	a AS (` + usageAddSQL(`SELECT x.project, sum(length(x.payload)) FROM t JOIN x ON x.id = t.id GROUP BY x.project`) + `)
	SELECT id FROM t`

// insertArgs are the columns of insertManySQL, one element per task.
type insertArgs struct {
	id, project, function, digest, parent, submittedBy  []string
	runtime                                             []string
	priority, maxAttempts, timeoutS, memoryMB, backoffS []int
	runAt, size                                         []int64
	labels, input                                       []*string
	sealed                                              []bool
	payload                                             [][]byte
}

func (a *insertArgs) add(t *store.NewTask) error {
	labels, err := labelsArg(t.Labels)
	if err != nil {
		return err
	}
	input, err := inputArg(t.Input)
	if err != nil {
		return err
	}
	payload := t.Payload
	if payload == nil {
		payload = []byte{}
	}
	a.id, a.project, a.function = append(a.id, t.ID), append(a.project, t.Project), append(a.function, t.Function)
	a.digest, a.parent, a.submittedBy = append(a.digest, t.CodeDigest), append(a.parent, t.ParentID), append(a.submittedBy, t.SubmittedBy)
	a.priority, a.maxAttempts, a.timeoutS = append(a.priority, t.Priority), append(a.maxAttempts, t.MaxAttempts), append(a.timeoutS, t.TimeoutS)
	a.memoryMB, a.backoffS = append(a.memoryMB, t.MemoryMB), append(a.backoffS, t.BackoffS)
	a.runAt, a.size = append(a.runAt, micros(t.RunAt)), append(a.size, int64(t.Size()))
	a.labels, a.input, a.sealed, a.payload = append(a.labels, labels), append(a.input, input), append(a.sealed, t.Sealed), append(a.payload, payload)
	a.runtime = append(a.runtime, string(t.TaskRuntime()))
	return nil
}

// insertFresh inserts tasks[i] for i in fresh, with their payloads and
// idempotency keys, at now, in one round trip: one statement for the tasks
// and one per idempotency key.
func insertFresh(ctx context.Context, tx pgx.Tx, tasks []store.NewTask, fresh []int, now int64) error {
	if len(fresh) == 0 {
		return nil
	}
	var a insertArgs
	seen := make(map[string]bool, len(fresh))
	for _, i := range fresh {
		id := tasks[i].ID
		if seen[id] {
			return ward.Errorf(ward.CodeAlreadyExists, "task %s already exists", id)
		}
		seen[id] = true
		if err := a.add(&tasks[i]); err != nil {
			return err
		}
	}
	b := &pgx.Batch{}
	b.Queue(insertManySQL, now, a.id, a.project, a.function, a.digest, a.priority, a.maxAttempts, a.timeoutS, a.memoryMB,
		a.backoffS, a.runAt, a.labels, a.parent, a.size, a.submittedBy, a.sealed, a.input, a.payload, a.runtime)
	keyed := 0
	for _, i := range fresh {
		t := &tasks[i]
		if t.IdempotencyKey == "" {
			continue
		}
		keyed++
		b.Queue(`INSERT INTO idempotency_keys (project, key, task_id, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (project, key) DO UPDATE SET task_id = excluded.task_id, created_at = excluded.created_at`,
			t.Project, t.IdempotencyKey, t.ID, now)
	}
	br := tx.SendBatch(ctx, b)
	var first error
	rows, err := br.Query()
	if err == nil {
		var inserted []string
		if inserted, err = pgx.CollectRows(rows, pgx.RowTo[string]); err == nil {
			first = takenID(a.id, inserted)
		}
	}
	if err != nil {
		first = fmt.Errorf("postgres: insert tasks: %w", err)
	}
	for range keyed {
		if _, err := br.Exec(); err != nil && first == nil {
			first = fmt.Errorf("postgres: record idempotency key: %w", err)
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = fmt.Errorf("postgres: insert tasks: %w", err)
	}
	return first
}

// takenID returns already_exists naming the first of ids, in batch order,
// that the insert left out, or nil when it inserted them all.
func takenID(ids, inserted []string) error {
	if len(inserted) == len(ids) {
		return nil
	}
	done := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		done[id] = true
	}
	for _, id := range ids {
		if !done[id] {
			return ward.Errorf(ward.CodeAlreadyExists, "task %s already exists", id)
		}
	}
	return nil
}

// prefixed qualifies every column of a comma-separated list with prefix.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// GetTask returns a task of the project; a task of another project is
// not_found too.
func (s *Store) GetTask(ctx context.Context, project, id string) (store.TaskRecord, error) {
	rec, err := scanTask(s.pool.QueryRow(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = $1 AND project = $2`, id, project))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.TaskRecord{}, notFoundTask(id)
	}
	if err != nil {
		return store.TaskRecord{}, fmt.Errorf("postgres: get task: %w", err)
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
		err := s.pool.QueryRow(ctx, `SELECT seq FROM tasks WHERE id = $1 AND project = $2`, p.Before, p.Project).Scan(&before)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ward.FieldError("cursor", "unknown cursor")
		}
		if err != nil {
			return nil, fmt.Errorf("postgres: list tasks: cursor: %w", err)
		}
	}
	q := strings.Builder{}
	q.WriteString(`SELECT ` + taskCols + ` FROM tasks WHERE project = $1`)
	args := []any{p.Project}
	if p.Function != "" {
		args = append(args, p.Function)
		fmt.Fprintf(&q, ` AND function = $%d`, len(args))
	}
	if p.Status != "" {
		args = append(args, string(p.Status))
		fmt.Fprintf(&q, ` AND status = $%d`, len(args))
	}
	if before != 0 {
		args = append(args, before)
		fmt.Fprintf(&q, ` AND seq < $%d`, len(args))
	}
	args = append(args, limit)
	fmt.Fprintf(&q, ` ORDER BY seq DESC LIMIT $%d`, len(args))
	recs, err := collect(ctx, s.pool, scanTaskRow, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tasks: %w", err)
	}
	if len(recs) == 0 && p.Before == "" {
		if ok, err := projectExists(ctx, s.pool, p.Project, false); err != nil {
			return nil, err
		} else if !ok {
			return nil, store.ProjectNotFound(p.Project)
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
	err := s.pool.QueryRow(ctx, `SELECT b.data FROM tasks t LEFT JOIN task_bodies b ON b.seq = t.seq AND b.kind = $1
		WHERE t.id = $2 AND t.project = $3`, kind, id, project).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFoundTask(id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get task %s: %w", body, err)
	}
	return data, nil
}

// CountRunning returns the number of running tasks of a function, or of
// the whole project when function is "".
func (s *Store) CountRunning(ctx context.Context, project, function string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE status = 'running' AND project = $1 AND ($2 = '' OR function = $2)`,
		project, function).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: count running: %w", err)
	}
	return n, nil
}

// nextRunAtSQL finds the earliest run_at of a queued task of the runtimes
// $1 (empty = every runtime) with one probe of the queued index per
// priority (it is ordered by priority first, so a plain min(run_at) would
// read every queued entry); a probe reads its priority's entries in run_at
// order up to the first of those runtimes.
var nextRunAtSQL = `SELECT min(x.run_at) FROM generate_series(0, ` + strconv.Itoa(ward.MaxPriority) + `) AS p (priority),
	LATERAL (SELECT run_at FROM tasks WHERE status = 'queued' AND priority = p.priority
		AND (cardinality($1::text[]) = 0 OR runtime = ANY ($1::text[])) ORDER BY run_at LIMIT 1) AS x`

// NextRunAt returns the earliest run_at of a queued task of one of
// runtimes (none = every runtime), or ok=false when there is none.
func (s *Store) NextRunAt(ctx context.Context, runtimes ...ward.Runtime) (time.Time, bool, error) {
	names, err := store.RuntimeNames(runtimes)
	if err != nil {
		return time.Time{}, false, err
	}
	if names == nil {
		names = []string{}
	}
	var m *int64
	if err := s.pool.QueryRow(ctx, nextRunAtSQL, names).Scan(&m); err != nil {
		return time.Time{}, false, fmt.Errorf("postgres: next run: %w", err)
	}
	if m == nil {
		return time.Time{}, false, nil
	}
	return fromMicros(*m), true, nil
}

// PurgeTasks deletes, in one transaction, up to Limit (0 = all) tasks of
// Project (and of Function, when set) that are succeeded, failed or
// cancelled and finished before FinishedBefore, oldest first, with their
// bodies and the idempotency keys that point at them (ON DELETE CASCADE);
// the bodies' bytes leave the project's stored bytes. Queued and running
// tasks are never touched. It returns how many tasks it
// deleted. A negative limit → invalid_argument.
func (s *Store) PurgeTasks(ctx context.Context, p *store.PurgeParams) (int, error) {
	if err := store.CheckLimit(p.Limit); err != nil {
		return 0, err
	}
	limit := limitArg(p.Limit)
	// The bodies go with their tasks (ON DELETE CASCADE); the statement's
	// snapshot still sees them, to count what leaves the stored bytes.
	q := `WITH d AS (
		DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks
			WHERE project = $1 AND finished_at IS NOT NULL AND finished_at < $2
			AND status IN ('succeeded', 'failed', 'cancelled') AND ($3 = '' OR function = $3)
			ORDER BY finished_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED)
		RETURNING seq),
	a AS (` + usageAddSQL(`SELECT $1::text, -coalesce(sum(length(b.data)), 0)::bigint FROM task_bodies b JOIN d ON d.seq = b.seq`) + `)
	SELECT count(*) FROM d`
	var n int
	if err := s.pool.QueryRow(ctx, q, p.Project, micros(p.FinishedBefore), p.Function, limit).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: purge tasks: %w", err)
	}
	return n, nil
}
