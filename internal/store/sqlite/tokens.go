package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/wardhq/ward/internal/store"
)

// putTokens upserts token vault entries at now, with the multi-row
// statement (prepareBatch(batchPutTokens, len(tokens)) must have run).
func (s *Store) putTokens(ctx context.Context, tx *sql.Tx, tokens []store.TokenValue, now int64) error {
	return s.pieces(ctx, tx, batchPutTokens, len(tokens), func(st *sql.Stmt, lo, hi int) error {
		args := make([]any, 0, 5*(hi-lo))
		for i := lo; i < hi; i++ {
			tv := &tokens[i]
			value := tv.Value
			if value == nil {
				value = []byte{} // an empty value, not NULL
			}
			args = append(args, tv.Project, tv.Token, value, now, now)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("sqlite: write tokens: %w", err)
		}
		return nil
	})
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
	args := make([]any, 1, len(tokens)+1)
	args[0] = project
	seen := make(map[string]bool, len(tokens))
	for _, t := range tokens {
		if !seen[t] {
			seen[t] = true
			args = append(args, t)
		}
	}
	rows, err := s.r.QueryContext(ctx, getTokensSQL(len(args)-1), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get tokens: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var token string
		var value []byte
		if err := rows.Scan(&token, &value); err != nil {
			return nil, fmt.Errorf("sqlite: get tokens: %w", err)
		}
		if value == nil {
			value = []byte{}
		}
		out[token] = value
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: get tokens: %w", err)
	}
	return out, nil
}

// getTokensSQL reads the entries of one project (the first parameter) among
// n tokens (the following ones).
func getTokensSQL(n int) string {
	return `SELECT token, value FROM token_vault WHERE project = ? AND token IN (` +
		strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`
}

// purgeTokensSQL deletes up to a limit (-1 = all) of a project's entries
// written last before a time, oldest first. It scans the project's range of
// the vault's one b-tree: the vault keeps no index by update time, so that
// a submission writing a new token touches one b-tree (purging runs hourly,
// submissions all the time; migration 0004).
const purgeTokensSQL = `DELETE FROM token_vault WHERE project = ?1 AND token IN (
	SELECT token FROM token_vault
	WHERE project = ?1 AND updated_at < ?2 ORDER BY updated_at LIMIT ?3)`

// purgeAllTokensSQL is purgeTokensSQL without a limit: no order is needed.
const purgeAllTokensSQL = `DELETE FROM token_vault WHERE project = ? AND updated_at < ?`

// PurgeTokens deletes, oldest first, up to Limit (0 = all) of Project's
// token vault entries whose updated_at is before UpdatedBefore, and returns
// how many it deleted. A negative limit → invalid_argument; a project with
// nothing to purge, or none, purges nothing.
func (s *Store) PurgeTokens(ctx context.Context, p *store.PurgeTokensParams) (int, error) {
	if err := store.CheckLimit(p.Limit); err != nil {
		return 0, err
	}
	limit := int64(p.Limit)
	if limit == 0 {
		limit = -1 // SQLite: no limit
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		q, args := purgeTokensSQL, []any{p.Project, micros(p.UpdatedBefore), limit}
		if limit < 0 {
			q, args = purgeAllTokensSQL, args[:2]
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("sqlite: purge tokens: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
