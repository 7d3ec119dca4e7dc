package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// PutSecret creates or replaces a secret of a project (Function "") or of
// one of its functions. A new secret has version 1; each replacement adds
// one. Size is p.Size, or len(p.Value) when that is 0. With IfAbsent an
// existing secret is left as it is and returned with Existing set. The
// project, and the function when set, must exist (not_found); an empty
// name → invalid_argument. The number of secrets per scope is not bounded
// here (the API bounds it at ward.MaxSecretsPerSet).
func (s *Store) PutSecret(ctx context.Context, p *store.PutSecretParams) (store.PutSecretResult, error) {
	if err := p.Check(); err != nil {
		return store.PutSecretResult{}, err
	}
	size := p.Size
	if size == 0 {
		size = len(p.Value)
	}
	value := p.Value
	if value == nil {
		value = []byte{} // the column is NOT NULL
	}
	var res store.PutSecretResult
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := scopeExists(ctx, tx, p.Project, p.Function); err != nil {
			return err
		}
		if p.IfAbsent {
			sec, err := store.ScanSecret(tx.QueryRowContext(ctx, `SELECT `+store.SecretCols+` FROM secrets
				WHERE project = ? AND function = ? AND name = ?`, p.Project, p.Function, p.Name))
			switch {
			case err == nil:
				res = store.PutSecretResult{Secret: sec, Existing: true}
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("sqlite: put secret: %w", err)
			}
		}
		sec, err := store.ScanSecret(tx.QueryRowContext(ctx, `INSERT INTO secrets (project, function, name, value, size, version, updated_at)
			VALUES (?, ?, ?, ?, ?, 1, ?)
			ON CONFLICT (project, function, name) DO UPDATE SET value = excluded.value, size = excluded.size,
				version = secrets.version + 1, updated_at = excluded.updated_at
			RETURNING `+store.SecretCols,
			p.Project, p.Function, p.Name, value, size, micros(p.Now)))
		if err != nil {
			return fmt.Errorf("sqlite: put secret: %w", err)
		}
		res = store.PutSecretResult{Secret: sec}
		return nil
	})
	if err != nil {
		return store.PutSecretResult{}, err
	}
	return res, nil
}

// ListSecrets returns the secrets of one scope (Function "" = the
// project's global ones) ordered by name, without values. A missing
// project (or function, when set) → not_found.
func (s *Store) ListSecrets(ctx context.Context, project, function string) ([]ward.Secret, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+store.SecretCols+` FROM secrets WHERE project = ? AND function = ? ORDER BY name`,
		project, function)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list secrets: %w", err)
	}
	defer rows.Close()
	secs := []ward.Secret{}
	for rows.Next() {
		sec, err := store.ScanSecret(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list secrets: %w", err)
		}
		secs = append(secs, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list secrets: %w", err)
	}
	if len(secs) == 0 {
		if err := scopeExists(ctx, s.r, project, function); err != nil {
			return nil, err
		}
	}
	return secs, nil
}

// GetSecrets returns, values included, the project's global secrets and the
// function's local ones, ordered by (function, name): the global ones
// first. Function "" returns the global ones only. A missing project →
// not_found; a missing function has no local secrets (a task of a deleted
// function still sees the global ones).
func (s *Store) GetSecrets(ctx context.Context, project, function string) ([]store.SecretValue, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+store.SecretCols+`, value FROM secrets
		WHERE project = ? AND function IN ('', ?) ORDER BY function, name`, project, function)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get secrets: %w", err)
	}
	defer rows.Close()
	out := []store.SecretValue{}
	for rows.Next() {
		var value []byte
		sec, err := store.ScanSecret(rows, &value)
		if err != nil {
			return nil, fmt.Errorf("sqlite: get secrets: %w", err)
		}
		if value == nil {
			value = []byte{}
		}
		out = append(out, store.SecretValue{Secret: sec, Value: value})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: get secrets: %w", err)
	}
	if len(out) == 0 {
		if ok, err := projectExists(ctx, s.r, project); err != nil {
			return nil, err
		} else if !ok {
			return nil, store.ProjectNotFound(project)
		}
	}
	return out, nil
}

// DeleteSecret removes one secret of a scope; a missing secret (or scope)
// → not_found.
func (s *Store) DeleteSecret(ctx context.Context, project, function, name string) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE project = ? AND function = ? AND name = ?`, project, function, name)
		if err != nil {
			return fmt.Errorf("sqlite: delete secret: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return store.SecretNotFound(name)
	}
	return nil
}
