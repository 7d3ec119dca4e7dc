// Package postgres implements store.Store on PostgreSQL (github.com/jackc/pgx/v5).
// Several ward servers may share one database: leasing takes due tasks with
// SELECT … FOR UPDATE SKIP LOCKED and serializes each function's
// max_concurrency check with a transaction-scoped advisory lock, and
// migrations run under an advisory lock so servers starting together are
// safe. Options (pool size, search_path, TLS) go in the DSN.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardhq/ward/internal/store"
)

// Store is a store.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// The LISTEN/NOTIFY channels of this store's schema: channels are
	// database-wide, and stores in other schemas of the database must not
	// hear each other.
	workChannel, busChannel string
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string; pool_max_conns and runtime parameters such as
// search_path go in it), applies pending migrations and returns the store.
// A database migrated by a newer version of ward is refused with an error.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included: keep it out.
		return nil, errors.New("postgres: cannot parse the connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	applied, err := migrate(ctx, pool, logger)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if applied > 0 {
		logger.Info("postgres: applied migrations", "count", applied)
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: read the schema: %w", err)
	}
	sum := sha256.Sum256([]byte(schema))
	suffix := "_" + hex.EncodeToString(sum[:8])
	return &Store{pool: pool, log: logger, workChannel: "ward_work" + suffix, busChannel: "ward_bus" + suffix}, nil
}

// Close closes the connection pool, waiting for connections in use.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// tx runs fn in one read-committed transaction and commits it when fn
// returns nil.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(context.WithoutCancel(ctx)); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			s.log.Warn("postgres: rollback", "err", rerr)
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// limitArg is a LIMIT argument: NULL (no limit) for 0.
func limitArg(n int) *int64 {
	if n <= 0 {
		return nil
	}
	l := int64(n)
	return &l
}

// micros converts t to the stored form, unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros converts a stored time back to a UTC time.Time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros returns the stored form of an optional time.
func nullMicros(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	v := t.UnixMicro()
	return &v
}

// optTime returns an optional stored time as *time.Time.
func optTime(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := fromMicros(*v)
	return &t
}

// Unreachable reports whether err from Open means the server could not be
// reached (refused, timed out, DNS), so that trying again later may work,
// as opposed to a bad connection string or a failed migration.
func Unreachable(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}
