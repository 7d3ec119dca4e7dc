package postgres

import (
	"context"
	"fmt"

	"github.com/wardhq/ward/internal/store"
)

// taskCountsSQL counts each function's queued tasks over the queued
// partial index and its running tasks over the running one; the functions
// table adds the functions with neither.
const taskCountsSQL = `SELECT project, function, sum(due)::bigint, sum(delayed)::bigint, sum(running)::bigint FROM (
	SELECT project, function, count(*) FILTER (WHERE run_at <= $1) AS due,
		count(*) FILTER (WHERE run_at > $1) AS delayed, 0 AS running
		FROM tasks WHERE status = 'queued' GROUP BY project, function
	UNION ALL
	SELECT project, function, 0, 0, count(*) FROM tasks WHERE status = 'running' GROUP BY project, function
	UNION ALL
	SELECT project, name, 0, 0, 0 FROM functions
) AS c GROUP BY project, function ORDER BY project, function`

// TaskCounts returns every function's due, delayed and running tasks. Its
// cost grows with the queued and running tasks (a pass over each partial
// index, with a heap read per queued task) and the functions.
func (s *Store) TaskCounts(ctx context.Context, p *store.TaskCountsParams) ([]store.TaskCount, error) {
	rows, err := s.pool.Query(ctx, taskCountsSQL, micros(p.Now))
	if err != nil {
		return nil, fmt.Errorf("postgres: task counts: %w", err)
	}
	defer rows.Close()
	var out []store.TaskCount
	for rows.Next() {
		var c store.TaskCount
		if err := rows.Scan(&c.Project, &c.Function, &c.Due, &c.Delayed, &c.Running); err != nil {
			return nil, fmt.Errorf("postgres: task counts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: task counts: %w", err)
	}
	return out, nil
}
