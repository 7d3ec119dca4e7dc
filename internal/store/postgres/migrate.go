package postgres

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardhq/ward/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// migrate brings the schema first on the search_path up to the newest
// migration, in one transaction that holds an advisory lock keyed by that
// schema, so servers opening the database together apply each migration
// once. It records applied migrations in schema_migrations and refuses a
// schema newer than this binary knows. It returns how many it applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (int, error) {
	ms, err := store.LoadMigrations(migrationsFS)
	if err != nil {
		return 0, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit

	var schema *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return 0, fmt.Errorf("migrate: current schema: %w", err)
	}
	if schema == nil {
		return 0, fmt.Errorf("migrate: no schema on the search_path exists")
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('ward.migrate/' || $1, 0))`, *schema); err != nil {
		return 0, fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at BIGINT  NOT NULL
	)`); err != nil {
		return 0, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return 0, fmt.Errorf("migrate: read version: %w", err)
	}
	if current > len(ms) {
		return 0, fmt.Errorf("database schema version %d is newer than this binary supports (%d): upgrade ward", current, len(ms))
	}
	applied := 0
	for _, m := range ms[current:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return 0, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, micros(time.Now())); err != nil {
			return 0, fmt.Errorf("migration %s: record: %w", m.Name, err)
		}
		logger.Debug("postgres: migration applied", "version", m.Version, "name", m.Name)
		applied++
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return applied, nil
}
