package postgres

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// runnerCols are the runners columns scanned by scanRunner, followed by the
// runner's running count: the tasks running under a lease it holds (read
// from the index tasks_running_runner).
const runnerCols = `id, name, state, version, drivers, slots, memory_mb, max_tasks, max_age_s, remote,
	registered_at, last_seen_at,
	(SELECT count(*) FROM tasks t WHERE t.status = 'running' AND t.runner_id = runners.id)`

func scanRunner(sc scanner) (ward.Runner, error) {
	var (
		r                         ward.Runner
		state                     string
		slots, mem, maxT, maxAge  int64
		registered, seen, running int64
	)
	if err := sc.Scan(&r.ID, &r.Name, &state, &r.Version, &r.Drivers, &slots, &mem, &maxT, &maxAge, &r.Remote,
		&registered, &seen, &running); err != nil {
		return ward.Runner{}, err
	}
	r.State = ward.RunnerState(state)
	if r.Drivers == nil {
		r.Drivers = []string{}
	}
	r.Slots, r.MemoryMB, r.MaxTasks, r.MaxAgeS = int(slots), int(mem), int(maxT), int(maxAge)
	r.RegisteredAt, r.LastSeenAt = fromMicros(registered), fromMicros(seen)
	r.Running = int(running)
	return r, nil
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
		drivers = []string{} // the column is NOT NULL
	}
	now := micros(p.Now)
	r, err := scanRunner(s.pool.QueryRow(ctx, `INSERT INTO runners (id, name, state, version, drivers, slots, memory_mb,
			max_tasks, max_age_s, remote, registered_at, last_seen_at)
		VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $8, $9, $10, $10)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, state = excluded.state, version = excluded.version,
			drivers = excluded.drivers, slots = excluded.slots, memory_mb = excluded.memory_mb,
			max_tasks = excluded.max_tasks, max_age_s = excluded.max_age_s, remote = excluded.remote,
			registered_at = excluded.registered_at, last_seen_at = excluded.last_seen_at
		RETURNING `+runnerCols,
		in.ID, in.Name, in.Version, drivers, in.Slots, in.MemoryMB, in.MaxTasks, in.MaxAgeS, in.Remote, now))
	if err != nil {
		return ward.Runner{}, fmt.Errorf("postgres: register runner: %w", err)
	}
	return r, nil
}

// GetRunner returns a runner with its running count; an unknown ID →
// not_found.
func (s *Store) GetRunner(ctx context.Context, id string) (ward.Runner, error) {
	r, err := scanRunner(s.pool.QueryRow(ctx, `SELECT `+runnerCols+` FROM runners WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return ward.Runner{}, store.RunnerNotFound(id)
	}
	if err != nil {
		return ward.Runner{}, fmt.Errorf("postgres: get runner: %w", err)
	}
	return r, nil
}

// ListRunners returns every runner ordered by ID, with running counts.
func (s *Store) ListRunners(ctx context.Context) ([]ward.Runner, error) {
	rs, err := collect(ctx, s.pool, scanRunner, `SELECT `+runnerCols+` FROM runners ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list runners: %w", err)
	}
	return rs, nil
}

// TouchRunner sets a runner's last_seen_at to now and returns it, whatever
// its state; an unknown ID → not_found.
func (s *Store) TouchRunner(ctx context.Context, id string, now time.Time) (ward.Runner, error) {
	r, err := scanRunner(s.pool.QueryRow(ctx, `UPDATE runners SET last_seen_at = $2 WHERE id = $1 RETURNING `+runnerCols,
		id, micros(now)))
	if errors.Is(err, pgx.ErrNoRows) {
		return ward.Runner{}, store.RunnerNotFound(id)
	}
	if err != nil {
		return ward.Runner{}, fmt.Errorf("postgres: touch runner: %w", err)
	}
	return r, nil
}

// SetRunnerState moves a runner forward along active → draining → drained
// (active → drained directly too) and returns it. Its current state is a
// no-op; a move back → invalid_state; an unknown runner → not_found; an
// unknown state → invalid_argument. Its times are not changed. The row is
// locked while the move is checked, so concurrent changes apply in turn.
func (s *Store) SetRunnerState(ctx context.Context, p *store.SetRunnerStateParams) (ward.Runner, error) {
	if err := p.Check(); err != nil {
		return ward.Runner{}, err
	}
	var r ward.Runner
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanRunner(tx.QueryRow(ctx, `SELECT `+runnerCols+` FROM runners WHERE id = $1 FOR UPDATE`, p.ID))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.RunnerNotFound(p.ID)
		}
		if err != nil {
			return fmt.Errorf("postgres: set runner state: %w", err)
		}
		if change, err := p.Move(r.State); !change {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE runners SET state = $2 WHERE id = $1`, p.ID, string(p.State)); err != nil {
			return fmt.Errorf("postgres: set runner state: %w", err)
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
	tag, err := s.pool.Exec(ctx, `INSERT INTO join_tokens (id, hash, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
		p.ID, p.Hash, p.CreatedBy, micros(p.CreatedAt), micros(p.ExpiresAt))
	if err != nil {
		return fmt.Errorf("postgres: create join token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ward.Errorf(ward.CodeAlreadyExists, "join token %s already exists", p.ID)
	}
	return nil
}

// ConsumeJoinToken marks a join token used at Now by RunnerID, once. The
// token must exist, be unused and expire after Now, and its stored hash
// must equal Hash (compared in constant time); otherwise nothing changes
// and the error is join_token_invalid. The token's row is locked (FOR
// UPDATE) from the check to the commit, so of concurrent uses, on this
// server or others, exactly one succeeds. No runner ID → invalid_argument.
func (s *Store) ConsumeJoinToken(ctx context.Context, p *store.ConsumeJoinTokenParams) error {
	if err := p.Check(); err != nil {
		return err
	}
	now := micros(p.Now)
	return s.tx(ctx, func(tx pgx.Tx) error {
		var (
			hash    []byte
			expires int64
			used    *int64
		)
		err := tx.QueryRow(ctx, `SELECT hash, expires_at, used_at FROM join_tokens WHERE id = $1 FOR UPDATE`, p.ID).
			Scan(&hash, &expires, &used)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.InvalidJoinToken()
		}
		if err != nil {
			return fmt.Errorf("postgres: consume join token: %w", err)
		}
		if subtle.ConstantTimeCompare(hash, p.Hash) != 1 || used != nil || expires <= now {
			return store.InvalidJoinToken()
		}
		tag, err := tx.Exec(ctx, `UPDATE join_tokens SET used_at = $2, runner_id = $3
			WHERE id = $1 AND used_at IS NULL AND expires_at > $2`, p.ID, now, p.RunnerID)
		if err != nil {
			return fmt.Errorf("postgres: consume join token: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return store.InvalidJoinToken()
		}
		return nil
	})
}
