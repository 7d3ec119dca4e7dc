package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// fnKey names a function across projects; function "" stands for the
// whole project (its max_running).
type fnKey struct{ project, function string }

// fnSlots is a function's concurrency limit, or a project's running quota,
// and its running count.
type fnSlots struct{ limit, running int }

// candidate is a due queued task read (and row-locked) by a lease scan.
type candidate struct {
	seq, runAt    int64
	priority, mem int
	key           fnKey
	limit         int // the function's max_concurrency; 0 = none
	projectLimit  int // the project's max_running; 0 = none
}

// leaseScanSQL selects due queued tasks that fit a memory budget, of the
// runtimes $9 (empty = every runtime), in lease order after a (priority,
// run_at, seq) cursor, skipping excluded functions and the excluded
// projects $10, and row-locks them (skipping rows other leases hold). It
// returns each task's function's max_concurrency (0 for none or a deleted
// function) and its project's max_running. The runtime is a filter on the
// rows the ordered index scan reads, as the memory budget is.
const leaseScanSQL = `SELECT t.seq, t.priority, t.run_at, t.memory_mb, t.project, t.function, coalesce(f.max_concurrency, 0),
	pr.max_running
	FROM tasks t LEFT JOIN functions f ON f.project = t.project AND f.name = t.function
	JOIN projects pr ON pr.name = t.project
	WHERE t.status = 'queued' AND t.run_at <= $1 AND t.memory_mb <= $2
	AND ($3::int IS NULL OR t.priority < $3::int OR (t.priority = $3::int AND (t.run_at, t.seq) > ($4::bigint, $5::bigint)))
	AND NOT EXISTS (SELECT 1 FROM unnest($6::text[], $7::text[]) AS x (p, f) WHERE x.p = t.project AND x.f = t.function)
	AND t.project <> ALL ($10::text[])
	AND (cardinality($9::text[]) = 0 OR t.runtime = ANY ($9::text[]))
	ORDER BY t.priority DESC, t.run_at, t.seq
	LIMIT $8
	FOR UPDATE OF t SKIP LOCKED`

// leasePlanSQL makes the lease scans of one transaction walk the queued
// index in lease order and stop at their limit. Without it the planner,
// whose statistics of a table that grew quickly say few tasks are queued,
// reads every queued task and sorts them: measured at 17 ms a scan with
// 20,000 queued, against well under 1 ms.
const leasePlanSQL = `SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off`

// leaseSQL moves the tasks given as (seq, lease ID) arrays to running and
// returns taskCols, seq and the payload of each.
var leaseSQL = `UPDATE tasks t SET status = 'running', attempts = t.attempts + 1, started_at = $1, runner_id = $2,
		lease_expires_at = $3, lease_id = l.lease_id
	FROM unnest($4::bigint[], $5::text[]) AS l (seq, lease_id)
	WHERE t.seq = l.seq AND t.status = 'queued'
	RETURNING ` + prefixed("t.", taskCols) + `, t.seq,
		(SELECT b.data FROM task_bodies b WHERE b.seq = t.seq AND b.kind = 0)`

// LeaseTasks moves up to Max due queued tasks (run_at <= Now) to running for
// RunnerID, in one transaction. Tasks are taken by priority (highest
// first), then run_at, then insertion order. Each leased task gets a new
// random lease ID, lease_expires_at = Now+TTL, started_at = Now, and one more
// attempt.
//
// Admission: the memory_mb of the tasks leased in one call sums to at most
// FreeMemoryMB; a task that does not fit is skipped and later ones are still
// considered. A function whose spec sets max_concurrency N > 0 never has more
// than N running tasks in the whole database, across servers: a lease that
// admits a task of such a function holds the function's advisory lock until
// it commits and counts its running tasks under it. A function whose lock
// another lease holds at that moment is skipped by this one. A project
// whose quotas set max_running N > 0 is held to N running tasks the same
// way, under a lock of its own. Candidate rows
// are locked FOR UPDATE SKIP LOCKED, so concurrent leases never take the
// same task. Tasks of a deleted function have no concurrency limit.
//
// Runtimes, when set, limits the lease to tasks of those runtimes: the
// scans filter the others out as they read, so a task of another runtime
// never blocks the tasks behind it.
func (s *Store) LeaseTasks(ctx context.Context, p *store.LeaseParams) ([]store.Lease, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	runtimes, err := store.RuntimeNames(p.Runtimes)
	if err != nil {
		return nil, err
	}
	if p.Max <= 0 {
		return nil, nil
	}
	if runtimes == nil {
		runtimes = []string{}
	}
	now := micros(p.Now)
	expires := micros(p.Now.Add(p.TTL))
	var leases []store.Lease
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, leasePlanSQL); err != nil {
			return fmt.Errorf("postgres: lease: %w", err)
		}
		picks, err := pickTasks(ctx, tx, p, runtimes, now)
		if err != nil || len(picks) == 0 {
			return err
		}
		leases, err = leasePicked(ctx, tx, picks, p.RunnerID, now, expires)
		return err
	})
	if err != nil {
		return nil, err
	}
	return leases, nil
}

// pickTasks chooses the tasks to lease and returns their seqs in lease
// order. Each scan asks only for tasks of the runtimes (empty = every
// runtime) that fit the memory left and whose function is not blocked, so
// a blocked function's backlog never starves the tasks behind it.
func pickTasks(ctx context.Context, tx pgx.Tx, p *store.LeaseParams, runtimes []string, now int64) ([]int64, error) {
	var picks []int64
	free := p.FreeMemoryMB
	slots := map[fnKey]*fnSlots{}
	blocked := map[fnKey]bool{}
	var bp, bf []string // blocked functions, as parallel arrays
	var bprojects []string
	var curPrio *int
	var curRun, curSeq int64
	for len(picks) < p.Max && free >= 0 {
		need := p.Max - len(picks)
		cands, err := scanCandidates(ctx, tx, now, free, curPrio, curRun, curSeq, bp, bf, bprojects, runtimes, need)
		if err != nil {
			return nil, err
		}
		for _, c := range cands {
			prio := c.priority
			curPrio, curRun, curSeq = &prio, c.runAt, c.seq
			pk := fnKey{project: c.key.project}
			if c.mem > free || blocked[c.key] || blocked[pk] {
				continue
			}
			var ps *fnSlots
			if c.projectLimit > 0 {
				ps, err = functionSlots(ctx, tx, pk, c.projectLimit, slots)
				if err != nil {
					return nil, err
				}
				if ps == nil || ps.running >= ps.limit {
					blocked[pk] = true
					bprojects = append(bprojects, pk.project)
					continue
				}
			}
			if c.limit > 0 {
				sl, err := functionSlots(ctx, tx, c.key, c.limit, slots)
				if err != nil {
					return nil, err
				}
				if sl == nil || sl.running >= sl.limit {
					blocked[c.key] = true
					bp, bf = append(bp, c.key.project), append(bf, c.key.function)
					continue
				}
				sl.running++
			}
			if ps != nil {
				ps.running++
			}
			free -= c.mem
			picks = append(picks, c.seq)
			if len(picks) == p.Max {
				break
			}
		}
		if len(cands) < need {
			break // no more candidates
		}
	}
	return picks, nil
}

// scanCandidates reads up to limit candidates of the runtimes after the
// cursor.
func scanCandidates(ctx context.Context, tx pgx.Tx, now int64, free int, prio *int, runAt, seq int64,
	bp, bf, bprojects, runtimes []string, limit int) ([]candidate, error) {
	if bp == nil {
		bp, bf = []string{}, []string{}
	}
	if bprojects == nil {
		bprojects = []string{}
	}
	rows, err := tx.Query(ctx, leaseScanSQL, now, free, prio, runAt, seq, bp, bf, limit, runtimes, bprojects)
	if err != nil {
		return nil, fmt.Errorf("postgres: lease: scan: %w", err)
	}
	defer rows.Close()
	var out []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.seq, &c.priority, &c.runAt, &c.mem, &c.key.project, &c.key.function, &c.limit, &c.projectLimit); err != nil {
			return nil, fmt.Errorf("postgres: lease: scan: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: lease: scan: %w", err)
	}
	return out, nil
}

// functionSlots returns the slots of a function with a concurrency limit,
// or of a project with max_running (function ""), taking its advisory lock
// (held until the transaction ends) and counting its running tasks under
// it the first time. It returns nil when another transaction holds the
// lock. Lock keys name the schema: advisory locks are database-wide, and
// stores in other schemas of the database must not hold each other up.
func functionSlots(ctx context.Context, tx pgx.Tx, k fnKey, limit int, slots map[fnKey]*fnSlots) (*fnSlots, error) {
	if sl, ok := slots[k]; ok {
		return sl, nil
	}
	lock, count := `SELECT pg_try_advisory_xact_lock(hashtextextended('ward.fn/' || current_schema() || '/' || $1 || '/' || $2, 0))`,
		`SELECT count(*) FROM tasks WHERE status = 'running' AND project = $1 AND function = $2`
	args := []any{k.project, k.function}
	if k.function == "" {
		lock, count = `SELECT pg_try_advisory_xact_lock(hashtextextended('ward.project/' || current_schema() || '/' || $1, 0))`,
			`SELECT count(*) FROM tasks WHERE status = 'running' AND project = $1`
		args = args[:1]
	}
	var got bool
	if err := tx.QueryRow(ctx, lock, args...).Scan(&got); err != nil {
		return nil, fmt.Errorf("postgres: lease: lock function: %w", err)
	}
	if !got {
		slots[k] = nil
		return nil, nil
	}
	// Read committed: this statement sees every lease committed before the
	// lock was granted.
	sl := &fnSlots{limit: limit}
	if err := tx.QueryRow(ctx, count, args...).Scan(&sl.running); err != nil {
		return nil, fmt.Errorf("postgres: lease: count running: %w", err)
	}
	slots[k] = sl
	return sl, nil
}

// leasePicked moves the picked tasks (by seq) to running under new leases
// and returns the leases in pick order.
func leasePicked(ctx context.Context, tx pgx.Tx, picks []int64, runner string, now, expires int64) ([]store.Lease, error) {
	ids, err := store.NewLeaseIDs(len(picks))
	if err != nil {
		return nil, err
	}
	pos := make(map[int64]int, len(picks))
	for i, seq := range picks {
		pos[seq] = i
	}
	rows, err := tx.Query(ctx, leaseSQL, now, runner, expires, picks, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: lease tasks: %w", err)
	}
	defer rows.Close()
	leases := make([]store.Lease, len(picks))
	n := 0
	for rows.Next() {
		var r taskRow
		var seq int64
		var payload []byte
		if err := rows.Scan(r.dest(&seq, &payload)...); err != nil {
			return nil, fmt.Errorf("postgres: lease tasks: %w", err)
		}
		rec, err := r.record()
		if err != nil {
			return nil, fmt.Errorf("postgres: lease tasks: %w", err)
		}
		leases[pos[seq]] = store.Lease{Task: rec, LeaseID: rec.LeaseID, ExpiresAt: rec.LeaseExpiresAt, Payload: payload}
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: lease tasks: %w", err)
	}
	if n != len(picks) {
		return nil, fmt.Errorf("postgres: lease tasks: %d of %d picked tasks updated", n, len(picks))
	}
	return leases, nil
}

// Heartbeat extends to Now+TTL each lease in Leases that is still held: the
// task is running under that lease ID (an expired lease not yet reaped is
// still held). It returns the task IDs whose lease is not held.
func (s *Store) Heartbeat(ctx context.Context, p *store.HeartbeatParams) ([]string, error) {
	if err := store.CheckTTL(p.TTL); err != nil {
		return nil, err
	}
	if len(p.Leases) == 0 {
		return nil, nil
	}
	ids := make([]string, len(p.Leases))
	lids := make([]string, len(p.Leases))
	for i, ref := range p.Leases {
		ids[i], lids[i] = ref.TaskID, ref.LeaseID
	}
	rows, err := s.pool.Query(ctx, `UPDATE tasks t SET lease_expires_at = $1
		FROM unnest($2::text[], $3::text[]) AS h (id, lease)
		WHERE t.id = h.id AND t.status = 'running' AND t.lease_id = h.lease
		RETURNING t.id, t.lease_id`, micros(p.Now.Add(p.TTL)), ids, lids)
	if err != nil {
		return nil, fmt.Errorf("postgres: heartbeat: %w", err)
	}
	defer rows.Close()
	held := make(map[store.LeaseRef]bool, len(p.Leases))
	for rows.Next() {
		var ref store.LeaseRef
		if err := rows.Scan(&ref.TaskID, &ref.LeaseID); err != nil {
			return nil, fmt.Errorf("postgres: heartbeat: %w", err)
		}
		held[ref] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: heartbeat: %w", err)
	}
	var lost []string
	for _, ref := range p.Leases {
		if !held[ref] {
			lost = append(lost, ref.TaskID)
		}
	}
	return lost, nil
}

// completeManySQL applies a batch of completions, one per task, given as
// parallel arrays, in one statement: each task running under the given
// lease moves to the given status, its result and log bodies are written
// or cleared, and its project's stored bytes change by the difference
// (the statement's snapshot still sees the bodies an earlier run left).
// Only a task past its first attempt can have such bodies: a retry
// completion keeps attempts and the next lease adds one, RequeueRunner
// undoes only its own lease, and RetryTask deletes the bodies when it
// resets attempts. It returns the IDs of the tasks it moved.
var completeManySQL = `WITH c AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
			$8::int[], $9::bigint[], $10::bigint[], $11::bigint[], $12::int[], $13::bytea[], $14::bytea[])
			AS c (id, lease_id, status, now, run_at, error_code, error_message, exit_code, peak, cpu, dur, inc, result, log)),
	u AS (
		UPDATE tasks t SET status = c.status,
			finished_at = CASE WHEN c.status = 'queued' THEN NULL ELSE c.now END,
			run_at = CASE WHEN c.status = 'queued' THEN c.run_at ELSE t.run_at END,
			started_at = CASE WHEN c.status = 'queued' THEN NULL ELSE t.started_at END,
			error_code = c.error_code, error_message = c.error_message, exit_code = c.exit_code,
			usage_peak_memory = c.peak, usage_cpu_ms = c.cpu, usage_duration_ms = c.dur,
			platform_tries = t.platform_tries + c.inc,
			lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		FROM c WHERE t.id = c.id AND t.status = 'running' AND t.lease_id = c.lease_id
		RETURNING t.seq, t.id, t.project, t.attempts),
	put AS (
		INSERT INTO task_bodies (seq, kind, data)
		SELECT u.seq, b.kind, b.data FROM u JOIN c ON c.id = u.id, LATERAL (VALUES (1, c.result), (2, c.log)) AS b (kind, data)
		WHERE length(b.data) > 0
		ON CONFLICT (seq, kind) DO UPDATE SET data = excluded.data),
	del AS (
		DELETE FROM task_bodies b USING u JOIN c ON c.id = u.id
		WHERE u.attempts > 1 AND b.seq = u.seq AND ((b.kind = 1 AND length(c.result) = 0) OR (b.kind = 2 AND length(c.log) = 0))),
	acct AS (` + usageAddSQL(`SELECT d.project, sum(d.n)::bigint FROM (
			SELECT u.project, length(c.result) + length(c.log) AS n FROM u JOIN c ON c.id = u.id
			UNION ALL
			SELECT u.project, -length(b.data) FROM task_bodies b JOIN u ON b.seq = u.seq WHERE u.attempts > 1 AND b.kind IN (1, 2)
		) d GROUP BY d.project`) + `)
	SELECT id FROM u`

// completeArgs are the columns of completeManySQL, one element per
// completion.
type completeArgs struct {
	id, lease, status []string
	now, runAt        []int64
	errCode, errMsg   []*string
	exit              []*int
	peak, cpu, dur    []*int64
	inc               []int
	result, log       [][]byte
}

func (a *completeArgs) add(c *store.Completion) {
	ec, em := taskErrorArgs(c.Error)
	peak, cpu, dur := usageArgs(c.Usage)
	inc := 0
	if c.Status == ward.StatusQueued && c.PlatformRetry {
		inc = 1
	}
	result, log := c.Result, c.Log
	if result == nil {
		result = []byte{}
	}
	if log == nil {
		log = []byte{}
	}
	a.id, a.lease, a.status = append(a.id, c.TaskID), append(a.lease, c.LeaseID), append(a.status, string(c.Status))
	a.now, a.runAt = append(a.now, micros(c.Now)), append(a.runAt, micros(c.RunAt))
	a.errCode, a.errMsg, a.exit = append(a.errCode, ec), append(a.errMsg, em), append(a.exit, c.ExitCode)
	a.peak, a.cpu, a.dur, a.inc = append(a.peak, peak), append(a.cpu, cpu), append(a.dur, dur), append(a.inc, inc)
	a.result, a.log = append(a.result, result), append(a.log, log)
}

// CompleteTasks applies finished runs in one transaction (one statement);
// errs[i] belongs to Completions[i], and the completions apply one after
// the other. A completion applies only while its task is running under its
// lease ID; otherwise its error is ward.ErrStaleLease and the task is not
// touched.
//
// Status succeeded or failed ends the task: finished_at = Now, error, exit
// code, usage, result and log as given, lease cleared. Status queued is a
// retry at RunAt: error, exit code, usage and log of the run stay visible,
// the lease and started_at are cleared, and a PlatformRetry counts one more
// platform try. Any other status is invalid_argument for that completion.
func (s *Store) CompleteTasks(ctx context.Context, p *store.CompleteParams) ([]error, error) {
	errs := make([]error, len(p.Completions))
	var args completeArgs
	var queued []int
	seen := make(map[string]bool, len(p.Completions))
	repeated := false
	for i := range p.Completions {
		c := &p.Completions[i]
		if err := c.Check(); err != nil {
			errs[i] = err
			continue
		}
		repeated = repeated || seen[c.TaskID]
		seen[c.TaskID] = true
		args.add(c)
		queued = append(queued, i)
	}
	if len(queued) == 0 {
		return errs, nil
	}
	if repeated {
		// One statement updates a task once; a batch naming a task twice
		// goes one completion at a time.
		return errs, s.completeEach(ctx, p, queued, errs)
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, completeManySQL, args.id, args.lease, args.status, args.now, args.runAt,
			args.errCode, args.errMsg, args.exit, args.peak, args.cpu, args.dur, args.inc, args.result, args.log)
		if err != nil {
			return fmt.Errorf("postgres: complete tasks: %w", err)
		}
		done, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("postgres: complete tasks: %w", err)
		}
		moved := make(map[string]bool, len(done))
		for _, id := range done {
			moved[id] = true
		}
		for _, i := range queued {
			if id := p.Completions[i].TaskID; !moved[id] {
				errs[i] = ward.Errorf(ward.CodeStaleLease, "task %s: lease not held", id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// completeEach applies the completions p.Completions[i], i in queued, one
// statement each, in order, in one transaction (one round trip).
func (s *Store) completeEach(ctx context.Context, p *store.CompleteParams, queued []int, errs []error) error {
	b := &pgx.Batch{}
	for _, i := range queued {
		var a completeArgs
		a.add(&p.Completions[i])
		b.Queue(completeManySQL, a.id, a.lease, a.status, a.now, a.runAt,
			a.errCode, a.errMsg, a.exit, a.peak, a.cpu, a.dur, a.inc, a.result, a.log)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, b)
		var first error
		for _, i := range queued {
			var id string
			err := br.QueryRow().Scan(&id)
			switch {
			case err == nil:
				errs[i] = nil
			case errors.Is(err, pgx.ErrNoRows):
				errs[i] = ward.Errorf(ward.CodeStaleLease, "task %s: lease not held", p.Completions[i].TaskID)
			case first == nil:
				first = fmt.Errorf("postgres: complete tasks: %w", err)
			}
		}
		if err := br.Close(); err != nil && first == nil {
			first = fmt.Errorf("postgres: complete tasks: %w", err)
		}
		return first
	})
}

// Reaping statements; running tasks are few, and indexed.
const (
	expireFailSQL = `UPDATE tasks SET status = 'failed', finished_at = $1,
		error_code = 'lease_expired', error_message = 'the lease expired',
		lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE status = 'running' AND lease_expires_at < $2 AND platform_tries >= $3 RETURNING id`
	expireRequeueSQL = `UPDATE tasks SET status = 'queued', run_at = $1,
		platform_tries = platform_tries + 1, error_code = 'lease_expired', error_message = 'the lease expired',
		started_at = NULL, lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE status = 'running' AND lease_expires_at < $2 AND platform_tries < $3 RETURNING id`
	requeueRunnerSQL = `UPDATE tasks SET status = 'queued', run_at = $1,
		attempts = greatest(attempts - 1, 0), started_at = NULL, lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE status = 'running' AND runner_id = $2 RETURNING id`
)

// ExpireLeases reaps running tasks whose lease expired before ExpiredBy
// (default Now). A task with fewer than PlatformRetries platform tries goes
// back to the queue at Now with one more platform try and error
// lease_expired (its attempt still counts); any other fails with
// lease_expired at Now. It returns the IDs of both kinds.
func (s *Store) ExpireLeases(ctx context.Context, p *store.ExpireParams) ([]string, error) {
	now, by := micros(p.Now), micros(p.Now)
	if !p.ExpiredBy.IsZero() {
		by = micros(p.ExpiredBy)
	}
	var ids []string
	err := s.tx(ctx, func(tx pgx.Tx) error {
		ids = ids[:0]
		for _, q := range []string{expireFailSQL, expireRequeueSQL} {
			got, err := queryIDs(ctx, tx, q, now, by, p.PlatformRetries)
			if err != nil {
				return fmt.Errorf("postgres: expire leases: %w", err)
			}
			ids = append(ids, got...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// RequeueRunner puts every task running for RunnerID back in the queue at
// Now. The interrupted run does not count: attempts goes down by one. The
// lease and started_at are cleared. It returns the task IDs.
func (s *Store) RequeueRunner(ctx context.Context, p *store.RequeueRunnerParams) ([]string, error) {
	ids, err := queryIDs(ctx, s.pool, requeueRunnerSQL, micros(p.Now), p.RunnerID)
	if err != nil {
		return nil, fmt.Errorf("postgres: requeue runner: %w", err)
	}
	return ids, nil
}

// queryIDs runs a statement returning one text column and collects it.
func queryIDs(ctx context.Context, q querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// CancelTask cancels a queued or running task of the project: status
// cancelled, finished_at = Now, error cancelled, lease cleared (so the
// runner's next heartbeat reports it lost and its completion is stale). A
// finished task → invalid_state; a missing one → not_found.
func (s *Store) CancelTask(ctx context.Context, p *store.CancelParams) (store.TaskRecord, error) {
	return s.transition(ctx, p.Project, p.ID, `UPDATE tasks SET status = 'cancelled', finished_at = $1,
		error_code = 'cancelled', error_message = 'the task was cancelled',
		lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE id = $2 AND project = $3 AND status IN ('queued', 'running') RETURNING `+taskCols+`, seq`,
		"cancel", micros(p.Now), false)
}

// RetryTask re-queues a finished task of the project at Now with a fresh
// budget: attempts and platform tries 0; error, exit code, usage, result,
// log, started_at and finished_at cleared. A queued or running task →
// invalid_state; a missing one → not_found.
func (s *Store) RetryTask(ctx context.Context, p *store.RetryParams) (store.TaskRecord, error) {
	return s.transition(ctx, p.Project, p.ID, `UPDATE tasks SET status = 'queued', run_at = $1,
		attempts = 0, platform_tries = 0, error_code = NULL, error_message = NULL, exit_code = NULL,
		usage_peak_memory = NULL, usage_cpu_ms = NULL, usage_duration_ms = NULL,
		started_at = NULL, finished_at = NULL, lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE id = $2 AND project = $3 AND status IN ('succeeded', 'failed', 'cancelled') RETURNING `+taskCols+`, seq`,
		"retry", micros(p.Now), true)
}

// transition applies a single-task UPDATE … RETURNING taskCols, seq; when
// it matches nothing it tells not_found from invalid_state. clearBodies
// deletes the task's result and log in the same transaction, and takes
// them off the project's stored bytes.
func (s *Store) transition(ctx context.Context, project, id, q, verb string, now int64, clearBodies bool) (store.TaskRecord, error) {
	var rec store.TaskRecord
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var seq int64
		var err error
		rec, err = scanTask(tx.QueryRow(ctx, q, now, id, project), &seq)
		if errors.Is(err, pgx.ErrNoRows) {
			var status string
			err := tx.QueryRow(ctx, `SELECT status FROM tasks WHERE id = $1 AND project = $2`, id, project).Scan(&status)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFoundTask(id)
			}
			if err != nil {
				return fmt.Errorf("postgres: %s task: %w", verb, err)
			}
			return ward.Errorf(ward.CodeInvalidState, "cannot %s task %s: it is %s", verb, id, status)
		}
		if err != nil {
			return fmt.Errorf("postgres: %s task: %w", verb, err)
		}
		if clearBodies {
			if _, err := tx.Exec(ctx, `WITH d AS (DELETE FROM task_bodies WHERE seq = $1 AND kind IN (1, 2) RETURNING data)
				`+usageAddSQL(`SELECT $2::text, -coalesce(sum(length(d.data)), 0)::bigint FROM d`), seq, project); err != nil {
				return fmt.Errorf("postgres: %s task: %w", verb, err)
			}
		}
		return nil
	})
	return rec, err
}
