package auth

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/wardhq/ward"
)

const (
	// leeway is the clock skew tolerated when checking exp, nbf and iat.
	leeway = 10 * time.Second
	// maxTokenLen bounds the token strings Verify will parse. ward's own
	// tokens are well under 1 KiB.
	maxTokenLen = 4096
	// tokenIDPrefix starts every token ID.
	tokenIDPrefix = "tok_"
	// maxVerified bounds the verified tokens an Issuer remembers.
	maxVerified = 4096
)

// claims is the JWT claim set of a ward token: the registered claims (sub
// holds the role, jti the token ID) and the project ("" for admin and runner
// tokens).
type claims struct {
	Project string `json:"project"`
	jwt.RegisteredClaims
}

// Issuer mints and verifies ward tokens with one Ed25519 key.
type Issuer struct {
	key      ed25519.PrivateKey
	pub      ed25519.PublicKey // nil when key is malformed
	issuer   string
	audience string
	now      func() time.Time
	parser   *jwt.Parser

	// verified remembers tokens whose signature and claims checked out, by
	// SHA-256 of the token: a token is the same bytes on every call of a
	// client, and checking an Ed25519 signature costs more than the rest
	// of a small request.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]Principal
}

// NewIssuer returns an Issuer that signs with key and writes, and requires,
// the given iss and aud claims; now is its clock. With a malformed key, Mint
// fails and Verify rejects every token.
func NewIssuer(key ed25519.PrivateKey, issuer, audience string, now func() time.Time) *Issuer {
	i := &Issuer{key: key, issuer: issuer, audience: audience, now: now}
	if len(key) == ed25519.PrivateKeySize {
		i.pub = key.Public().(ed25519.PublicKey)
	}
	i.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	return i
}

// NewTokenID returns a fresh token ID: "tok_" and a UUIDv7 in 32 lowercase
// hex digits, so IDs sort by creation time.
func NewTokenID() string {
	u := uuid.Must(uuid.NewV7()) // fails only if crypto/rand does, which Go never lets return
	return tokenIDPrefix + hex.EncodeToString(u[:])
}

// ValidTokenID reports whether s has the form NewTokenID produces.
func ValidTokenID(s string) bool {
	if len(s) != len(tokenIDPrefix)+32 || s[:len(tokenIDPrefix)] != tokenIDPrefix {
		return false
	}
	for _, c := range []byte(s[len(tokenIDPrefix):]) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Mint signs a token for p. p.TokenID must come from NewTokenID, p.Role and
// p.Project must fit together (ValidateGrant), and p.ExpiresAt, which is
// truncated to whole seconds, must lie in the future. Invalid principals get
// an invalid_argument *ward.Error.
func (i *Issuer) Mint(p Principal) (string, error) {
	if i.pub == nil {
		return "", errors.New("auth: mint: the issuer's key is not an Ed25519 private key")
	}
	if !ValidTokenID(p.TokenID) {
		return "", ward.FieldError("id", "not a valid token ID")
	}
	if err := ValidateGrant(p.Role, p.Project); err != nil {
		return "", err
	}
	now := i.now()
	exp := jwt.NewNumericDate(p.ExpiresAt)
	if !exp.After(now) {
		return "", ward.FieldError("expires_at", "must lie in the future")
	}
	c := claims{
		Project: p.Project,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   string(p.Role),
			Audience:  jwt.ClaimStrings{i.audience},
			ExpiresAt: exp,
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        p.TokenID,
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("auth: mint: sign token: %w", err)
	}
	return s, nil
}

// Verify checks a token's signature (EdDSA with this issuer's key only), its
// iss, aud, exp, nbf and iat claims (with a small leeway), and its ward
// claims, and returns the principal it names. It does not consult the token
// store; Authenticator does. Every failure is the same unauthenticated
// *ward.Error, which never contains the token.
//
// A token verified before is recognised by its hash until it expires.
func (i *Issuer) Verify(token string) (Principal, error) {
	if i.pub == nil || !wellFormed(token) {
		return Principal{}, errUnauthenticated()
	}
	sum := sha256.Sum256([]byte(token))
	i.mu.Lock()
	p, ok := i.verified[sum]
	i.mu.Unlock()
	if ok {
		if i.now().Before(p.ExpiresAt.Add(leeway)) {
			return p, nil
		}
		return Principal{}, errUnauthenticated()
	}
	p, err := i.verify(token)
	if err != nil {
		return Principal{}, err
	}
	i.mu.Lock()
	if i.verified == nil || len(i.verified) >= maxVerified {
		i.verified = make(map[[sha256.Size]byte]Principal)
	}
	i.verified[sum] = p
	i.mu.Unlock()
	return p, nil
}

// verify checks a token's signature and claims.
func (i *Issuer) verify(token string) (Principal, error) {
	var c claims
	if _, err := i.parser.ParseWithClaims(token, &c, i.keyFor); err != nil {
		return Principal{}, errUnauthenticated()
	}
	p := Principal{
		TokenID: c.ID,
		Project: c.Project,
		Role:    ward.Role(c.Subject),
	}
	if c.IssuedAt == nil || !ValidTokenID(p.TokenID) || ValidateGrant(p.Role, p.Project) != nil {
		return Principal{}, errUnauthenticated()
	}
	p.ExpiresAt = c.ExpiresAt.UTC()
	return p, nil
}

// keyFor is the jwt key function: it hands out this issuer's public key for
// EdDSA tokens with a plain header and nothing else.
func (i *Issuer) keyFor(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodEdDSA {
		return nil, errors.New("unexpected signing method")
	}
	for name, v := range t.Header {
		switch name {
		case "alg":
		case "typ":
			if v != "JWT" {
				return nil, errors.New("unexpected token type")
			}
		default:
			// kid, jku, jwk, x5u, crit and friends: ward never writes them
			// and never lets a token choose its key.
			return nil, errors.New("unexpected header parameter")
		}
	}
	return i.pub, nil
}

// wellFormed reports whether s is non-empty, at most maxTokenLen long and
// made only of the characters a compact JWT uses (base64url and '.'). Go's
// base64 decoder skips newlines, so they must be refused here.
func wellFormed(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// errUnauthenticated is the one error every rejected token gets.
func errUnauthenticated() *ward.Error {
	return &ward.Error{Code: ward.CodeUnauthenticated, Message: "missing, invalid or expired token"}
}
