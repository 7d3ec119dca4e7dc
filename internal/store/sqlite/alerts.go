package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := scopeExists(ctx, tx, p.Project, ""); err != nil {
			return err
		}
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM alert_rules WHERE project = ? AND name = ?`, p.Project, p.Name).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			res.Created = true
		case err != nil:
			return fmt.Errorf("sqlite: put alert: %w", err)
		}
		update := `spec = excluded.spec, for_ms = excluded.for_ms, updated_at = excluded.updated_at`
		if !p.KeepSecret {
			update += `, secret = excluded.secret`
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_rules (project, name, spec, for_ms, secret, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project, name) DO UPDATE SET `+update,
			p.Project, p.Name, spec, p.ForMs, p.Secret, micros(p.Now), micros(p.Now)); err != nil {
			return fmt.Errorf("sqlite: put alert: %w", err)
		}
		rec, err := store.ScanAlert(tx.QueryRowContext(ctx, `SELECT `+store.AlertCols+store.AlertFrom+
			` WHERE r.project = ? AND r.name = ?`, p.Project, p.Name))
		if err != nil {
			return fmt.Errorf("sqlite: put alert: %w", err)
		}
		res.Alert = rec.Alert
		return nil
	})
	return res, err
}

// GetAlert returns one rule; see store.AlertStore.
func (s *Store) GetAlert(ctx context.Context, project, name string) (store.AlertRecord, error) {
	rec, err := store.ScanAlert(s.r.QueryRowContext(ctx, `SELECT `+store.AlertCols+store.AlertFrom+
		` WHERE r.project = ? AND r.name = ?`, project, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.AlertRecord{}, store.AlertNotFound(name)
	case err != nil:
		return store.AlertRecord{}, fmt.Errorf("sqlite: get alert: %w", err)
	}
	return rec, nil
}

// ListAlerts returns rules; see store.AlertStore.
func (s *Store) ListAlerts(ctx context.Context, project string) ([]store.AlertRecord, error) {
	q := `SELECT ` + store.AlertCols + store.AlertFrom
	var args []any
	if project != "" {
		q += ` WHERE r.project = ?`
		args = append(args, project)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY r.project, r.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list alerts: %w", err)
	}
	defer rows.Close()
	out := []store.AlertRecord{}
	for rows.Next() {
		rec, err := store.ScanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list alerts: %w", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list alerts: %w", err)
	}
	return out, nil
}

// CountAlerts returns how many rules a project has.
func (s *Store) CountAlerts(ctx context.Context, project string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM alert_rules WHERE project = ?`, project).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count alerts: %w", err)
	}
	return n, nil
}

// DeleteAlert removes a rule, its state and its history.
func (s *Store) DeleteAlert(ctx context.Context, project, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM alert_rules WHERE project = ? AND name = ?`, project, name)
		if err != nil {
			return fmt.Errorf("sqlite: delete alert: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: delete alert: %w", err)
		} else if n == 0 {
			return store.AlertNotFound(name)
		}
		for _, q := range []string{`DELETE FROM alert_states WHERE project = ? AND name = ?`, `DELETE FROM alert_events WHERE project = ? AND name = ?`} {
			if _, err := tx.ExecContext(ctx, q, project, name); err != nil {
				return fmt.Errorf("sqlite: delete alert: %w", err)
			}
		}
		return nil
	})
}

// GetAlertState returns the state kept under a name.
func (s *Store) GetAlertState(ctx context.Context, project, name string) (store.AlertStateRecord, error) {
	st, err := store.ScanAlertState(s.r.QueryRowContext(ctx, `SELECT `+store.AlertStateCols+` FROM alert_states
		WHERE project = ? AND name = ?`, project, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.AlertStateRecord{State: ward.AlertOK}, nil
	case err != nil:
		return store.AlertStateRecord{}, fmt.Errorf("sqlite: get alert state: %w", err)
	}
	return st, nil
}

// SetAlertStates records evaluations in one transaction.
func (s *Store) SetAlertStates(ctx context.Context, p *store.SetAlertStatesParams) error {
	if len(p.States) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, u := range p.States {
			var one int
			exists := `SELECT 1 FROM alert_rules WHERE project = ? AND name = ?`
			args := []any{u.Project, u.Name}
			if store.IsBuiltinAlert(u.Name) {
				exists, args = `SELECT 1 FROM projects WHERE name = ?`, []any{u.Project}
			}
			switch err := tx.QueryRowContext(ctx, exists, args...).Scan(&one); {
			case errors.Is(err, sql.ErrNoRows):
				continue
			case err != nil:
				return fmt.Errorf("sqlite: set alert state: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO alert_states (project, name, state, value, since, evaluated_at)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project, name) DO UPDATE SET state = excluded.state,
				value = excluded.value, since = excluded.since, evaluated_at = excluded.evaluated_at`,
				u.Project, u.Name, u.State, u.Value, micros(u.Since), micros(u.EvaluatedAt)); err != nil {
				return fmt.Errorf("sqlite: set alert state: %w", err)
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
	return s.write(ctx, func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM alert_rules WHERE project = ? AND name = ?`, p.Project, p.Name).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return store.AlertNotFound(p.Name)
		case err != nil:
			return fmt.Errorf("sqlite: add alert event: %w", err)
		}
		return addAlertEvent(ctx, tx, p.Project, p.Name, &p.Event)
	})
}

// addAlertEvent inserts an event and drops the rule's events past the
// newest ward.MaxAlertEvents.
func addAlertEvent(ctx context.Context, tx *sql.Tx, project, name string, ev *ward.AlertEvent) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO alert_events (project, name, at, kind, state, value, attempt, status_code, error, duration_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, project, name, micros(ev.At), ev.Kind, ev.State, ev.Value,
		ev.Attempt, ev.StatusCode, ev.Error, ev.DurationMs); err != nil {
		return fmt.Errorf("sqlite: add alert event: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM alert_events WHERE project = ? AND name = ? AND seq <= (
		SELECT seq FROM alert_events WHERE project = ? AND name = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
		project, name, project, name, ward.MaxAlertEvents); err != nil {
		return fmt.Errorf("sqlite: trim alert events: %w", err)
	}
	return nil
}

// ListAlertEvents returns a rule's history, newest first.
func (s *Store) ListAlertEvents(ctx context.Context, p *store.ListAlertEventsParams) ([]ward.AlertEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+store.AlertEventCols+` FROM alert_events
		WHERE project = ? AND name = ? ORDER BY seq DESC LIMIT ?`, p.Project, p.Name, p.EventLimit())
	if err != nil {
		return nil, fmt.Errorf("sqlite: list alert events: %w", err)
	}
	defer rows.Close()
	out := []ward.AlertEvent{}
	for rows.Next() {
		ev, err := store.ScanAlertEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list alert events: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list alert events: %w", err)
	}
	return out, nil
}

// TaskWindows implements store.AlertStore: one read of the project's
// tasks created in the window, one of those finished in it.
func (s *Store) TaskWindows(ctx context.Context, p *store.TaskWindowParams) ([]store.FunctionWindow, error) {
	limit := p.WindowLimit()
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: task windows: %w", err)
	}
	defer tx.Rollback()
	var b store.WindowsBuilder
	rows, err := tx.QueryContext(ctx, `SELECT function, count(*) FROM (SELECT function FROM tasks INDEXED BY tasks_project_created
		WHERE project = ? AND created_at >= ? AND created_at < ? AND (? = '' OR function = ?)
		ORDER BY created_at DESC LIMIT ?) GROUP BY function`,
		p.Project, micros(p.Since), micros(p.Until), p.Function, p.Function, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: task windows: %w", err)
	}
	for rows.Next() {
		var fn string
		var n int
		if err := rows.Scan(&fn, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: task windows: %w", err)
		}
		b.Submitted(fn, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: task windows: %w", err)
	}
	if p.SubmittedOnly {
		return b.Windows(), nil
	}
	rows, err = tx.QueryContext(ctx, `SELECT function, status, started_at, run_at FROM tasks INDEXED BY tasks_project_finished
		WHERE project = ? AND finished_at IS NOT NULL AND finished_at >= ? AND finished_at < ? AND (? = '' OR function = ?)
		ORDER BY finished_at DESC LIMIT ?`, p.Project, micros(p.Since), micros(p.Until), p.Function, p.Function, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: task windows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fn, status string
		var started sql.NullInt64
		var runAt int64
		if err := rows.Scan(&fn, &status, &started, &runAt); err != nil {
			return nil, fmt.Errorf("sqlite: task windows: %w", err)
		}
		var st *time.Time
		if started.Valid {
			t := fromMicros(started.Int64)
			st = &t
		}
		b.Finished(fn, ward.Status(status), st, fromMicros(runAt))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: task windows: %w", err)
	}
	return b.Windows(), nil
}

// AcquireLock takes or renews a named lock.
func (s *Store) AcquireLock(ctx context.Context, p *store.AcquireLockParams) (bool, error) {
	var holder string
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO locks (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE locks.holder = excluded.holder OR locks.expires_at <= ?`,
			p.Name, p.Holder, micros(p.Now.Add(p.TTL)), micros(p.Now)); err != nil {
			return fmt.Errorf("sqlite: acquire lock: %w", err)
		}
		return tx.QueryRowContext(ctx, `SELECT holder FROM locks WHERE name = ?`, p.Name).Scan(&holder)
	})
	if err != nil {
		return false, err
	}
	return holder == p.Holder, nil
}
