// Package sqlite implements store.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go). The database runs in WAL mode with
// synchronous=NORMAL, so a committed transaction survives a crash of the
// process. All writes go through one dedicated connection, so writers queue
// in Go instead of failing with SQLITE_BUSY; reads use a separate pool of
// read-only connections that see every committed write.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/wardhq/ward/internal/store"
)

// busyTimeoutMs is how long a connection waits for a lock held by another
// process (or the write connection) before SQLITE_BUSY.
const busyTimeoutMs = 10000

// Store is a store.Store on SQLite. It is safe for concurrent use.
type Store struct {
	w   *sql.DB // the one write connection
	r   *sql.DB // read-only pool
	log *slog.Logger
	st  *stmts // statements prepared on w

	reads   readStmts   // the hot reads, prepared on r
	inserts insertGroup // InsertTasks calls, committed together
	ckpt    *checkpointer
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the database file at path (mode 0600 when created),
// applies pending migrations and returns the store. A database written by a
// newer version of ward (a schema version this binary does not know) is
// refused with an error.
func Open(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: need a plain file path (no '?', '#', \"file:\" or \":memory:\")", path)
	}
	if err := ensureFile(path, logger); err != nil {
		return nil, err
	}

	// Every connection: wait for locks held by other processes, enforce
	// foreign keys, and sync the WAL at checkpoints only (a commit survives
	// a crash of the process, not necessarily of the machine).
	pragmas := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)", busyTimeoutMs)
	// The write connection: WAL, a 32 MB page cache, and BEGIN IMMEDIATE so
	// a transaction takes the write lock up front. The checkpointer copies
	// the WAL into the database from a connection of its own; the write
	// connection checkpoints itself only past 64,000 pages (~256 MB of
	// WAL), should the checkpointer fall behind.
	w, err := sql.Open("sqlite", path+"?"+pragmas+"&_pragma=journal_mode(WAL)&_pragma=cache_size(-32000)"+
		"&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(64000)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: journal mode is %q, not WAL (is the file on a local file system?)", path, mode)
	}
	applied, err := migrate(ctx, w, migrationsFS, logger)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if applied > 0 {
		logger.Info("sqlite: applied migrations", "path", path, "count", applied)
	}

	// The read pool: read-only connections with an 8 MB cache each.
	r, err := sql.Open("sqlite", path+"?"+pragmas+"&_pragma=query_only(1)&_pragma=cache_size(-8000)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}

	st, err := prepare(ctx, w)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	ck, err := sql.Open("sqlite", path+"?"+pragmas)
	if err != nil {
		st.close()
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: open %s for checkpoints: %w", path, err)
	}
	ck.SetMaxOpenConns(1)
	s := &Store{w: w, r: r, log: logger, st: st}
	s.ckpt = startCheckpointer(ck, logger)
	return s, nil
}

// ensureFile creates the database file with mode 0600 if it does not exist,
// so SQLite (which gives its -wal and -shm files the database file's mode)
// never creates a world-readable file. An existing file readable by others is
// tightened to 0600.
func ensureFile(path string, logger *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("sqlite: database file was accessible to others; setting mode 0600", "path", path, "mode", fi.Mode().Perm().String())
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return nil
}

// Close closes the database. Calls in flight may fail.
func (s *Store) Close() error {
	serr := errors.Join(s.ckpt.close(), s.st.close(), s.reads.close())
	if _, err := s.w.Exec("PRAGMA optimize"); err != nil {
		s.log.Warn("sqlite: optimize on close", "err", err)
	}
	return errors.Join(serr, s.r.Close(), s.w.Close())
}

// write runs fn in one write transaction (BEGIN IMMEDIATE on the write
// connection) and commits it when fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			s.log.Warn("sqlite: rollback", "err", rerr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// micros converts t to the stored form, unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros converts a stored time back to a UTC time.Time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros returns the stored form of an optional time.
func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// optTime returns an optional stored time as *time.Time.
func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}
