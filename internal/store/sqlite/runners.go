package sqlite

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// runnerCols are the runners columns scanned by scanRunner, before the
// running count.
const runnerCols = `id, name, state, version, drivers, slots, memory_mb, max_tasks, max_age_s, remote,
	registered_at, last_seen_at`

// getRunnerSQL reads one runner with its running count: the tasks running
// under a lease it holds, counted from the partial index of running tasks.
const getRunnerSQL = `SELECT ` + runnerCols + `, (SELECT count(*) FROM tasks INDEXED BY tasks_running_runner
	WHERE status = 'running' AND runner_id = runners.id) FROM runners WHERE id = ?`

// listRunnersSQL reads every runner by ID with its running count, counting
// all running tasks in one pass rather than once per runner.
var listRunnersSQL = `SELECT ` + prefixed("r.", runnerCols) + `, coalesce(c.n, 0) FROM runners r
	LEFT JOIN (SELECT runner_id, count(*) AS n FROM tasks INDEXED BY tasks_running_runner
		WHERE status = 'running' AND runner_id IS NOT NULL GROUP BY runner_id) c ON c.runner_id = r.id
	ORDER BY r.id`

// scanRunner scans runnerCols followed by extra destinations.
func scanRunner(sc scanner, extra ...any) (ward.Runner, error) {
	var (
		r                 ward.Runner
		state, drivers    string
		remote            int64
		registered, seen  int64
		slots, mem        int64
		maxTasks, maxAgeS int64
	)
	dest := append([]any{&r.ID, &r.Name, &state, &r.Version, &drivers, &slots, &mem, &maxTasks, &maxAgeS, &remote,
		&registered, &seen}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return ward.Runner{}, err
	}
	r.State = ward.RunnerState(state)
	if err := json.Unmarshal([]byte(drivers), &r.Drivers); err != nil {
		return ward.Runner{}, fmt.Errorf("runner %s: decode drivers: %w", r.ID, err)
	}
	if r.Drivers == nil {
		r.Drivers = []string{}
	}
	r.Slots, r.MemoryMB, r.MaxTasks, r.MaxAgeS = int(slots), int(mem), int(maxTasks), int(maxAgeS)
	r.Remote = remote != 0
	r.RegisteredAt, r.LastSeenAt = fromMicros(registered), fromMicros(seen)
	return r, nil
}

// scanRunnerRunning scans runnerCols and the running count.
func scanRunnerRunning(sc scanner) (ward.Runner, error) {
	var running int64
	r, err := scanRunner(sc, &running)
	r.Running = int(running)
	return r, err
}

// RegisterRunner inserts the runner, or replaces the row of a runner known
// by its ID (a new incarnation), as active, registered and seen at Now; it
// returns the runner with its running count (leases an earlier incarnation
// still holds count). p.Runner's State, Running and times are ignored. No
// ID or a negative capacity → invalid_argument.
func (s *Store) RegisterRunner(ctx context.Context, p *store.RegisterRunnerParams) (ward.Runner, error) {
	in := &p.Runner
	if err := p.Check(); err != nil {
		return ward.Runner{}, err
	}
	drivers := in.Drivers
	if drivers == nil {
		drivers = []string{}
	}
	enc, err := json.Marshal(drivers)
	if err != nil {
		return ward.Runner{}, fmt.Errorf("sqlite: register runner: encode drivers: %w", err)
	}
	remote := 0
	if in.Remote {
		remote = 1
	}
	now := micros(p.Now)
	var r ward.Runner
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO runners (`+runnerCols+`) VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, state = excluded.state, version = excluded.version,
				drivers = excluded.drivers, slots = excluded.slots, memory_mb = excluded.memory_mb,
				max_tasks = excluded.max_tasks, max_age_s = excluded.max_age_s, remote = excluded.remote,
				registered_at = excluded.registered_at, last_seen_at = excluded.last_seen_at`,
			in.ID, in.Name, in.Version, string(enc), in.Slots, in.MemoryMB, in.MaxTasks, in.MaxAgeS, remote, now, now); err != nil {
			return fmt.Errorf("sqlite: register runner: %w", err)
		}
		r, err = scanRunnerRunning(tx.QueryRowContext(ctx, getRunnerSQL, in.ID))
		if err != nil {
			return fmt.Errorf("sqlite: register runner: %w", err)
		}
		return nil
	})
	if err != nil {
		return ward.Runner{}, err
	}
	return r, nil
}

// GetRunner returns a runner with its running count; an unknown ID →
// not_found.
func (s *Store) GetRunner(ctx context.Context, id string) (ward.Runner, error) {
	r, err := scanRunnerRunning(s.row(ctx, getRunnerSQL, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ward.Runner{}, store.RunnerNotFound(id)
	}
	if err != nil {
		return ward.Runner{}, fmt.Errorf("sqlite: get runner: %w", err)
	}
	return r, nil
}

// ListRunners returns every runner ordered by ID, with running counts.
func (s *Store) ListRunners(ctx context.Context) ([]ward.Runner, error) {
	rows, err := s.r.QueryContext(ctx, listRunnersSQL)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list runners: %w", err)
	}
	defer rows.Close()
	out := []ward.Runner{}
	for rows.Next() {
		r, err := scanRunnerRunning(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list runners: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list runners: %w", err)
	}
	return out, nil
}

// TouchRunner sets a runner's last_seen_at to now and returns it, whatever
// its state; an unknown ID → not_found.
func (s *Store) TouchRunner(ctx context.Context, id string, now time.Time) (ward.Runner, error) {
	var r ward.Runner
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runners SET last_seen_at = ? WHERE id = ?`, micros(now), id)
		if err != nil {
			return fmt.Errorf("sqlite: touch runner: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: touch runner: %w", err)
		} else if n == 0 {
			return store.RunnerNotFound(id)
		}
		r, err = scanRunnerRunning(tx.QueryRowContext(ctx, getRunnerSQL, id))
		if err != nil {
			return fmt.Errorf("sqlite: touch runner: %w", err)
		}
		return nil
	})
	if err != nil {
		return ward.Runner{}, err
	}
	return r, nil
}

// SetRunnerState moves a runner forward along active → draining → drained
// (active → drained directly too) and returns it. Its current state is a
// no-op; a move back → invalid_state; an unknown runner → not_found; an
// unknown state → invalid_argument. Its times are not changed.
func (s *Store) SetRunnerState(ctx context.Context, p *store.SetRunnerStateParams) (ward.Runner, error) {
	if err := p.Check(); err != nil {
		return ward.Runner{}, err
	}
	var r ward.Runner
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = scanRunnerRunning(tx.QueryRowContext(ctx, getRunnerSQL, p.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return store.RunnerNotFound(p.ID)
		}
		if err != nil {
			return fmt.Errorf("sqlite: set runner state: %w", err)
		}
		if change, err := p.Move(r.State); !change {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE runners SET state = ? WHERE id = ?`, string(p.State), p.ID); err != nil {
			return fmt.Errorf("sqlite: set runner state: %w", err)
		}
		r.State = p.State
		return nil
	})
	if err != nil {
		return ward.Runner{}, err
	}
	return r, nil
}

// CreateJoinToken records a join token: its ID, the hash of its secret and
// who made it, when. No ID or no hash → invalid_argument; a repeated ID →
// already_exists.
func (s *Store) CreateJoinToken(ctx context.Context, p *store.CreateJoinTokenParams) error {
	if err := p.Check(); err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO join_tokens (id, hash, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			p.ID, p.Hash, p.CreatedBy, micros(p.CreatedAt), micros(p.ExpiresAt))
		if err != nil {
			return fmt.Errorf("sqlite: create join token: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: create join token: %w", err)
		} else if n == 0 {
			return ward.Errorf(ward.CodeAlreadyExists, "join token %s already exists", p.ID)
		}
		return nil
	})
}

// ConsumeJoinToken marks a join token used at Now by RunnerID, once. The
// token must exist, be unused and expire after Now, and its stored hash
// must equal Hash (compared in constant time); otherwise nothing changes
// and the error is join_token_invalid. The check and the update run in one
// write transaction, and writes are serialized, so a token cannot be used
// twice. No runner ID → invalid_argument.
func (s *Store) ConsumeJoinToken(ctx context.Context, p *store.ConsumeJoinTokenParams) error {
	if err := p.Check(); err != nil {
		return err
	}
	now := micros(p.Now)
	return s.write(ctx, func(tx *sql.Tx) error {
		var (
			hash    []byte
			expires int64
			used    sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT hash, expires_at, used_at FROM join_tokens WHERE id = ?`, p.ID).
			Scan(&hash, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return store.InvalidJoinToken()
		}
		if err != nil {
			return fmt.Errorf("sqlite: consume join token: %w", err)
		}
		if subtle.ConstantTimeCompare(hash, p.Hash) != 1 || used.Valid || expires <= now {
			return store.InvalidJoinToken()
		}
		res, err := tx.ExecContext(ctx, `UPDATE join_tokens SET used_at = ?, runner_id = ?
			WHERE id = ? AND used_at IS NULL AND expires_at > ?`, now, p.RunnerID, p.ID, now)
		if err != nil {
			return fmt.Errorf("sqlite: consume join token: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: consume join token: %w", err)
		} else if n != 1 {
			return store.InvalidJoinToken()
		}
		return nil
	})
}
