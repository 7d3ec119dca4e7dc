package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/wardhq/ward/internal/store"
)

// purgeSelectSQL selects the seq and ID of the tasks a purge deletes: a
// project's finished tasks that finished before a time, oldest first, up to
// a limit (-1 = all), read through the index of finished tasks. withFunction
// adds a filter on the function.
func purgeSelectSQL(withFunction bool) string {
	q := `SELECT seq, id FROM tasks INDEXED BY tasks_project_finished
		WHERE project = ? AND finished_at IS NOT NULL AND finished_at < ?
		AND status IN ('succeeded', 'failed', 'cancelled')`
	if withFunction {
		q += ` AND function = ?`
	}
	return q + ` ORDER BY finished_at, seq LIMIT ?`
}

// purgeSQL returns the statements of a purge, in order: the tasks' bodies
// (returning each one's size), the idempotency keys that point at them,
// the tasks. Each selects the same tasks (the tasks go last, so the
// selection does not change in between) and takes the arguments of
// purgeSelectSQL.
func purgeSQL(withFunction bool) [3]string {
	sel := purgeSelectSQL(withFunction)
	bodies := `SELECT p.seq * 4 + k.kind FROM (` + sel + `) p, (SELECT ` + kindsSQL + `) k`
	return [3]string{
		`DELETE FROM task_bodies WHERE id IN (` + bodies + `) RETURNING length(data)`,
		`DELETE FROM idempotency_keys WHERE task_id IN (SELECT id FROM (` + sel + `))`,
		`DELETE FROM tasks WHERE seq IN (SELECT seq FROM (` + sel + `))`,
	}
}

// The statements of purges with and without a function filter.
var (
	purgeAll      = purgeSQL(false)
	purgeFunction = purgeSQL(true)
)

// PurgeTasks deletes, in one transaction, up to Limit (0 = all) tasks of
// Project (and of Function, when set) that are succeeded, failed or
// cancelled and finished before FinishedBefore, oldest first, with their
// bodies and the idempotency keys that point at them; the bodies' bytes
// leave the project's stored bytes. Queued and running tasks are never
// touched. It returns how many tasks it deleted. A negative
// limit → invalid_argument; a project with nothing to purge, or none, purges
// nothing.
func (s *Store) PurgeTasks(ctx context.Context, p *store.PurgeParams) (int, error) {
	if err := store.CheckLimit(p.Limit); err != nil {
		return 0, err
	}
	limit := int64(p.Limit)
	if limit == 0 {
		limit = -1 // SQLite: no limit
	}
	args := []any{p.Project, micros(p.FinishedBefore)}
	qs := purgeAll
	if p.Function != "" {
		args = append(args, p.Function)
		qs = purgeFunction
	}
	args = append(args, limit)
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		size, err := sumInts(ctx, tx, qs[0], args...)
		if err != nil {
			return fmt.Errorf("sqlite: purge tasks: %w", err)
		}
		var res sql.Result
		for _, q := range qs[1:] {
			if res, err = tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("sqlite: purge tasks: %w", err)
			}
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return addStored(ctx, tx, p.Project, -size)
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// sumInts runs a statement returning one integer column (a DELETE …
// RETURNING length(data)) and adds up its rows.
func sumInts(ctx context.Context, tx *sql.Tx, q string, args ...any) (int64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var sum int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, rows.Err()
}
