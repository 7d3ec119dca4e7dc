package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/internal/store"
)

// putTokens upserts token vault entries at now in one statement. Of an
// entry given twice the last value stays (an upsert cannot touch one row
// twice, so earlier repeats are dropped first).
func putTokens(ctx context.Context, tx pgx.Tx, tokens []store.TokenValue, now int64) error {
	if len(tokens) == 0 {
		return nil
	}
	type key struct{ project, token string }
	last := make(map[key]int, len(tokens))
	for i := range tokens {
		last[key{tokens[i].Project, tokens[i].Token}] = i
	}
	projects := make([]string, 0, len(last))
	names := make([]string, 0, len(last))
	values := make([][]byte, 0, len(last))
	for i := range tokens {
		tv := &tokens[i]
		if last[key{tv.Project, tv.Token}] != i {
			continue
		}
		v := tv.Value
		if v == nil {
			v = []byte{} // an empty value, not NULL
		}
		projects = append(projects, tv.Project)
		names = append(names, tv.Token)
		values = append(values, v)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO token_vault (project, token, value, created_at, updated_at)
		SELECT p, t, v, $4, $4 FROM unnest($1::text[], $2::text[], $3::bytea[]) AS u (p, t, v)
		ON CONFLICT (project, token) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		projects, names, values, now); err != nil {
		return fmt.Errorf("postgres: write tokens: %w", err)
	}
	return nil
}

// GetTokens returns the values the vault holds for the project's tokens
// among tokens, keyed by token; a token it does not hold, or one of another
// project, is absent. Tokens may repeat. No tokens, or a project that does
// not exist, gives an empty map; more than 1000 tokens → invalid_argument.
func (s *Store) GetTokens(ctx context.Context, project string, tokens []string) (map[string][]byte, error) {
	if err := store.CheckTokens(tokens); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(tokens))
	if len(tokens) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT token, value FROM token_vault WHERE project = $1 AND token = ANY($2::text[])`,
		project, tokens)
	if err != nil {
		return nil, fmt.Errorf("postgres: get tokens: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var token string
		var value []byte
		if err := rows.Scan(&token, &value); err != nil {
			return nil, fmt.Errorf("postgres: get tokens: %w", err)
		}
		if value == nil {
			value = []byte{}
		}
		out[token] = value
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: get tokens: %w", err)
	}
	return out, nil
}

// PurgeTokens deletes, oldest first, up to Limit (0 = all) of Project's
// token vault entries whose updated_at is before UpdatedBefore, and returns
// how many it deleted. A negative limit → invalid_argument.
func (s *Store) PurgeTokens(ctx context.Context, p *store.PurgeTokensParams) (int, error) {
	if err := store.CheckLimit(p.Limit); err != nil {
		return 0, err
	}
	limit := limitArg(p.Limit)
	tag, err := s.pool.Exec(ctx, `DELETE FROM token_vault WHERE project = $1 AND token IN (
		SELECT token FROM token_vault WHERE project = $1 AND updated_at < $2
		ORDER BY updated_at, token LIMIT $3 FOR UPDATE SKIP LOCKED)`,
		p.Project, micros(p.UpdatedBefore), limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge tokens: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
