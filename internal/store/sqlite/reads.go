package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// readStmts holds the statements of the hot reads, prepared on the read
// pool once (database/sql prepares each on a connection the first time it
// runs there): for a small read, preparing costs more than running.
type readStmts struct {
	m sync.Map // SQL text → *sql.Stmt
}

// row runs a one-row read through its prepared statement.
func (s *Store) row(ctx context.Context, q string, args ...any) *sql.Row {
	if v, ok := s.reads.m.Load(q); ok {
		return v.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := s.r.PrepareContext(ctx, q)
	if err != nil {
		return s.r.QueryRowContext(ctx, q, args...) // the same error, through the Row
	}
	if v, loaded := s.reads.m.LoadOrStore(q, st); loaded {
		st.Close()
		st = v.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}

// close closes every prepared read.
func (r *readStmts) close() error {
	var errs []error
	r.m.Range(func(k, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		r.m.Delete(k)
		return true
	})
	return errors.Join(errs...)
}
