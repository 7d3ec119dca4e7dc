package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardhq/ward"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

const (
	testIss = "https://ward.example"
	testAud = "ward-api"
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testClaims returns a claim set that Verify accepts at t0.
func testClaims() claims {
	return claims{
		Project: "shop",
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIss,
			Subject:   string(ward.RoleDeveloper),
			Audience:  jwt.ClaimStrings{testAud},
			ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
			NotBefore: jwt.NewNumericDate(t0),
			IssuedAt:  jwt.NewNumericDate(t0),
			ID:        NewTokenID(),
		},
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// assertUnauthenticated checks that err is the generic unauthenticated error
// and does not echo the token.
func assertUnauthenticated(t *testing.T, name, token string, err error) {
	t.Helper()
	var we *ward.Error
	if !errors.As(err, &we) || we.Code != ward.CodeUnauthenticated {
		t.Errorf("%s: err = %v, want unauthenticated", name, err)
		return
	}
	if we.Message != errUnauthenticated().Message {
		t.Errorf("%s: message %q is not the generic one", name, we.Message)
	}
	if len(token) > 3 && strings.Contains(err.Error(), token) {
		t.Errorf("%s: error echoes the token", name)
	}
}

func TestMintVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	iss := NewIssuer(newKey(t), testIss, testAud, fixedClock(t0))
	for _, role := range allRoles {
		project := "shop"
		if role == ward.RoleAdmin || role == ward.RoleRunner {
			project = ""
		}
		in := Principal{TokenID: NewTokenID(), Project: project, Role: role, ExpiresAt: t0.Add(24 * time.Hour)}
		tok, err := iss.Mint(in)
		if err != nil {
			t.Fatalf("%s: mint: %v", role, err)
		}
		got, err := iss.Verify(tok)
		if err != nil {
			t.Fatalf("%s: verify: %v", role, err)
		}
		want := in
		want.ExpiresAt = in.ExpiresAt.Truncate(time.Second).UTC()
		if got != want {
			t.Errorf("%s: got %+v, want %+v", role, got, want)
		}
	}
}

func TestMintClaims(t *testing.T) {
	t.Parallel()
	iss := NewIssuer(newKey(t), testIss, testAud, fixedClock(t0))
	id := NewTokenID()
	tok, err := iss.Mint(Principal{TokenID: id, Project: "shop", Role: ward.RoleViewer, ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var header map[string]any
	var payload map[string]any
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	if header["alg"] != "EdDSA" || header["typ"] != "JWT" || len(header) != 2 {
		t.Errorf("header = %v", header)
	}
	sec := float64(t0.Unix())
	want := map[string]any{
		"iss":     testIss,
		"aud":     []any{testAud},
		"sub":     "viewer",
		"jti":     id,
		"project": "shop",
		"iat":     sec,
		"nbf":     sec,
		"exp":     sec + 3600,
	}
	for k, v := range want {
		g, _ := json.Marshal(payload[k])
		w, _ := json.Marshal(v)
		if string(g) != string(w) {
			t.Errorf("claim %s = %s, want %s", k, g, w)
		}
	}
	if len(payload) != len(want) {
		t.Errorf("payload has extra claims: %v", payload)
	}
}

func TestMintRejects(t *testing.T) {
	t.Parallel()
	iss := NewIssuer(newKey(t), testIss, testAud, fixedClock(t0))
	ok := Principal{TokenID: NewTokenID(), Project: "shop", Role: ward.RoleOwner, ExpiresAt: t0.Add(time.Hour)}
	tests := []struct {
		name  string
		edit  func(*Principal)
		field string
	}{
		{"no token id", func(p *Principal) { p.TokenID = "" }, "id"},
		{"bad token id", func(p *Principal) { p.TokenID = "tok_xyz" }, "id"},
		{"unknown role", func(p *Principal) { p.Role = "root" }, "role"},
		{"owner without project", func(p *Principal) { p.Project = "" }, "project"},
		{"admin with project", func(p *Principal) { p.Role = ward.RoleAdmin }, "project"},
		{"expired", func(p *Principal) { p.ExpiresAt = t0.Add(-time.Hour) }, "expires_at"},
		{"expires now", func(p *Principal) { p.ExpiresAt = t0 }, "expires_at"},
		{"expires within this second", func(p *Principal) { p.ExpiresAt = t0.Add(300 * time.Millisecond) }, "expires_at"},
		{"zero expiry", func(p *Principal) { p.ExpiresAt = time.Time{} }, "expires_at"},
	}
	for _, tt := range tests {
		p := ok
		tt.edit(&p)
		tok, err := iss.Mint(p)
		var we *ward.Error
		if !errors.As(err, &we) || we.Code != ward.CodeInvalidArgument || we.Field != tt.field {
			t.Errorf("%s: err = %v, want invalid_argument on %s", tt.name, err, tt.field)
		}
		if tok != "" {
			t.Errorf("%s: returned a token", tt.name)
		}
	}
}

func TestIssuerWithMalformedKey(t *testing.T) {
	t.Parallel()
	good := NewIssuer(newKey(t), testIss, testAud, fixedClock(t0))
	tok, err := good.Mint(Principal{TokenID: NewTokenID(), Role: ward.RoleAdmin, ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []ed25519.PrivateKey{nil, make(ed25519.PrivateKey, 10)} {
		bad := NewIssuer(key, testIss, testAud, fixedClock(t0))
		if _, err := bad.Mint(Principal{TokenID: NewTokenID(), Role: ward.RoleAdmin, ExpiresAt: t0.Add(time.Hour)}); err == nil {
			t.Errorf("key of %d bytes: mint succeeded", len(key))
		}
		_, err := bad.Verify(tok)
		assertUnauthenticated(t, "malformed key", tok, err)
	}
}

func TestVerifyTime(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	minter := NewIssuer(key, testIss, testAud, fixedClock(t0))
	exp := t0.Add(time.Hour)
	tok, err := minter.Mint(Principal{TokenID: NewTokenID(), Project: "shop", Role: ward.RoleViewer, ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	expSec := exp.Truncate(time.Second)
	iatSec := t0.Truncate(time.Second)
	tests := []struct {
		name  string
		at    time.Time
		valid bool
	}{
		{"at issue", t0, true},
		{"just before expiry", expSec.Add(-time.Second), true},
		{"expired within leeway", expSec.Add(leeway - time.Second), true},
		{"expired past leeway", expSec.Add(leeway + time.Second), false},
		{"long expired", expSec.Add(30 * 24 * time.Hour), false},
		{"issued in the future within leeway", iatSec.Add(-leeway + time.Second), true},
		{"issued in the future past leeway", iatSec.Add(-leeway - time.Second), false},
	}
	for _, tt := range tests {
		v := NewIssuer(key, testIss, testAud, fixedClock(tt.at))
		_, err := v.Verify(tok)
		if tt.valid && err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if !tt.valid {
			assertUnauthenticated(t, tt.name, tok, err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	iss := NewIssuer(key, testIss, testAud, fixedClock(t0))

	good := sign(t, jwt.SigningMethodEdDSA, key, testClaims())
	if _, err := iss.Verify(good); err != nil {
		t.Fatalf("the baseline token is rejected: %v", err)
	}
	parts := strings.Split(good, ".")

	edited := func(edit func(*claims)) string {
		c := testClaims()
		edit(&c)
		return sign(t, jwt.SigningMethodEdDSA, key, c)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	withHeader := func(extra map[string]any, signer ed25519.PrivateKey) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, testClaims())
		for k, v := range extra {
			tk.Header[k] = v
		}
		s, err := tk.SignedString(signer)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	adminPayload := func() string {
		c := testClaims()
		c.Subject = string(ward.RoleAdmin)
		c.Project = ""
		return b64(c)
	}()
	flipped := []byte(parts[2])
	flipped[5] ^= 0x01

	tests := map[string]string{
		// Claims, validly signed.
		"wrong issuer":       edited(func(c *claims) { c.Issuer = "https://evil.example" }),
		"no issuer":          edited(func(c *claims) { c.Issuer = "" }),
		"wrong audience":     edited(func(c *claims) { c.Audience = jwt.ClaimStrings{"other-api"} }),
		"no audience":        edited(func(c *claims) { c.Audience = nil }),
		"missing exp":        edited(func(c *claims) { c.ExpiresAt = nil }),
		"missing nbf":        edited(func(c *claims) { c.NotBefore = nil }),
		"missing iat":        edited(func(c *claims) { c.IssuedAt = nil }),
		"not yet valid":      edited(func(c *claims) { c.NotBefore = jwt.NewNumericDate(t0.Add(time.Hour)) }),
		"iat in the future":  edited(func(c *claims) { c.IssuedAt = jwt.NewNumericDate(t0.Add(time.Hour)) }),
		"expired":            edited(func(c *claims) { c.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Hour)) }),
		"missing jti":        edited(func(c *claims) { c.ID = "" }),
		"malformed jti":      edited(func(c *claims) { c.ID = "t_123" }),
		"unknown role":       edited(func(c *claims) { c.Subject = "root" }),
		"missing role":       edited(func(c *claims) { c.Subject = "" }),
		"admin with project": edited(func(c *claims) { c.Subject = string(ward.RoleAdmin) }),
		"owner no project":   edited(func(c *claims) { c.Project = "" }),
		"bad project name":   edited(func(c *claims) { c.Project = "../etc" }),
		"project not string": sign(t, jwt.SigningMethodEdDSA, key, jwt.MapClaims{
			"iss": testIss, "aud": testAud, "sub": "viewer", "jti": NewTokenID(), "project": 7,
			"iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Unix() + 3600,
		}),

		// Algorithms and keys.
		"alg none":              b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + ".",
		"alg none no dot":       b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1],
		"alg NONE":              b64(map[string]string{"alg": "NONE"}) + "." + parts[1] + ".",
		"hs256 with public key": sign(t, jwt.SigningMethodHS256, []byte(pub), testClaims()),
		"hs256 with pem-ish key": sign(t, jwt.SigningMethodHS256,
			[]byte(base64.StdEncoding.EncodeToString(pub)), testClaims()),
		"rs256":                 sign(t, jwt.SigningMethodRS256, rsaKey, testClaims()),
		"ps256":                 sign(t, jwt.SigningMethodPS256, rsaKey, testClaims()),
		"es256":                 sign(t, jwt.SigningMethodES256, ecKey, testClaims()),
		"other ed25519 key":     sign(t, jwt.SigningMethodEdDSA, newKey(t), testClaims()),
		"eddsa header, hs sig":  b64(map[string]string{"alg": "EdDSA", "typ": "JWT"}) + "." + parts[1] + "." + strings.Split(sign(t, jwt.SigningMethodHS256, []byte(pub), testClaims()), ".")[2],
		"kid header":            withHeader(map[string]any{"kid": "other"}, key),
		"jwk header":            withHeader(map[string]any{"jwk": map[string]string{"kty": "OKP"}}, key),
		"crit header":           withHeader(map[string]any{"crit": []string{"exp"}}, key),
		"typ not JWT":           withHeader(map[string]any{"typ": "at+jwt"}, key),
		"attacker key with jwk": withHeader(map[string]any{"jwk": map[string]string{"kty": "OKP"}}, newKey(t)),

		// Tampering.
		"tampered payload":   parts[0] + "." + adminPayload + "." + parts[2],
		"tampered header":    b64(map[string]string{"alg": "EdDSA", "typ": "JWT", "x": "y"}) + "." + parts[1] + "." + parts[2],
		"flipped signature":  parts[0] + "." + parts[1] + "." + string(flipped),
		"no signature":       parts[0] + "." + parts[1] + ".",
		"signature swapped":  parts[0] + "." + parts[1] + "." + strings.Split(sign(t, jwt.SigningMethodEdDSA, key, testClaims()), ".")[2],
		"padded signature":   good + "==",
		"trailing dot":       good + ".",
		"four parts":         good + ".AAAA",
		"leading space":      " " + good,
		"trailing newline":   good + "\n",
		"std base64 payload": parts[0] + "." + base64.StdEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2],

		// Garbage.
		"empty":       "",
		"dots":        "..",
		"one dot":     ".",
		"three parts": "a.b.c",
		"not base64":  "!!!.@@@.###",
		"json":        `{"alg":"none"}`,
		"too long":    parts[0] + "." + strings.Repeat("A", maxTokenLen) + "." + parts[2],
		"bearer text": "Bearer " + good,
		"nul bytes":   "\x00\x00\x00",
	}
	for name, tok := range tests {
		p, err := iss.Verify(tok)
		assertUnauthenticated(t, name, tok, err)
		if p != (Principal{}) {
			t.Errorf("%s: returned principal %+v with an error", name, p)
		}
	}
}

func TestVerifyAcceptsOurAudienceAmongOthers(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	iss := NewIssuer(key, testIss, testAud, fixedClock(t0))
	c := testClaims()
	c.Audience = jwt.ClaimStrings{"other", testAud}
	p, err := iss.Verify(sign(t, jwt.SigningMethodEdDSA, key, c))
	if err != nil {
		t.Fatal(err)
	}
	if p.TokenID != c.ID || p.Role != ward.RoleDeveloper || p.Project != "shop" {
		t.Fatalf("principal = %+v", p)
	}
}

func TestTokenIDs(t *testing.T) {
	t.Parallel()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = NewTokenID()
		if !ValidTokenID(ids[i]) {
			t.Fatalf("NewTokenID() = %q is not valid", ids[i])
		}
	}
	if !slices.IsSorted(ids) {
		t.Error("token IDs do not sort by creation")
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Error("duplicate token IDs")
	}
	for _, s := range []string{
		"", "tok_", "tok_0123456789abcdef0123456789abcde", "tok_0123456789abcdef0123456789abcdef0",
		"tok_0123456789ABCDEF0123456789ABCDEF", "tak_0123456789abcdef0123456789abcdef",
		"tok-0123456789abcdef0123456789abcdef", "tok_0123456789abcdef0123456789abcdeg",
		"tok_01234567-89ab-cdef-0123-456789ab",
	} {
		if ValidTokenID(s) {
			t.Errorf("ValidTokenID(%q) = true", s)
		}
	}
	if !ValidTokenID("tok_0123456789abcdef0123456789abcdef") {
		t.Error("a well-formed ID is rejected")
	}
}

func FuzzVerify(f *testing.F) {
	key := newKey(f)
	iss := NewIssuer(key, testIss, testAud, fixedClock(t0))
	good, err := iss.Mint(Principal{TokenID: NewTokenID(), Project: "shop", Role: ward.RoleOwner, ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(b64(map[string]string{"alg": "none"}) + "." + parts[1] + ".")
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(key.Public().(ed25519.PublicKey)), testClaims()))
	f.Add("")
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := iss.Verify(tok)
		if err != nil {
			assertUnauthenticated(t, "fuzz", tok, err)
			if p != (Principal{}) {
				t.Fatalf("principal %+v returned with an error", p)
			}
			return
		}
		// Only a token signed with our key can get here.
		if !ValidTokenID(p.TokenID) || ValidateGrant(p.Role, p.Project) != nil || !p.ExpiresAt.After(t0.Add(-leeway)) {
			t.Fatalf("accepted an ill-formed principal %+v", p)
		}
		if _, err := iss.Mint(p); err != nil {
			t.Fatalf("accepted principal %+v cannot be minted again: %v", p, err)
		}
	})
}

// TestVerifyRemembers checks the verified-token memory: a token verified
// once is recognised again, still expires at its exp (with the leeway), and
// a token differing in one byte is checked afresh.
func TestVerifyRemembers(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	now := t0
	v := NewIssuer(key, testIss, testAud, func() time.Time { return now })
	exp := t0.Add(time.Hour).Truncate(time.Second) // tokens carry whole seconds
	want := Principal{TokenID: NewTokenID(), Project: "shop", Role: ward.RoleDeveloper, ExpiresAt: exp}
	tok, err := v.Mint(want)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		p, err := v.Verify(tok)
		if err != nil || p != want {
			t.Fatalf("Verify #%d = %+v, %v; want %+v", i+1, p, err, want)
		}
	}
	if len(v.verified) != 1 {
		t.Fatalf("%d tokens remembered, want 1", len(v.verified))
	}
	// A changed signature byte is not the remembered token.
	bad := []byte(tok)
	bad[len(bad)-2] ^= 1
	_, err = v.Verify(string(bad))
	assertUnauthenticated(t, "tampered", string(bad), err)

	now = exp.Add(leeway - time.Second)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	now = exp.Add(leeway + time.Second)
	_, err = v.Verify(tok)
	assertUnauthenticated(t, "remembered but expired", tok, err)
}

func TestVerifyMemoryBounded(t *testing.T) {
	t.Parallel()
	v := NewIssuer(newKey(t), testIss, testAud, fixedClock(t0))
	for range maxVerified + 10 {
		tok, err := v.Mint(Principal{TokenID: NewTokenID(), Role: ward.RoleAdmin, ExpiresAt: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.verified); n > maxVerified || n == 0 {
		t.Fatalf("%d tokens remembered, want 1..%d", n, maxVerified)
	}
}
