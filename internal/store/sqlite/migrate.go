package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/wardhq/ward/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// migrate brings the database up to the newest migration in fsys, in one
// write transaction, recording each applied migration in schema_migrations.
// It fails, changing nothing, when the database's version is newer than the
// newest migration known, or when a migration fails. It returns how many
// migrations it applied.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS, logger *slog.Logger) (int, error) {
	ms, err := store.LoadMigrations(fsys)
	if err != nil {
		return 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return 0, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return 0, fmt.Errorf("migrate: read version: %w", err)
	}
	if current > len(ms) {
		return 0, fmt.Errorf("database schema version %d is newer than this binary supports (%d): upgrade ward", current, len(ms))
	}
	applied := 0
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return 0, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, micros(time.Now())); err != nil {
			return 0, fmt.Errorf("migration %s: record: %w", m.Name, err)
		}
		logger.Debug("sqlite: migration applied", "version", m.Version, "name", m.Name)
		applied++
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return applied, nil
}
