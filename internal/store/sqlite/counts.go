package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/wardhq/ward/internal/store"
)

// Task counts read the queued tasks straight off the queued index (it
// covers project, function and run_at) and group them here: SQLite would
// sort every row for a GROUP BY, which costs several times the scan. The
// running tasks are few and their index is in function order, and the
// functions table adds the functions with no task at all.
const (
	queuedCountsSQL  = `SELECT project, function, run_at <= ? FROM tasks INDEXED BY tasks_queued WHERE status = 'queued'`
	runningCountsSQL = `SELECT project, function, count(*) FROM tasks INDEXED BY tasks_running
		WHERE status = 'running' GROUP BY project, function`
	functionNamesSQL = `SELECT project, name FROM functions`
)

// TaskCounts returns every function's due, delayed and running tasks, in
// one read transaction. Its cost grows with the queued tasks (one pass over
// their index, about half a microsecond each), the running ones and the
// functions; it reads on the read pool, never blocking writers.
func (s *Store) TaskCounts(ctx context.Context, p *store.TaskCountsParams) ([]store.TaskCount, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: task counts: %w", err)
	}
	defer tx.Rollback()
	counts := taskCounts{}
	if err := counts.readQueued(ctx, tx, micros(p.Now)); err != nil {
		return nil, fmt.Errorf("sqlite: task counts: %w", err)
	}
	if err := counts.readRunning(ctx, tx); err != nil {
		return nil, fmt.Errorf("sqlite: task counts: %w", err)
	}
	if err := counts.readFunctions(ctx, tx); err != nil {
		return nil, fmt.Errorf("sqlite: task counts: %w", err)
	}
	return counts.list(), nil
}

// taskCounts are counts by project, then function.
type taskCounts map[string]map[string]*store.TaskCount

// at returns the counts of a function, made on first use. Looking up an
// existing one from bytes does not allocate.
func (c taskCounts) at(project, function []byte) *store.TaskCount {
	fns := c[string(project)]
	if fns == nil {
		fns = map[string]*store.TaskCount{}
		c[string(project)] = fns
	}
	tc := fns[string(function)]
	if tc == nil {
		tc = &store.TaskCount{Project: string(project), Function: string(function)}
		fns[tc.Function] = tc
	}
	return tc
}

func (c taskCounts) readQueued(ctx context.Context, tx *sql.Tx, now int64) error {
	rows, err := tx.QueryContext(ctx, queuedCountsSQL, now)
	if err != nil {
		return err
	}
	defer rows.Close()
	var project, function sql.RawBytes
	var due bool
	for rows.Next() {
		if err := rows.Scan(&project, &function, &due); err != nil {
			return err
		}
		if tc := c.at(project, function); due {
			tc.Due++
		} else {
			tc.Delayed++
		}
	}
	return rows.Err()
}

func (c taskCounts) readRunning(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, runningCountsSQL)
	if err != nil {
		return err
	}
	defer rows.Close()
	var project, function sql.RawBytes
	var n int
	for rows.Next() {
		if err := rows.Scan(&project, &function, &n); err != nil {
			return err
		}
		c.at(project, function).Running = n
	}
	return rows.Err()
}

func (c taskCounts) readFunctions(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, functionNamesSQL)
	if err != nil {
		return err
	}
	defer rows.Close()
	var project, function sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&project, &function); err != nil {
			return err
		}
		c.at(project, function)
	}
	return rows.Err()
}

// list returns the counts in project and function order.
func (c taskCounts) list() []store.TaskCount {
	var out []store.TaskCount
	for _, fns := range c {
		for _, tc := range fns {
			out = append(out, *tc)
		}
	}
	slices.SortFunc(out, func(a, b store.TaskCount) int {
		if n := strings.Compare(a.Project, b.Project); n != 0 {
			return n
		}
		return strings.Compare(a.Function, b.Function)
	})
	return out
}
