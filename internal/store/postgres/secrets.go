package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// PutSecret creates or replaces a secret of a project (Function "") or of
// one of its functions. A new secret has version 1; each replacement adds
// one. Size is p.Size, or len(p.Value) when that is 0. With IfAbsent an
// existing secret is left as it is and returned with Existing set. The
// project, and the function when set, must exist (not_found); an empty
// name or a negative size → invalid_argument.
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
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := scopeExists(ctx, tx, p.Project, p.Function, true); err != nil {
			return err
		}
		if p.IfAbsent {
			// Insert only when absent; a conflict leaves the row as it is
			// and the existing secret is read back.
			sec, err := store.ScanSecret(tx.QueryRow(ctx, `INSERT INTO secrets (project, function, name, value, size, version, updated_at)
				VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT (project, function, name) DO NOTHING RETURNING `+store.SecretCols,
				p.Project, p.Function, p.Name, value, size, micros(p.Now)))
			switch {
			case err == nil:
				res = store.PutSecretResult{Secret: sec}
				return nil
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("postgres: put secret: %w", err)
			}
			sec, err = store.ScanSecret(tx.QueryRow(ctx, `SELECT `+store.SecretCols+` FROM secrets
				WHERE project = $1 AND function = $2 AND name = $3`, p.Project, p.Function, p.Name))
			if err != nil {
				return fmt.Errorf("postgres: put secret: %w", err)
			}
			res = store.PutSecretResult{Secret: sec, Existing: true}
			return nil
		}
		sec, err := store.ScanSecret(tx.QueryRow(ctx, `INSERT INTO secrets (project, function, name, value, size, version, updated_at)
			VALUES ($1, $2, $3, $4, $5, 1, $6)
			ON CONFLICT (project, function, name) DO UPDATE SET value = excluded.value, size = excluded.size,
				version = secrets.version + 1, updated_at = excluded.updated_at
			RETURNING `+store.SecretCols,
			p.Project, p.Function, p.Name, value, size, micros(p.Now)))
		if err != nil {
			return fmt.Errorf("postgres: put secret: %w", err)
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
	secs, err := collect(ctx, s.pool, func(sc scanner) (ward.Secret, error) { return store.ScanSecret(sc) }, `SELECT `+store.SecretCols+` FROM secrets
		WHERE project = $1 AND function = $2 ORDER BY name`, project, function)
	if err != nil {
		return nil, fmt.Errorf("postgres: list secrets: %w", err)
	}
	if len(secs) == 0 {
		if err := scopeExists(ctx, s.pool, project, function, false); err != nil {
			return nil, err
		}
	}
	return secs, nil
}

// GetSecrets returns, values included, the project's global secrets and the
// function's local ones, ordered by (function, name): the global ones
// first. Function "" returns the global ones only. A missing project →
// not_found; a missing function has no local secrets.
func (s *Store) GetSecrets(ctx context.Context, project, function string) ([]store.SecretValue, error) {
	out, err := collect(ctx, s.pool, func(sc scanner) (store.SecretValue, error) {
		var sv store.SecretValue
		var updated int64
		if err := sc.Scan(&sv.Function, &sv.Name, &sv.Version, &sv.Size, &updated, &sv.Value); err != nil {
			return sv, err
		}
		sv.UpdatedAt = fromMicros(updated)
		if sv.Value == nil {
			sv.Value = []byte{}
		}
		return sv, nil
	}, `SELECT `+store.SecretCols+`, value FROM secrets
		WHERE project = $1 AND function IN ('', $2) ORDER BY function, name`, project, function)
	if err != nil {
		return nil, fmt.Errorf("postgres: get secrets: %w", err)
	}
	if len(out) == 0 {
		if ok, err := projectExists(ctx, s.pool, project, false); err != nil {
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM secrets WHERE project = $1 AND function = $2 AND name = $3`, project, function, name)
	if err != nil {
		return fmt.Errorf("postgres: delete secret: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.SecretNotFound(name)
	}
	return nil
}
