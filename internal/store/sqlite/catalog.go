package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// CreateProject creates a project; an existing name → already_exists.
// RetentionDays 0 means ward.DefaultRetentionDays; otherwise it must lie in
// [1, ward.MaxRetention] (invalid_argument).
func (s *Store) CreateProject(ctx context.Context, p *store.CreateProjectParams) (ward.Project, error) {
	days := p.RetentionDays
	if days == 0 {
		days = ward.DefaultRetentionDays
	}
	if err := ward.ValidRetention(days); err != nil {
		return ward.Project{}, err
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO projects (name, created_at, retention_days) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, p.Name, micros(p.Now), days)
		if err != nil {
			return fmt.Errorf("sqlite: create project: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return ward.Project{}, err
	}
	if n == 0 {
		return ward.Project{}, ward.Errorf(ward.CodeAlreadyExists, "project %s already exists", p.Name)
	}
	return ward.Project{Name: p.Name, CreatedAt: fromMicros(micros(p.Now)), RetentionDays: days}, nil
}

// projectCols are the columns store.ScanProject reads.
const projectCols = store.ProjectCols + `, stored_bytes`

// addStored adds delta (negative to subtract) to a project's stored bytes,
// within the transaction that writes or deletes the bytes.
func addStored(ctx context.Context, tx *sql.Tx, project string, delta int64) error {
	if delta == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE projects SET stored_bytes = stored_bytes + ? WHERE name = ?`, delta, project); err != nil {
		return fmt.Errorf("sqlite: count stored bytes: %w", err)
	}
	return nil
}

// GetProject returns a project, or not_found.
func (s *Store) GetProject(ctx context.Context, name string) (ward.Project, error) {
	p, err := store.ScanProject(s.row(ctx, `SELECT `+projectCols+` FROM projects WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return ward.Project{}, store.ProjectNotFound(name)
	}
	if err != nil {
		return ward.Project{}, fmt.Errorf("sqlite: get project: %w", err)
	}
	return p, nil
}

// ListProjects returns all projects ordered by name.
func (s *Store) ListProjects(ctx context.Context) ([]ward.Project, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+projectCols+` FROM projects ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list projects: %w", err)
	}
	defer rows.Close()
	ps := []ward.Project{}
	for rows.Next() {
		p, err := store.ScanProject(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list projects: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list projects: %w", err)
	}
	return ps, nil
}

// SetQuotas implements store.Store.
func (s *Store) SetQuotas(ctx context.Context, project string, q ward.QuotasPatch) (ward.Project, error) {
	if err := q.Validate(); err != nil {
		return ward.Project{}, err
	}
	var p ward.Project
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = store.ScanProject(tx.QueryRowContext(ctx, `UPDATE projects SET max_queued = coalesce(?, max_queued),
			max_functions = coalesce(?, max_functions), max_running = coalesce(?, max_running), max_stored_mb = coalesce(?, max_stored_mb)
			WHERE name = ? RETURNING `+projectCols,
			q.MaxQueued, q.MaxFunctions, q.MaxRunning, q.MaxStoredMB, project))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ProjectNotFound(project)
		}
		if err != nil {
			return fmt.Errorf("sqlite: set quotas: %w", err)
		}
		return nil
	})
	return p, err
}

// CountQueued counts the project's queued tasks, stopping at limit.
func (s *Store) CountQueued(ctx context.Context, project string, limit int) (int, error) {
	var n int
	err := s.row(ctx, `SELECT count(*) FROM (SELECT 1 FROM tasks INDEXED BY tasks_project_queued WHERE status = 'queued' AND project = ? LIMIT ?)`,
		project, max(limit, 0)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count queued: %w", err)
	}
	return n, nil
}

// SetRetention sets a project's retention_days, which must lie in [1,
// ward.MaxRetention] (invalid_argument), and returns the project. A missing
// project → not_found.
func (s *Store) SetRetention(ctx context.Context, project string, days int) (ward.Project, error) {
	if err := ward.ValidRetention(days); err != nil {
		return ward.Project{}, err
	}
	var p ward.Project
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = store.ScanProject(tx.QueryRowContext(ctx, `UPDATE projects SET retention_days = ? WHERE name = ? RETURNING `+projectCols,
			days, project))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ProjectNotFound(project)
		}
		if err != nil {
			return fmt.Errorf("sqlite: set retention: %w", err)
		}
		return nil
	})
	return p, err
}

// deleteProjectSQL removes everything a project owns, children first (the
// foreign keys point at projects); each statement takes the project name.
// Bodies go before their tasks, whose seqs name them.
var deleteProjectSQL = []string{
	`DELETE FROM task_bodies WHERE id IN (SELECT t.seq * 4 + k.kind FROM tasks t INDEXED BY tasks_project,
		(SELECT ` + kindsSQL + `) k WHERE t.project = ?)`,
	`DELETE FROM idempotency_keys WHERE project = ?`,
	`DELETE FROM tasks INDEXED BY tasks_project WHERE project = ?`,
	`DELETE FROM token_vault WHERE project = ?`,
	`DELETE FROM secrets WHERE project = ?`,
	`DELETE FROM config WHERE project = ?`,
	`DELETE FROM code_blobs WHERE project = ?`,
	`DELETE FROM functions WHERE project = ?`,
	`DELETE FROM tokens WHERE project = ?`,
	`DELETE FROM projects WHERE name = ?`,
}

// kindsSQL is a one-column select of every body kind, named kind.
var kindsSQL = fmt.Sprintf(`%d AS kind UNION ALL SELECT %d UNION ALL SELECT %d`, kindPayload, kindResult, kindLog)

// DeleteProject removes a project and everything it owns (tokens,
// functions, code blobs, config, secrets, the token vault, tasks with their
// bodies and idempotency keys) in one transaction. A missing project → not_found; a
// project created again under the name starts empty.
func (s *Store) DeleteProject(ctx context.Context, name string) error {
	if name == "" { // "" owns the admin tokens
		return store.ProjectNotFound(name)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		ok, err := projectExists(ctx, tx, name)
		if err != nil {
			return err
		}
		if !ok {
			return store.ProjectNotFound(name)
		}
		for _, q := range deleteProjectSQL {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return fmt.Errorf("sqlite: delete project: %w", err)
			}
		}
		return nil
	})
}

// rowQuerier is *sql.DB or *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// projectExists reports whether a project exists, read through q.
func projectExists(ctx context.Context, q rowQuerier, name string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM projects WHERE name = ?`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: look up project: %w", err)
	}
	return true, nil
}

// CreateToken records a token's metadata. A project token's project must
// exist (not_found); a repeated ID → already_exists.
func (s *Store) CreateToken(ctx context.Context, p *store.CreateTokenParams) (ward.Token, error) {
	t := p.Token
	err := s.write(ctx, func(tx *sql.Tx) error {
		if t.Project != "" {
			ok, err := projectExists(ctx, tx, t.Project)
			if err != nil {
				return err
			}
			if !ok {
				return store.ProjectNotFound(t.Project)
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, project, role, name, created_at, expires_at, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			t.ID, t.Project, string(t.Role), t.Name, micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.RevokedAt))
		if err != nil {
			return fmt.Errorf("sqlite: create token: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ward.Errorf(ward.CodeAlreadyExists, "token %s already exists", t.ID)
		}
		return nil
	})
	if err != nil {
		return ward.Token{}, err
	}
	t.CreatedAt = fromMicros(micros(t.CreatedAt))
	t.ExpiresAt = fromMicros(micros(t.ExpiresAt))
	t.RevokedAt = optTime(nullMicros(t.RevokedAt))
	return t, nil
}

// GetToken returns a token's metadata (revoked ones too), or not_found.
func (s *Store) GetToken(ctx context.Context, id string) (ward.Token, error) {
	var (
		t                ward.Token
		role             string
		created, expires int64
		revoked          sql.NullInt64
	)
	err := s.row(ctx, `SELECT project, role, name, created_at, expires_at, revoked_at FROM tokens WHERE id = ?`, id).
		Scan(&t.Project, &role, &t.Name, &created, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return ward.Token{}, ward.Errorf(ward.CodeNotFound, "token %s not found", id)
	}
	if err != nil {
		return ward.Token{}, fmt.Errorf("sqlite: get token: %w", err)
	}
	t.ID = id
	t.Role = ward.Role(role)
	t.CreatedAt = fromMicros(created)
	t.ExpiresAt = fromMicros(expires)
	t.RevokedAt = optTime(revoked)
	return t, nil
}

// RevokeToken marks a token revoked at Now. The token must belong to
// p.Project ("" for admin tokens), else not_found. Revoking a revoked token
// succeeds and keeps the first revocation time.
func (s *Store) RevokeToken(ctx context.Context, p *store.RevokeTokenParams) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? AND project = ?`,
			micros(p.Now), p.ID, p.Project)
		if err != nil {
			return fmt.Errorf("sqlite: revoke token: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return ward.Errorf(ward.CodeNotFound, "token %s not found", p.ID)
	}
	return nil
}

// CountTokens returns how many tokens were ever recorded, revoked and
// expired ones included.
func (s *Store) CountTokens(ctx context.Context) (int, error) {
	var n int
	if err := s.row(ctx, `SELECT count(*) FROM tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count tokens: %w", err)
	}
	return n, nil
}

// PutFunction creates or updates a function's spec; its code and creation
// time stay. The project must exist (not_found).
func (s *Store) PutFunction(ctx context.Context, p *store.PutFunctionParams) (ward.Function, error) {
	spec, err := json.Marshal(p.Spec)
	if err != nil {
		return ward.Function{}, fmt.Errorf("sqlite: encode spec: %w", err)
	}
	var f ward.Function
	err = s.write(ctx, func(tx *sql.Tx) error {
		ok, err := projectExists(ctx, tx, p.Project)
		if err != nil {
			return err
		}
		if !ok {
			return store.ProjectNotFound(p.Project)
		}
		now := micros(p.Now)
		f, err = store.ScanFunction(tx.QueryRowContext(ctx, `INSERT INTO functions (project, name, spec, max_concurrency, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (project, name) DO UPDATE SET spec = excluded.spec, max_concurrency = excluded.max_concurrency,
				updated_at = excluded.updated_at
			RETURNING `+store.FunctionCols,
			p.Project, p.Name, string(spec), p.Spec.Limits.MaxConcurrency, now, now))
		if err != nil {
			return fmt.Errorf("sqlite: put function: %w", err)
		}
		return nil
	})
	return f, err
}

// GetFunction returns a function, or not_found.
func (s *Store) GetFunction(ctx context.Context, project, name string) (ward.Function, error) {
	f, err := store.ScanFunction(s.row(ctx, `SELECT `+store.FunctionCols+` FROM functions WHERE project = ? AND name = ?`, project, name))
	if errors.Is(err, sql.ErrNoRows) {
		return ward.Function{}, ward.Errorf(ward.CodeNotFound, "function %s not found", name)
	}
	if err != nil {
		return ward.Function{}, fmt.Errorf("sqlite: get function: %w", err)
	}
	return f, nil
}

// ListFunctions returns a project's functions ordered by name; a missing
// project → not_found.
func (s *Store) ListFunctions(ctx context.Context, project string) ([]ward.Function, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+store.FunctionCols+` FROM functions WHERE project = ? ORDER BY name`, project)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list functions: %w", err)
	}
	defer rows.Close()
	fs := []ward.Function{}
	for rows.Next() {
		f, err := store.ScanFunction(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list functions: %w", err)
		}
		fs = append(fs, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list functions: %w", err)
	}
	if len(fs) == 0 {
		if ok, err := projectExists(ctx, s.r, project); err != nil {
			return nil, err
		} else if !ok {
			return nil, store.ProjectNotFound(project)
		}
	}
	return fs, nil
}

// DeleteFunction removes a function with its local config and secrets; its
// tasks and code blobs stay. A missing function → not_found.
func (s *Store) DeleteFunction(ctx context.Context, project, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM functions WHERE project = ? AND name = ?`, project, name)
		if err != nil {
			return fmt.Errorf("sqlite: delete function: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ward.Errorf(ward.CodeNotFound, "function %s not found", name)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM config WHERE project = ? AND function = ?`, project, name); err != nil {
			return fmt.Errorf("sqlite: delete function config: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE project = ? AND function = ?`, project, name); err != nil {
			return fmt.Errorf("sqlite: delete function secrets: %w", err)
		}
		return nil
	})
}

// PutCode stores the code under (project, digest), once, and points the
// function at it, bumping its code version and setting its code size to
// p.Size (len(p.Code) when 0). The store does not hash Code: Digest names
// the code as uploaded (the API computes it), and Code may be that code
// transformed (the sealing adapter hands the store ciphertext). The first
// blob stored under a digest in a project stays. A missing function →
// not_found; an empty digest or a negative size → invalid_argument.
func (s *Store) PutCode(ctx context.Context, p *store.PutCodeParams) (ward.Function, error) {
	if err := p.Check(); err != nil {
		return ward.Function{}, err
	}
	size := p.Size
	if size == 0 {
		size = len(p.Code)
	}
	var f ward.Function
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		f, err = store.ScanFunction(tx.QueryRowContext(ctx, `UPDATE functions
			SET code_digest = ?, code_version = code_version + 1, code_size = ?, updated_at = ?
			WHERE project = ? AND name = ? RETURNING `+store.FunctionCols,
			p.Digest, size, micros(p.Now), p.Project, p.Function))
		if errors.Is(err, sql.ErrNoRows) {
			return ward.Errorf(ward.CodeNotFound, "function %s not found", p.Function)
		}
		if err != nil {
			return fmt.Errorf("sqlite: put code: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO code_blobs (project, digest, size, data, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (project, digest) DO NOTHING`, p.Project, p.Digest, size, p.Code, micros(p.Now))
		if err != nil {
			return fmt.Errorf("sqlite: store code: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			return addStored(ctx, tx, p.Project, int64(len(p.Code)))
		}
		return nil
	})
	return f, err
}

// GetCode returns the project's code blob with the digest; a blob of
// another project only, or none, → not_found.
func (s *Store) GetCode(ctx context.Context, project, digest string) ([]byte, error) {
	var b []byte
	err := s.row(ctx, `SELECT data FROM code_blobs WHERE project = ? AND digest = ?`, project, digest).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ward.Errorf(ward.CodeNotFound, "code %s not found", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get code: %w", err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// PutConfig replaces a config object. The project, and the function when
// Function is set, must exist (not_found).
func (s *Store) PutConfig(ctx context.Context, p *store.PutConfigParams) error {
	cfg := p.Config
	if cfg == nil {
		cfg = ward.Config{}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("sqlite: encode config: %w", err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := scopeExists(ctx, tx, p.Project, p.Function); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO config (project, function, data, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project, function) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
			p.Project, p.Function, string(b), micros(p.Now)); err != nil {
			return fmt.Errorf("sqlite: put config: %w", err)
		}
		return nil
	})
}

// scopeExists returns not_found unless the project (and the function,
// when set) exists.
func scopeExists(ctx context.Context, q rowQuerier, project, function string) error {
	var one int
	var err error
	if function == "" {
		err = q.QueryRowContext(ctx, `SELECT 1 FROM projects WHERE name = ?`, project).Scan(&one)
	} else {
		err = q.QueryRowContext(ctx, `SELECT 1 FROM functions WHERE project = ? AND name = ?`, project, function).Scan(&one)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows) && function == "":
		return store.ProjectNotFound(project)
	case errors.Is(err, sql.ErrNoRows):
		return ward.Errorf(ward.CodeNotFound, "function %s not found", function)
	case err != nil:
		return fmt.Errorf("sqlite: look up scope: %w", err)
	}
	return nil
}

// GetConfig returns a config object; one never set is empty. A missing
// project (or function, when set) → not_found.
func (s *Store) GetConfig(ctx context.Context, project, function string) (ward.Config, error) {
	var data string
	err := s.row(ctx, `SELECT data FROM config WHERE project = ? AND function = ?`, project, function).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		if err := scopeExists(ctx, s.r, project, function); err != nil {
			return nil, err
		}
		return ward.Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get config: %w", err)
	}
	cfg := ward.Config{}
	if err := json.Unmarshal([]byte(data), &cfg); err != nil {
		return nil, fmt.Errorf("sqlite: decode config: %w", err)
	}
	return cfg, nil
}
