package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// PutAlert creates or replaces a rule; see store.AlertStore.
func (s *Store) PutAlert(ctx context.Context, p *store.PutAlertParams) (store.PutAlertResult, error) {
	if err := p.Check(); err != nil {
		return store.PutAlertResult{}, err
	}
	spec, err := store.EncodeAlertSpec(p.Spec)
	if err != nil {
		return store.PutAlertResult{}, err
	}
	var res store.PutAlertResult
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := scopeExists(ctx, tx, p.Project, "", true); err != nil {
			return err
		}
		update := `spec = EXCLUDED.spec, for_ms = EXCLUDED.for_ms, updated_at = EXCLUDED.updated_at`
		if !p.KeepSecret {
			update += `, secret = EXCLUDED.secret`
		}
		if err := tx.QueryRow(ctx, `INSERT INTO alert_rules (project, name, spec, for_ms, secret, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (project, name) DO UPDATE SET `+update+`
			RETURNING (xmax = 0)`, p.Project, p.Name, spec, p.ForMs, p.Secret, micros(p.Now)).Scan(&res.Created); err != nil {
			return fmt.Errorf("postgres: put alert: %w", err)
		}
		rec, err := store.ScanAlert(tx.QueryRow(ctx, `SELECT `+store.AlertCols+store.AlertFrom+
			` WHERE r.project = $1 AND r.name = $2`, p.Project, p.Name))
		if err != nil {
			return fmt.Errorf("postgres: put alert: %w", err)
		}
		res.Alert = rec.Alert
		return nil
	})
	return res, err
}

// GetAlert returns one rule; see store.AlertStore.
func (s *Store) GetAlert(ctx context.Context, project, name string) (store.AlertRecord, error) {
	rec, err := store.ScanAlert(s.pool.QueryRow(ctx, `SELECT `+store.AlertCols+store.AlertFrom+
		` WHERE r.project = $1 AND r.name = $2`, project, name))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.AlertRecord{}, store.AlertNotFound(name)
	case err != nil:
		return store.AlertRecord{}, fmt.Errorf("postgres: get alert: %w", err)
	}
	return rec, nil
}

// ListAlerts returns rules; see store.AlertStore.
func (s *Store) ListAlerts(ctx context.Context, project string) ([]store.AlertRecord, error) {
	out, err := collect(ctx, s.pool, store.ScanAlert, `SELECT `+store.AlertCols+store.AlertFrom+
		` WHERE ($1::text = '' OR r.project = $1) ORDER BY r.project, r.name`, project)
	if err != nil {
		return nil, fmt.Errorf("postgres: list alerts: %w", err)
	}
	return out, nil
}

// CountAlerts returns how many rules a project has.
func (s *Store) CountAlerts(ctx context.Context, project string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM alert_rules WHERE project = $1`, project).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count alerts: %w", err)
	}
	return n, nil
}

// DeleteAlert removes a rule, its state and its history.
func (s *Store) DeleteAlert(ctx context.Context, project, name string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM alert_rules WHERE project = $1 AND name = $2`, project, name)
		if err != nil {
			return fmt.Errorf("postgres: delete alert: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return store.AlertNotFound(name)
		}
		for _, q := range []string{`DELETE FROM alert_states WHERE project = $1 AND name = $2`, `DELETE FROM alert_events WHERE project = $1 AND name = $2`} {
			if _, err := tx.Exec(ctx, q, project, name); err != nil {
				return fmt.Errorf("postgres: delete alert: %w", err)
			}
		}
		return nil
	})
}

// GetAlertState returns the state kept under a name.
func (s *Store) GetAlertState(ctx context.Context, project, name string) (store.AlertStateRecord, error) {
	st, err := store.ScanAlertState(s.pool.QueryRow(ctx, `SELECT `+store.AlertStateCols+` FROM alert_states
		WHERE project = $1 AND name = $2`, project, name))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.AlertStateRecord{State: ward.AlertOK}, nil
	case err != nil:
		return store.AlertStateRecord{}, fmt.Errorf("postgres: get alert state: %w", err)
	}
	return st, nil
}

// SetAlertStates records evaluations in one transaction. The rule's row
// (or, for a builtin rule, the project's) is share-locked, so a concurrent
// delete waits for it or is seen.
func (s *Store) SetAlertStates(ctx context.Context, p *store.SetAlertStatesParams) error {
	if len(p.States) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		for _, u := range p.States {
			var one int
			exists := `SELECT 1 FROM alert_rules WHERE project = $1 AND name = $2 FOR SHARE`
			args := []any{u.Project, u.Name}
			if store.IsBuiltinAlert(u.Name) {
				exists, args = `SELECT 1 FROM projects WHERE name = $1 FOR SHARE`, []any{u.Project}
			}
			switch err := tx.QueryRow(ctx, exists, args...).Scan(&one); {
			case errors.Is(err, pgx.ErrNoRows):
				continue
			case err != nil:
				return fmt.Errorf("postgres: set alert state: %w", err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO alert_states (project, name, state, value, since, evaluated_at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project, name) DO UPDATE SET state = EXCLUDED.state,
				value = EXCLUDED.value, since = EXCLUDED.since, evaluated_at = EXCLUDED.evaluated_at`,
				u.Project, u.Name, string(u.State), u.Value, micros(u.Since), micros(u.EvaluatedAt)); err != nil {
				return fmt.Errorf("postgres: set alert state: %w", err)
			}
			if u.Event != nil {
				if err := addAlertEvent(ctx, tx, u.Project, u.Name, u.Event); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// AddAlertEvent appends one history entry.
func (s *Store) AddAlertEvent(ctx context.Context, p *store.AddAlertEventParams) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		switch err := tx.QueryRow(ctx, `SELECT 1 FROM alert_rules WHERE project = $1 AND name = $2 FOR SHARE`, p.Project, p.Name).Scan(&one); {
		case errors.Is(err, pgx.ErrNoRows):
			return store.AlertNotFound(p.Name)
		case err != nil:
			return fmt.Errorf("postgres: add alert event: %w", err)
		}
		return addAlertEvent(ctx, tx, p.Project, p.Name, &p.Event)
	})
}

// addAlertEvent inserts an event and drops the rule's events past the
// newest ward.MaxAlertEvents.
func addAlertEvent(ctx context.Context, tx pgx.Tx, project, name string, ev *ward.AlertEvent) error {
	if _, err := tx.Exec(ctx, `INSERT INTO alert_events (project, name, at, kind, state, value, attempt, status_code, error, duration_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, project, name, micros(ev.At), string(ev.Kind), string(ev.State), ev.Value,
		ev.Attempt, ev.StatusCode, ev.Error, ev.DurationMs); err != nil {
		return fmt.Errorf("postgres: add alert event: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM alert_events WHERE project = $1 AND name = $2 AND seq <= (
		SELECT seq FROM alert_events WHERE project = $1 AND name = $2 ORDER BY seq DESC LIMIT 1 OFFSET $3)`,
		project, name, ward.MaxAlertEvents); err != nil {
		return fmt.Errorf("postgres: trim alert events: %w", err)
	}
	return nil
}

// ListAlertEvents returns a rule's history, newest first.
func (s *Store) ListAlertEvents(ctx context.Context, p *store.ListAlertEventsParams) ([]ward.AlertEvent, error) {
	out, err := collect(ctx, s.pool, store.ScanAlertEvent, `SELECT `+store.AlertEventCols+` FROM alert_events
		WHERE project = $1 AND name = $2 ORDER BY seq DESC LIMIT $3`, p.Project, p.Name, p.EventLimit())
	if err != nil {
		return nil, fmt.Errorf("postgres: list alert events: %w", err)
	}
	return out, nil
}

// TaskWindows implements store.AlertStore: one read of the project's
// tasks created in the window, one of those finished in it.
func (s *Store) TaskWindows(ctx context.Context, p *store.TaskWindowParams) ([]store.FunctionWindow, error) {
	limit := p.WindowLimit()
	var b store.WindowsBuilder
	rows, err := s.pool.Query(ctx, `SELECT function, count(*) FROM (SELECT function FROM tasks
		WHERE project = $1 AND created_at >= $2 AND created_at < $3 AND ($4::text = '' OR function = $4)
		ORDER BY created_at DESC LIMIT $5) AS w GROUP BY function`,
		p.Project, micros(p.Since), micros(p.Until), p.Function, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: task windows: %w", err)
	}
	for rows.Next() {
		var fn string
		var n int
		if err := rows.Scan(&fn, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: task windows: %w", err)
		}
		b.Submitted(fn, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: task windows: %w", err)
	}
	if p.SubmittedOnly {
		return b.Windows(), nil
	}
	rows, err = s.pool.Query(ctx, `SELECT function, status, started_at, run_at FROM tasks
		WHERE project = $1 AND finished_at IS NOT NULL AND finished_at >= $2 AND finished_at < $3 AND ($4::text = '' OR function = $4)
		ORDER BY finished_at DESC LIMIT $5`, p.Project, micros(p.Since), micros(p.Until), p.Function, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: task windows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fn, status string
		var started *int64
		var runAt int64
		if err := rows.Scan(&fn, &status, &started, &runAt); err != nil {
			return nil, fmt.Errorf("postgres: task windows: %w", err)
		}
		b.Finished(fn, ward.Status(status), optTime(started), fromMicros(runAt))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: task windows: %w", err)
	}
	return b.Windows(), nil
}

// AcquireLock takes or renews a named lock: the upsert updates the row
// only for its holder or once it expired, and returns it only then.
func (s *Store) AcquireLock(ctx context.Context, p *store.AcquireLockParams) (bool, error) {
	var holder string
	err := s.pool.QueryRow(ctx, `INSERT INTO locks (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
		WHERE locks.holder = EXCLUDED.holder OR locks.expires_at <= $4 RETURNING holder`,
		p.Name, p.Holder, micros(p.Now.Add(p.TTL)), micros(p.Now)).Scan(&holder)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("postgres: acquire lock: %w", err)
	}
	return holder == p.Holder, nil
}
