package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// fnKey names a function across projects; function "" stands for the
// whole project (its max_running).
type fnKey struct{ project, function string }

// fnSlots is a function's concurrency limit, or a project's running quota,
// and its running count.
type fnSlots struct{ limit, running int }

// LeaseTasks moves up to Max due queued tasks (run_at <= Now) to running for
// RunnerID, in one write transaction. Tasks are taken by priority (highest
// first), then run_at, then insertion order. Each leased task gets a new
// random lease ID, lease_expires_at = Now+TTL, started_at = Now, and one more
// attempt (attempts counts every started run).
//
// Admission: the memory_mb of the tasks leased in one call sums to at most
// FreeMemoryMB; a task that does not fit is skipped and later ones are still
// considered. A function whose spec sets max_concurrency N > 0 never has more
// than N running tasks in the whole store, nor a project whose quotas set
// max_running N > 0. Tasks of a deleted function have no concurrency limit.
//
// Runtimes, when set, limits the lease to tasks of those runtimes: the
// others are filtered out by the same index scans, so a task of another
// runtime never blocks the tasks behind it.
func (s *Store) LeaseTasks(ctx context.Context, p *store.LeaseParams) ([]store.Lease, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	names, err := store.RuntimeNames(p.Runtimes)
	if err != nil {
		return nil, err
	}
	if p.Max <= 0 {
		return nil, nil
	}
	runtimes := padRuntimes(names)
	if err := s.prepareBatch(ctx, batchLease, p.Max); err != nil {
		return nil, err
	}
	if err := s.prepareBatch(ctx, batchLeaseScan, len(runtimes)); err != nil {
		return nil, err
	}
	now := micros(p.Now)
	expires := micros(p.Now.Add(p.TTL))
	qctx := context.WithoutCancel(ctx) // the transaction still ends with ctx
	var leases []store.Lease
	err = s.write(ctx, func(tx *sql.Tx) error {
		limits, err := s.functionSlots(qctx, tx)
		if err != nil {
			return err
		}
		picks, err := s.pickTasks(qctx, tx, p, runtimes, now, limits)
		if err != nil || len(picks) == 0 {
			return err
		}
		leases, err = s.leasePicked(qctx, tx, picks, p.RunnerID, now, expires)
		return err
	})
	if err != nil {
		return nil, err
	}
	return leases, nil
}

// leasePicked moves the picked tasks (by seq) to running under new leases
// and returns the leases in pick order.
func (s *Store) leasePicked(ctx context.Context, tx *sql.Tx, picks []int64, runner string, now, expires int64) ([]store.Lease, error) {
	ids, err := store.NewLeaseIDs(len(picks))
	if err != nil {
		return nil, err
	}
	pos := make(map[int64]int, len(picks))
	for i, seq := range picks {
		pos[seq] = i
	}
	leases := make([]store.Lease, len(picks))
	err = s.pieces(ctx, tx, batchLease, len(picks), func(st *sql.Stmt, lo, hi int) error {
		args := make([]any, 0, 2*(hi-lo)+3)
		for i := lo; i < hi; i++ {
			args = append(args, picks[i], ids[i])
		}
		args = append(args, now, runner, expires)
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("sqlite: lease tasks: %w", err)
		}
		defer rows.Close()
		n := 0
		var seq int64
		var payload []byte
		ts := newTaskScanner(&seq, &payload)
		for rows.Next() {
			rec, err := ts.scan(rows)
			if err != nil {
				return fmt.Errorf("sqlite: lease tasks: %w", err)
			}
			leases[pos[seq]] = store.Lease{Task: rec, LeaseID: rec.LeaseID, ExpiresAt: rec.LeaseExpiresAt, Payload: payload}
			n++
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: lease tasks: %w", err)
		}
		if n != hi-lo {
			return fmt.Errorf("sqlite: lease tasks: %d of %d picked tasks updated", n, hi-lo)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return leases, nil
}

// functionSlots reads the concurrency limit and running count of every
// function that has a limit, and of every project with max_running (under
// function "").
func (s *Store) functionSlots(ctx context.Context, tx *sql.Tx) (map[fnKey]*fnSlots, error) {
	rows, err := tx.StmtContext(ctx, s.st.leaseLimits).QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lease: read limits: %w", err)
	}
	defer rows.Close()
	limits := map[fnKey]*fnSlots{}
	for rows.Next() {
		var k fnKey
		var sl fnSlots
		if err := rows.Scan(&k.project, &k.function, &sl.limit, &sl.running); err != nil {
			return nil, fmt.Errorf("sqlite: lease: read limits: %w", err)
		}
		limits[k] = &sl
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: lease: read limits: %w", err)
	}
	return limits, nil
}

// pickTasks chooses the tasks to lease and returns their seqs. It scans each
// priority in lease order; every scan asks only for tasks of the runtimes
// (padRuntimes; none = every runtime) that fit the memory left and whose
// function is not at its limit at that moment, so a blocked function's
// backlog, or another runtime's, is filtered by the index scan and never
// starves the tasks behind it.
func (s *Store) pickTasks(ctx context.Context, tx *sql.Tx, p *store.LeaseParams, runtimes []any, now int64,
	limits map[fnKey]*fnSlots) ([]int64, error) {
	var picks []int64
	free := p.FreeMemoryMB
	var static *sql.Stmt
	for prio := ward.MaxPriority; prio >= ward.MinPriority && len(picks) < p.Max; prio-- {
		curRun, curSeq := int64(math.MinInt64), int64(0)
		for len(picks) < p.Max {
			need := p.Max - len(picks)
			args := append([]any{prio, now, free, curRun, curSeq}, runtimes...)
			var rows *sql.Rows
			var err error
			if q, extra := scanExcluding(limits, len(runtimes)); q == "" {
				if static == nil {
					if static, err = s.scanStmt(ctx, tx, len(runtimes)); err != nil {
						return nil, err
					}
				}
				rows, err = static.QueryContext(ctx, append(args, need)...)
			} else {
				rows, err = tx.QueryContext(ctx, q, append(append(args, extra...), need)...)
			}
			if err != nil {
				return nil, fmt.Errorf("sqlite: lease: scan: %w", err)
			}
			n := 0
			for rows.Next() {
				var seq, runAt, mem int64
				var k fnKey
				if err := rows.Scan(&seq, &runAt, &mem, &k.project, &k.function); err != nil {
					rows.Close()
					return nil, fmt.Errorf("sqlite: lease: scan: %w", err)
				}
				n++
				curRun, curSeq = runAt, seq
				if mem > int64(free) {
					continue
				}
				sl, ps := limits[k], limits[fnKey{project: k.project}]
				if sl != nil && sl.running >= sl.limit || ps != nil && ps.running >= ps.limit {
					continue
				}
				if sl != nil {
					sl.running++
				}
				if ps != nil {
					ps.running++
				}
				free -= int(mem)
				picks = append(picks, seq)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return nil, fmt.Errorf("sqlite: lease: scan: %w", err)
			}
			if n < need {
				break // this priority has no more candidates
			}
		}
	}
	return picks, nil
}

// scanStmt returns the prepared lease scan for n runtimes (0 = every
// runtime) bound to tx.
func (s *Store) scanStmt(ctx context.Context, tx *sql.Tx, n int) (*sql.Stmt, error) {
	if n == 0 {
		return tx.StmtContext(ctx, s.st.leaseScan), nil
	}
	return s.batchStmt(ctx, tx, batchLeaseScan, n)
}

// scanExcluding returns the scan query for n runtimes that also skips the
// functions and projects at their limit, with the extra arguments (after
// the runtimes); "" when none is.
func scanExcluding(limits map[fnKey]*fnSlots, runtimes int) (string, []any) {
	var fns, projects []any
	for k, sl := range limits {
		switch {
		case sl.running < sl.limit:
		case k.function == "":
			projects = append(projects, k.project)
		default:
			fns = append(fns, k.project, k.function)
		}
	}
	if len(fns) == 0 && len(projects) == 0 {
		return "", nil
	}
	q := leaseScanSQL + runtimesIn(runtimes)
	if len(fns) > 0 {
		q += ` AND (project, function) NOT IN (VALUES ` + strings.TrimSuffix(strings.Repeat(`(?, ?), `, len(fns)/2), `, `) + `)`
	}
	if len(projects) > 0 {
		q += ` AND project NOT IN (` + strings.TrimSuffix(strings.Repeat(`?, `, len(projects)), `, `) + `)`
	}
	return q + leaseScanOrder, append(fns, projects...)
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
	if err := s.prepareBatch(ctx, batchHeartbeat, len(p.Leases)); err != nil {
		return nil, err
	}
	expires := micros(p.Now.Add(p.TTL))
	qctx := context.WithoutCancel(ctx)
	held := make(map[store.LeaseRef]bool, len(p.Leases))
	err := s.write(ctx, func(tx *sql.Tx) error {
		clear(held)
		return s.pieces(qctx, tx, batchHeartbeat, len(p.Leases), func(st *sql.Stmt, lo, hi int) error {
			args := make([]any, 0, 2*(hi-lo)+1)
			for _, ref := range p.Leases[lo:hi] {
				args = append(args, ref.TaskID, ref.LeaseID)
			}
			args = append(args, expires)
			rows, err := st.QueryContext(qctx, args...)
			if err != nil {
				return fmt.Errorf("sqlite: heartbeat: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				var ref store.LeaseRef
				if err := rows.Scan(&ref.TaskID, &ref.LeaseID); err != nil {
					return fmt.Errorf("sqlite: heartbeat: %w", err)
				}
				held[ref] = true
			}
			return rows.Err()
		})
	})
	if err != nil {
		return nil, err
	}
	var lost []string
	for _, ref := range p.Leases {
		if !held[ref] {
			lost = append(lost, ref.TaskID)
		}
	}
	return lost, nil
}

// CompleteTasks applies finished runs in one transaction; errs[i] belongs to
// Completions[i], and the completions apply as if one after the other. A
// completion applies only while its task is running under its lease ID;
// otherwise its error is ward.ErrStaleLease and the task is not touched.
//
// Status succeeded or failed ends the task: finished_at = Now, error, exit
// code, usage, result and log as given, lease cleared. Status queued is a
// retry at RunAt: error, exit code, usage and log of the run stay visible,
// the lease and started_at are cleared, and a PlatformRetry counts one more
// platform try (attempts keeps counting the run: the runs a task used of its
// own budget are attempts - platform_tries). Any other status is
// invalid_argument for that completion.
func (s *Store) CompleteTasks(ctx context.Context, p *store.CompleteParams) ([]error, error) {
	errs := make([]error, len(p.Completions))
	// A task named twice is completed in a later round, after the first.
	var rounds [][]int
	seen := make(map[string]int, len(p.Completions))
	for i := range p.Completions {
		c := &p.Completions[i]
		if err := c.Check(); err != nil {
			errs[i] = err
			continue
		}
		k := seen[c.TaskID]
		seen[c.TaskID] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], i)
	}
	if len(rounds) == 0 {
		return errs, nil
	}
	for k, n := range map[batchKind]int{batchComplete: len(rounds[0]), batchPutBodies: 2 * len(rounds[0]), batchDeleteBodies: 2 * len(rounds[0])} {
		if err := s.prepareBatch(ctx, k, n); err != nil {
			return nil, err
		}
	}
	qctx := context.WithoutCancel(ctx)
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, round := range rounds {
			if err := s.pieces(qctx, tx, batchComplete, len(round), func(st *sql.Stmt, lo, hi int) error {
				return s.completeChunk(qctx, tx, st, p.Completions, round[lo:hi], errs)
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// completeChunk applies the completions cs[i] for i in idx (distinct task
// IDs), setting errs[i] for stale ones, and writes their bodies.
func (s *Store) completeChunk(ctx context.Context, tx *sql.Tx, st *sql.Stmt, cs []store.Completion, idx []int, errs []error) error {
	args := make([]any, 0, 12*len(idx))
	for _, i := range idx {
		c := &cs[i]
		ec, em := taskErrorArgs(c.Error)
		peak, cpu, dur := usageArgs(c.Usage)
		inc := 0
		if c.Status == ward.StatusQueued && c.PlatformRetry {
			inc = 1
		}
		args = append(args, c.TaskID, c.LeaseID, string(c.Status), micros(c.Now), micros(c.RunAt),
			ec, em, exitArg(c.ExitCode), peak, cpu, dur, inc)
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("sqlite: complete tasks: %w", err)
	}
	type done struct {
		seq, attempts int64
		project       string
	}
	applied := make(map[string]done, len(idx))
	for rows.Next() {
		var id string
		var d done
		if err := rows.Scan(&id, &d.seq, &d.attempts, &d.project); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: complete tasks: %w", err)
		}
		applied[id] = d
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("sqlite: complete tasks: %w", err)
	}

	var puts, dels, earlier []any
	// stored is the change of each project's stored bytes: the new result
	// and log, less what an earlier run left.
	stored := map[string]int64{}
	projects := map[int64]string{}
	for _, i := range idx {
		c := &cs[i]
		d, ok := applied[c.TaskID]
		if !ok {
			errs[i] = ward.Errorf(ward.CodeStaleLease, "task %s: lease not held", c.TaskID)
			continue
		}
		stored[d.project] += int64(len(c.Result) + len(c.Log))
		if d.attempts > 1 {
			earlier = append(earlier, bodyID(d.seq, kindResult), bodyID(d.seq, kindLog))
			projects[d.seq] = d.project
		}
		for _, b := range []struct {
			kind int
			data []byte
		}{{kindResult, c.Result}, {kindLog, c.Log}} {
			switch {
			case len(b.data) > 0:
				puts = append(puts, bodyID(d.seq, b.kind), b.data)
			case d.attempts > 1:
				// Only an earlier run of this attempt budget can have left
				// a body: a retry completion keeps attempts and the next
				// lease adds one, RequeueRunner undoes only its own lease,
				// and RetryTask deletes the bodies when it resets attempts.
				dels = append(dels, bodyID(d.seq, b.kind))
			}
		}
	}
	if err := earlierBodies(ctx, tx, earlier, projects, stored); err != nil {
		return err
	}
	if err := s.putBodies(ctx, tx, puts); err != nil {
		return fmt.Errorf("sqlite: complete tasks: store bodies: %w", err)
	}
	if err := s.deleteBodies(ctx, tx, dels); err != nil {
		return fmt.Errorf("sqlite: complete tasks: clear bodies: %w", err)
	}
	for project, n := range stored {
		if err := addStored(ctx, tx, project, n); err != nil {
			return err
		}
	}
	return nil
}

// earlierBodies subtracts from stored the sizes of the bodies ids (those an
// earlier run may have left, which the completion replaces or clears), of
// tasks whose project projects names by seq.
func earlierBodies(ctx context.Context, tx *sql.Tx, ids []any, projects map[int64]string, stored map[string]int64) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, length(data) FROM task_bodies WHERE id IN (`+
		strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+`)`, ids...)
	if err != nil {
		return fmt.Errorf("sqlite: complete tasks: read earlier bodies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return fmt.Errorf("sqlite: complete tasks: read earlier bodies: %w", err)
		}
		stored[projects[id/4]] -= n
	}
	return rows.Err()
}

// Reaping statements. Running tasks are few (at most the runners' slots), so
// these scan the partial index of running tasks.
const (
	expireFailSQL = `UPDATE tasks INDEXED BY tasks_running SET status = 'failed', finished_at = ?,
		error_code = 'lease_expired', error_message = 'the lease expired',
		lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE status = 'running' AND lease_expires_at < ? AND platform_tries >= ? RETURNING id`
	expireRequeueSQL = `UPDATE tasks INDEXED BY tasks_running SET status = 'queued', run_at = ?,
		platform_tries = platform_tries + 1, error_code = 'lease_expired', error_message = 'the lease expired',
		started_at = NULL, lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE status = 'running' AND lease_expires_at < ? AND platform_tries < ? RETURNING id`
	requeueRunnerSQL = `UPDATE tasks INDEXED BY tasks_running SET status = 'queued', run_at = ?,
		attempts = max(attempts - 1, 0), started_at = NULL, lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE status = 'running' AND runner_id = ? RETURNING id`
)

// ExpireLeases reaps running tasks whose lease expired before ExpiredBy
// (default Now). A task
// with fewer than PlatformRetries platform tries goes back to the queue at
// Now with one more platform try and error lease_expired (its attempt still
// counts); any other fails with lease_expired at Now. It returns the IDs of
// both kinds.
func (s *Store) ExpireLeases(ctx context.Context, p *store.ExpireParams) ([]string, error) {
	now, by := micros(p.Now), micros(p.Now)
	if !p.ExpiredBy.IsZero() {
		by = micros(p.ExpiredBy)
	}
	var ids []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		ids = ids[:0]
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{expireFailSQL,
				[]any{now, by, p.PlatformRetries}},
			{expireRequeueSQL,
				[]any{now, by, p.PlatformRetries}},
		} {
			got, err := queryIDs(ctx, tx, q.sql, q.args...)
			if err != nil {
				return fmt.Errorf("sqlite: expire leases: %w", err)
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
	var ids []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		ids, err = queryIDs(ctx, tx, requeueRunnerSQL, micros(p.Now), p.RunnerID)
		if err != nil {
			return fmt.Errorf("sqlite: requeue runner: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// queryIDs runs a statement returning one text column and collects it.
func queryIDs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
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
	return s.transition(ctx, p.Project, p.ID, `UPDATE tasks SET status = 'cancelled', finished_at = ?,
		error_code = 'cancelled', error_message = 'the task was cancelled',
		lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE id = ? AND project = ? AND status IN ('queued', 'running') RETURNING `+taskCols+`, seq`,
		"cancel", micros(p.Now), nil)
}

// RetryTask re-queues a finished task of the project at Now with a fresh
// budget: attempts and platform tries 0; error, exit code, usage, result,
// log, started_at and finished_at cleared. A queued or running task →
// invalid_state; a missing one → not_found.
func (s *Store) RetryTask(ctx context.Context, p *store.RetryParams) (store.TaskRecord, error) {
	return s.transition(ctx, p.Project, p.ID, `UPDATE tasks SET status = 'queued', run_at = ?,
		attempts = 0, platform_tries = 0, error_code = NULL, error_message = NULL, exit_code = NULL,
		usage_peak_memory = NULL, usage_cpu_ms = NULL, usage_duration_ms = NULL,
		started_at = NULL, finished_at = NULL, lease_id = NULL, runner_id = NULL, lease_expires_at = NULL
		WHERE id = ? AND project = ? AND status IN ('succeeded', 'failed', 'cancelled') RETURNING `+taskCols+`, seq`,
		"retry", micros(p.Now), func(tx *sql.Tx, seq int64) error {
			n, err := sumInts(ctx, tx, `DELETE FROM task_bodies WHERE id IN (?, ?) RETURNING length(data)`,
				bodyID(seq, kindResult), bodyID(seq, kindLog))
			if err != nil {
				return err
			}
			return addStored(ctx, tx, p.Project, -n)
		})
}

// transition applies a single-task UPDATE … RETURNING taskCols, seq; when
// it matches nothing it tells not_found from invalid_state. after, when set,
// runs next in the same transaction with the task's seq.
func (s *Store) transition(ctx context.Context, project, id, q, verb string, now int64,
	after func(tx *sql.Tx, seq int64) error) (store.TaskRecord, error) {
	var rec store.TaskRecord
	err := s.write(ctx, func(tx *sql.Tx) error {
		var seq int64
		var err error
		rec, err = scanTask(tx.QueryRowContext(ctx, q, now, id, project), &seq)
		if errors.Is(err, sql.ErrNoRows) {
			var status string
			err := tx.QueryRowContext(ctx, `SELECT status FROM tasks WHERE id = ? AND project = ?`, id, project).Scan(&status)
			if errors.Is(err, sql.ErrNoRows) {
				return notFoundTask(id)
			}
			if err != nil {
				return fmt.Errorf("sqlite: %s task: %w", verb, err)
			}
			return ward.Errorf(ward.CodeInvalidState, "cannot %s task %s: it is %s", verb, id, status)
		}
		if err != nil {
			return fmt.Errorf("sqlite: %s task: %w", verb, err)
		}
		if after != nil {
			if err := after(tx, seq); err != nil {
				return fmt.Errorf("sqlite: %s task: %w", verb, err)
			}
		}
		return nil
	})
	return rec, err
}
