package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wardhq/ward"
)

const (
	// cacheTTL is how long a token record fetched from the store is trusted.
	// A revocation on another server takes effect within this time; one on
	// this server takes effect at once through Forget.
	cacheTTL = 5 * time.Second
	// cacheMax bounds the number of cached token records.
	cacheMax = 4096
)

// TokenLookup finds a token record by ID, returning a not_found *ward.Error
// when there is none. internal/store's Store satisfies it.
type TokenLookup interface {
	GetToken(ctx context.Context, id string) (ward.Token, error)
}

// Authenticator turns an Authorization header into a Principal: it verifies
// the bearer token with an Issuer and checks it against its stored record,
// so revoked tokens fail. It is safe for concurrent use.
type Authenticator struct {
	iss    *Issuer
	tokens TokenLookup
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cacheEntry
	// gen counts Forget calls; a lookup that raced with one does not cache
	// the record it fetched.
	gen uint64
}

type cacheEntry struct {
	tok   ward.Token
	until time.Time
}

// NewAuthenticator returns an Authenticator verifying tokens with iss and
// looking their records up in tokens; now is its clock.
func NewAuthenticator(iss *Issuer, tokens TokenLookup, now func() time.Time) *Authenticator {
	return &Authenticator{iss: iss, tokens: tokens, now: now, cache: make(map[string]cacheEntry)}
}

// Authenticate checks an Authorization header of the form "Bearer <token>"
// (scheme case-insensitive) and returns the token's principal. A missing,
// malformed, invalid, expired, unknown or revoked token, or one whose record
// disagrees with its claims, gets an unauthenticated *ward.Error; a failing
// token store gets an internal one wrapping the cause.
func (a *Authenticator) Authenticate(ctx context.Context, authorizationHeader string) (Principal, error) {
	token, ok := parseBearer(authorizationHeader)
	if !ok {
		return Principal{}, errUnauthenticated()
	}
	p, err := a.iss.Verify(token)
	if err != nil {
		return Principal{}, err
	}
	rec, err := a.lookup(ctx, p.TokenID)
	if err != nil {
		return Principal{}, err
	}
	if rec.ID != p.TokenID || rec.RevokedAt != nil || rec.Role != p.Role || rec.Project != p.Project ||
		(!rec.ExpiresAt.IsZero() && !a.now().Before(rec.ExpiresAt)) {
		return Principal{}, errUnauthenticated()
	}
	return p, nil
}

// Forget drops a token's cached record, so a revocation made through this
// server takes effect on the next request.
func (a *Authenticator) Forget(tokenID string) {
	a.mu.Lock()
	delete(a.cache, tokenID)
	a.gen++
	a.mu.Unlock()
}

// lookup returns the token's record from the cache or the store.
func (a *Authenticator) lookup(ctx context.Context, id string) (ward.Token, error) {
	now := a.now()
	a.mu.Lock()
	e, ok := a.cache[id]
	gen := a.gen
	a.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.tok, nil
	}

	tok, err := a.tokens.GetToken(ctx, id)
	if err != nil {
		if errors.Is(err, ward.ErrNotFound) {
			return ward.Token{}, errUnauthenticated()
		}
		internal := &ward.Error{Code: ward.CodeInternal, Message: "internal error"}
		return ward.Token{}, fmt.Errorf("%w: auth: look up token %s: %w", internal, id, err)
	}
	if tok.RevokedAt == nil {
		a.mu.Lock()
		if a.gen == gen {
			a.put(id, cacheEntry{tok: tok, until: now.Add(cacheTTL)}, now)
		}
		a.mu.Unlock()
	}
	return tok, nil
}

// put caches an entry, making room when the cache is full: expired entries
// go first, then arbitrary ones until an eighth of the cache is free, so the
// sweep runs rarely. a.mu must be held.
func (a *Authenticator) put(id string, e cacheEntry, now time.Time) {
	if _, ok := a.cache[id]; !ok && len(a.cache) >= cacheMax {
		for k, v := range a.cache {
			if !now.Before(v.until) {
				delete(a.cache, k)
			}
		}
		for k := range a.cache {
			if len(a.cache) < cacheMax-cacheMax/8 {
				break
			}
			delete(a.cache, k)
		}
	}
	a.cache[id] = e
}

// parseBearer extracts the token from "Bearer <token>". The scheme is
// case-insensitive and spaces may surround the token; the token itself is
// checked by Verify.
func parseBearer(h string) (string, bool) {
	const scheme = "bearer"
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) || h[len(scheme)] != ' ' {
		return "", false
	}
	tok := strings.Trim(h[len(scheme):], " ")
	return tok, tok != ""
}
