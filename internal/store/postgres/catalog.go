package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// scanner is one row of a query.
type scanner = store.Scanner

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
	tag, err := s.pool.Exec(ctx, `INSERT INTO projects (name, created_at, retention_days) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, p.Name, micros(p.Now), days)
	if err != nil {
		return ward.Project{}, fmt.Errorf("postgres: create project: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ward.Project{}, ward.Errorf(ward.CodeAlreadyExists, "project %s already exists", p.Name)
	}
	return ward.Project{Name: p.Name, CreatedAt: fromMicros(micros(p.Now)), RetentionDays: days}, nil
}

// projectCols are the columns store.ScanProject reads, of a row of
// projects.
const projectCols = store.ProjectCols + `,
	(SELECT coalesce(sum(u.bytes), 0)::bigint FROM project_usage u WHERE u.project = projects.name)`

// usageShards is how many rows of project_usage hold a project's count; a
// transaction adds to the shard of its connection.
const usageShards = 16

// usageAddSQL adds the rows (project, bytes) of the query it is given, with
// projects distinct, to their projects' stored bytes. The rows are locked
// in project order, so that transactions that change several projects
// cannot deadlock; every transaction changes the count as its last write
// or near it, and once.
func usageAddSQL(rows string) string {
	return fmt.Sprintf(`INSERT INTO project_usage (project, shard, bytes)
		SELECT a.project, (pg_backend_pid() %% %d)::smallint, a.bytes FROM (%s) AS a (project, bytes)
		WHERE a.bytes <> 0 ORDER BY a.project
		ON CONFLICT (project, shard) DO UPDATE SET bytes = project_usage.bytes + excluded.bytes`, usageShards, rows)
}

// GetProject returns a project, or not_found.
func (s *Store) GetProject(ctx context.Context, name string) (ward.Project, error) {
	p, err := store.ScanProject(s.pool.QueryRow(ctx, `SELECT `+projectCols+` FROM projects WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return ward.Project{}, store.ProjectNotFound(name)
	}
	if err != nil {
		return ward.Project{}, fmt.Errorf("postgres: get project: %w", err)
	}
	return p, nil
}

// ListProjects returns all projects ordered by name.
func (s *Store) ListProjects(ctx context.Context) ([]ward.Project, error) {
	ps, err := collect(ctx, s.pool, store.ScanProject, `SELECT `+projectCols+` FROM projects ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list projects: %w", err)
	}
	return ps, nil
}

// collect runs a query and scans every row with scan; no rows is an empty,
// non-nil slice.
func collect[T any](ctx context.Context, q querier, scan func(scanner) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// SetQuotas implements store.Store.
func (s *Store) SetQuotas(ctx context.Context, project string, q ward.QuotasPatch) (ward.Project, error) {
	if err := q.Validate(); err != nil {
		return ward.Project{}, err
	}
	p, err := store.ScanProject(s.pool.QueryRow(ctx, `UPDATE projects SET max_queued = coalesce($1, max_queued),
		max_functions = coalesce($2, max_functions), max_running = coalesce($3, max_running),
		max_stored_mb = coalesce($4, max_stored_mb) WHERE name = $5 RETURNING `+projectCols,
		q.MaxQueued, q.MaxFunctions, q.MaxRunning, q.MaxStoredMB, project))
	if errors.Is(err, pgx.ErrNoRows) {
		return ward.Project{}, store.ProjectNotFound(project)
	}
	if err != nil {
		return ward.Project{}, fmt.Errorf("postgres: set quotas: %w", err)
	}
	return p, nil
}

// CountQueued counts the project's queued tasks, stopping at limit.
func (s *Store) CountQueued(ctx context.Context, project string, limit int) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM tasks WHERE status = 'queued' AND project = $1 LIMIT $2) q`,
		project, max(limit, 0)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: count queued: %w", err)
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
	p, err := store.ScanProject(s.pool.QueryRow(ctx, `UPDATE projects SET retention_days = $1 WHERE name = $2 RETURNING `+projectCols,
		days, project))
	if errors.Is(err, pgx.ErrNoRows) {
		return ward.Project{}, store.ProjectNotFound(project)
	}
	if err != nil {
		return ward.Project{}, fmt.Errorf("postgres: set retention: %w", err)
	}
	return p, nil
}

// deleteProjectSQL removes everything a project owns, children first; each
// statement takes the project name. Task bodies and idempotency keys go
// with their tasks, and the stored-bytes shards with the project (ON
// DELETE CASCADE).
var deleteProjectSQL = []string{
	`DELETE FROM tasks WHERE project = $1`,
	`DELETE FROM idempotency_keys WHERE project = $1`,
	`DELETE FROM token_vault WHERE project = $1`,
	`DELETE FROM secrets WHERE project = $1`,
	`DELETE FROM config WHERE project = $1`,
	`DELETE FROM code_blobs WHERE project = $1`,
	`DELETE FROM functions WHERE project = $1`,
	`DELETE FROM tokens WHERE project = $1`,
	`DELETE FROM projects WHERE name = $1`,
}

// DeleteProject removes a project and everything it owns (tokens,
// functions, code blobs, config, secrets, the token vault, tasks with their
// bodies and idempotency keys) in one transaction. A missing project →
// not_found; a project created again under the name starts empty.
func (s *Store) DeleteProject(ctx context.Context, name string) error {
	if name == "" { // "" owns the admin tokens
		return store.ProjectNotFound(name)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		// Lock the project row: writers that check the project exists
		// (inside their own transactions) wait for this one.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM projects WHERE name = $1 FOR UPDATE`, name).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ProjectNotFound(name)
		}
		if err != nil {
			return fmt.Errorf("postgres: delete project: %w", err)
		}
		for _, q := range deleteProjectSQL {
			if _, err := tx.Exec(ctx, q, name); err != nil {
				return fmt.Errorf("postgres: delete project: %w", err)
			}
		}
		return nil
	})
}

// projectExists reports whether a project exists, read through q. With
// share set it also takes a share lock on the project row (inside a
// transaction), so a concurrent DeleteProject waits for the caller.
func projectExists(ctx context.Context, q querier, name string, share bool) (bool, error) {
	sql := `SELECT 1 FROM projects WHERE name = $1`
	if share {
		sql += ` FOR SHARE`
	}
	var one int
	err := q.QueryRow(ctx, sql, name).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: look up project: %w", err)
	}
	return true, nil
}

// CreateToken records a token's metadata. A project token's project must
// exist (not_found); a repeated ID → already_exists.
func (s *Store) CreateToken(ctx context.Context, p *store.CreateTokenParams) (ward.Token, error) {
	t := p.Token
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if t.Project != "" {
			ok, err := projectExists(ctx, tx, t.Project, true)
			if err != nil {
				return err
			}
			if !ok {
				return store.ProjectNotFound(t.Project)
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO tokens (id, project, role, name, created_at, expires_at, revoked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
			t.ID, t.Project, string(t.Role), t.Name, micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.RevokedAt))
		if err != nil {
			return fmt.Errorf("postgres: create token: %w", err)
		}
		if tag.RowsAffected() == 0 {
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
		revoked          *int64
	)
	err := s.pool.QueryRow(ctx, `SELECT project, role, name, created_at, expires_at, revoked_at FROM tokens WHERE id = $1`, id).
		Scan(&t.Project, &role, &t.Name, &created, &expires, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return ward.Token{}, ward.Errorf(ward.CodeNotFound, "token %s not found", id)
	}
	if err != nil {
		return ward.Token{}, fmt.Errorf("postgres: get token: %w", err)
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
	tag, err := s.pool.Exec(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 AND project = $3`,
		micros(p.Now), p.ID, p.Project)
	if err != nil {
		return fmt.Errorf("postgres: revoke token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ward.Errorf(ward.CodeNotFound, "token %s not found", p.ID)
	}
	return nil
}

// CountTokens returns how many tokens were ever recorded, revoked and
// expired ones included.
func (s *Store) CountTokens(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count tokens: %w", err)
	}
	return n, nil
}

// PutFunction creates or updates a function's spec; its code and creation
// time stay. The project must exist (not_found).
func (s *Store) PutFunction(ctx context.Context, p *store.PutFunctionParams) (ward.Function, error) {
	spec, err := json.Marshal(p.Spec)
	if err != nil {
		return ward.Function{}, fmt.Errorf("postgres: encode spec: %w", err)
	}
	var f ward.Function
	err = s.tx(ctx, func(tx pgx.Tx) error {
		ok, err := projectExists(ctx, tx, p.Project, true)
		if err != nil {
			return err
		}
		if !ok {
			return store.ProjectNotFound(p.Project)
		}
		now := micros(p.Now)
		f, err = store.ScanFunction(tx.QueryRow(ctx, `INSERT INTO functions (project, name, spec, max_concurrency, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (project, name) DO UPDATE SET spec = excluded.spec, max_concurrency = excluded.max_concurrency,
				updated_at = excluded.updated_at
			RETURNING `+store.FunctionCols,
			p.Project, p.Name, string(spec), p.Spec.Limits.MaxConcurrency, now))
		if err != nil {
			return fmt.Errorf("postgres: put function: %w", err)
		}
		return nil
	})
	return f, err
}

// GetFunction returns a function, or not_found.
func (s *Store) GetFunction(ctx context.Context, project, name string) (ward.Function, error) {
	f, err := store.ScanFunction(s.pool.QueryRow(ctx, `SELECT `+store.FunctionCols+` FROM functions WHERE project = $1 AND name = $2`, project, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return ward.Function{}, ward.Errorf(ward.CodeNotFound, "function %s not found", name)
	}
	if err != nil {
		return ward.Function{}, fmt.Errorf("postgres: get function: %w", err)
	}
	return f, nil
}

// ListFunctions returns a project's functions ordered by name; a missing
// project → not_found.
func (s *Store) ListFunctions(ctx context.Context, project string) ([]ward.Function, error) {
	fs, err := collect(ctx, s.pool, store.ScanFunction, `SELECT `+store.FunctionCols+` FROM functions WHERE project = $1 ORDER BY name`, project)
	if err != nil {
		return nil, fmt.Errorf("postgres: list functions: %w", err)
	}
	if len(fs) == 0 {
		if ok, err := projectExists(ctx, s.pool, project, false); err != nil {
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
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM functions WHERE project = $1 AND name = $2`, project, name)
		if err != nil {
			return fmt.Errorf("postgres: delete function: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ward.Errorf(ward.CodeNotFound, "function %s not found", name)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM config WHERE project = $1 AND function = $2`, project, name); err != nil {
			return fmt.Errorf("postgres: delete function config: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM secrets WHERE project = $1 AND function = $2`, project, name); err != nil {
			return fmt.Errorf("postgres: delete function secrets: %w", err)
		}
		return nil
	})
}

// PutCode stores the code under (project, digest), once, and points the
// function at it, bumping its code version and setting its code size to
// p.Size (len(p.Code) when 0). The store does not hash Code: Digest names
// the code as uploaded, and Code may be that code transformed. The first
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
	code := p.Code
	if code == nil {
		code = []byte{} // the column is NOT NULL
	}
	var f ward.Function
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		f, err = store.ScanFunction(tx.QueryRow(ctx, `UPDATE functions
			SET code_digest = $1, code_version = code_version + 1, code_size = $2, updated_at = $3
			WHERE project = $4 AND name = $5 RETURNING `+store.FunctionCols,
			p.Digest, size, micros(p.Now), p.Project, p.Function))
		if errors.Is(err, pgx.ErrNoRows) {
			return ward.Errorf(ward.CodeNotFound, "function %s not found", p.Function)
		}
		if err != nil {
			return fmt.Errorf("postgres: put code: %w", err)
		}
		// A blob stored adds its length to the project's stored bytes.
		if _, err := tx.Exec(ctx, `WITH b AS (
			INSERT INTO code_blobs (project, digest, size, data, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (project, digest) DO NOTHING RETURNING project, length(data)::bigint)
			`+usageAddSQL(`SELECT * FROM b`), p.Project, p.Digest, size, code, micros(p.Now)); err != nil {
			return fmt.Errorf("postgres: store code: %w", err)
		}
		return nil
	})
	return f, err
}

// GetCode returns the project's code blob with the digest; a blob of
// another project only, or none, → not_found.
func (s *Store) GetCode(ctx context.Context, project, digest string) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM code_blobs WHERE project = $1 AND digest = $2`, project, digest).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ward.Errorf(ward.CodeNotFound, "code %s not found", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get code: %w", err)
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
		return fmt.Errorf("postgres: encode config: %w", err)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := scopeExists(ctx, tx, p.Project, p.Function, true); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO config (project, function, data, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (project, function) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
			p.Project, p.Function, string(b), micros(p.Now)); err != nil {
			return fmt.Errorf("postgres: put config: %w", err)
		}
		return nil
	})
}

// scopeExists returns not_found unless the project (and the function,
// when set) exists; with share it locks the row it read.
func scopeExists(ctx context.Context, q querier, project, function string, share bool) error {
	var one int
	var err error
	lock := ""
	if share {
		lock = ` FOR SHARE`
	}
	if function == "" {
		err = q.QueryRow(ctx, `SELECT 1 FROM projects WHERE name = $1`+lock, project).Scan(&one)
	} else {
		err = q.QueryRow(ctx, `SELECT 1 FROM functions WHERE project = $1 AND name = $2`+lock, project, function).Scan(&one)
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows) && function == "":
		return store.ProjectNotFound(project)
	case errors.Is(err, pgx.ErrNoRows):
		return ward.Errorf(ward.CodeNotFound, "function %s not found", function)
	case err != nil:
		return fmt.Errorf("postgres: look up scope: %w", err)
	}
	return nil
}

// GetConfig returns a config object; one never set is empty. A missing
// project (or function, when set) → not_found.
func (s *Store) GetConfig(ctx context.Context, project, function string) (ward.Config, error) {
	var data string
	err := s.pool.QueryRow(ctx, `SELECT data FROM config WHERE project = $1 AND function = $2`, project, function).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		if err := scopeExists(ctx, s.pool, project, function, false); err != nil {
			return nil, err
		}
		return ward.Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get config: %w", err)
	}
	cfg := ward.Config{}
	if err := json.Unmarshal([]byte(data), &cfg); err != nil {
		return nil, fmt.Errorf("postgres: decode config: %w", err)
	}
	return cfg, nil
}
