package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
)

// fakeTokens is an in-memory TokenLookup that counts its calls.
type fakeTokens struct {
	mu    sync.Mutex
	recs  map[string]ward.Token
	calls int
	err   error
	// during, when set, runs inside GetToken after the record is read.
	during func()
}

func newFakeTokens() *fakeTokens { return &fakeTokens{recs: make(map[string]ward.Token)} }

func (f *fakeTokens) GetToken(_ context.Context, id string) (ward.Token, error) {
	f.mu.Lock()
	f.calls++
	rec, ok := f.recs[id]
	err, during := f.err, f.during
	f.mu.Unlock()
	if during != nil {
		during()
	}
	if err != nil {
		return ward.Token{}, err
	}
	if !ok {
		return ward.Token{}, ward.Errorf(ward.CodeNotFound, "token %s not found", id)
	}
	return rec, nil
}

func (f *fakeTokens) put(t ward.Token) {
	f.mu.Lock()
	f.recs[t.ID] = t
	f.mu.Unlock()
}

func (f *fakeTokens) revoke(id string, at time.Time) {
	f.mu.Lock()
	rec := f.recs[id]
	rec.RevokedAt = &at
	f.recs[id] = rec
	f.mu.Unlock()
}

func (f *fakeTokens) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type authBundle struct {
	iss    *Issuer
	store  *fakeTokens
	clock  *testClock
	authn  *Authenticator
	mintAt time.Time
}

func newAuthBundle(t testing.TB) *authBundle {
	t.Helper()
	clock := &testClock{t: t0}
	iss := NewIssuer(newKey(t), testIss, testAud, clock.now)
	store := newFakeTokens()
	return &authBundle{iss: iss, store: store, clock: clock, authn: NewAuthenticator(iss, store, clock.now), mintAt: t0}
}

// mint mints a token for role/project valid for a day and stores its record.
func (b *authBundle) mint(t testing.TB, role ward.Role, project string) (string, ward.Token) {
	t.Helper()
	rec := ward.Token{ID: NewTokenID(), Project: project, Role: role, CreatedAt: b.mintAt, ExpiresAt: b.mintAt.Add(24 * time.Hour)}
	tok, err := b.iss.Mint(Principal{TokenID: rec.ID, Project: project, Role: role, ExpiresAt: rec.ExpiresAt})
	if err != nil {
		t.Fatal(err)
	}
	b.store.put(rec)
	return tok, rec
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t)
	for _, role := range allRoles {
		project := "shop"
		if role == ward.RoleAdmin || role == ward.RoleRunner {
			project = ""
		}
		tok, rec := b.mint(t, role, project)
		p, err := b.authn.Authenticate(context.Background(), "Bearer "+tok)
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		want := Principal{TokenID: rec.ID, Project: project, Role: role, ExpiresAt: rec.ExpiresAt.Truncate(time.Second)}
		if p != want {
			t.Errorf("%s: principal %+v, want %+v", role, p, want)
		}
	}
}

func TestAuthenticateCachesLookups(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t)
	tok, _ := b.mint(t, ward.RoleViewer, "shop")
	ctx := context.Background()
	for range 3 {
		if _, err := b.authn.Authenticate(ctx, "Bearer "+tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.store.callCount(); n != 1 {
		t.Fatalf("store consulted %d times within the cache TTL, want 1", n)
	}
	b.clock.advance(cacheTTL)
	if _, err := b.authn.Authenticate(ctx, "Bearer "+tok); err != nil {
		t.Fatal(err)
	}
	if n := b.store.callCount(); n != 2 {
		t.Fatalf("store consulted %d times after the TTL, want 2", n)
	}
}

func TestAuthenticateRevoked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("revoked before first use", func(t *testing.T) {
		t.Parallel()
		b := newAuthBundle(t)
		tok, rec := b.mint(t, ward.RoleOwner, "shop")
		b.store.revoke(rec.ID, t0)
		_, err := b.authn.Authenticate(ctx, "Bearer "+tok)
		assertUnauthenticated(t, "revoked", tok, err)
		// A revoked record is not cached as good.
		_, err = b.authn.Authenticate(ctx, "Bearer "+tok)
		assertUnauthenticated(t, "revoked again", tok, err)
	})

	t.Run("revoked here: Forget applies at once", func(t *testing.T) {
		t.Parallel()
		b := newAuthBundle(t)
		tok, rec := b.mint(t, ward.RoleOwner, "shop")
		if _, err := b.authn.Authenticate(ctx, "Bearer "+tok); err != nil {
			t.Fatal(err)
		}
		b.store.revoke(rec.ID, t0)
		b.authn.Forget(rec.ID)
		_, err := b.authn.Authenticate(ctx, "Bearer "+tok)
		assertUnauthenticated(t, "after Forget", tok, err)
	})

	t.Run("revoked elsewhere: applies after the TTL", func(t *testing.T) {
		t.Parallel()
		b := newAuthBundle(t)
		tok, rec := b.mint(t, ward.RoleOwner, "shop")
		if _, err := b.authn.Authenticate(ctx, "Bearer "+tok); err != nil {
			t.Fatal(err)
		}
		b.store.revoke(rec.ID, t0)
		b.clock.advance(cacheTTL)
		_, err := b.authn.Authenticate(ctx, "Bearer "+tok)
		assertUnauthenticated(t, "after TTL", tok, err)
	})
}

// TestForgetDuringLookup checks that a record fetched before a concurrent
// Forget is not cached: the revocation must not be undone by a slow lookup.
func TestForgetDuringLookup(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t)
	tok, rec := b.mint(t, ward.RoleOwner, "shop")
	b.store.during = func() {
		// Runs while Authenticate is inside GetToken, holding the
		// not-yet-revoked record.
		b.store.revoke(rec.ID, t0)
		b.authn.Forget(rec.ID)
	}
	if _, err := b.authn.Authenticate(context.Background(), "Bearer "+tok); err != nil {
		t.Fatalf("first call saw the record from before the revocation: %v", err)
	}
	b.store.mu.Lock()
	b.store.during = nil
	b.store.mu.Unlock()
	_, err := b.authn.Authenticate(context.Background(), "Bearer "+tok)
	assertUnauthenticated(t, "after concurrent Forget", tok, err)
}

func TestAuthenticateRecordMismatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*ward.Token)
	}{
		{"role differs", func(r *ward.Token) { r.Role = ward.RoleViewer }},
		{"role escalated in claims", func(r *ward.Token) { r.Role = ward.RoleSubmitter }},
		{"project differs", func(r *ward.Token) { r.Project = "other" }},
		{"record is admin", func(r *ward.Token) { r.Role, r.Project = ward.RoleAdmin, "" }},
		{"id differs", func(r *ward.Token) { r.ID = NewTokenID() }},
		{"record expired earlier", func(r *ward.Token) { r.ExpiresAt = t0.Add(-time.Second) }},
		{"record expires now", func(r *ward.Token) { r.ExpiresAt = t0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newAuthBundle(t)
			tok, rec := b.mint(t, ward.RoleDeveloper, "shop")
			id := rec.ID
			tt.edit(&rec)
			b.store.mu.Lock()
			b.store.recs[id] = rec
			b.store.mu.Unlock()
			p, err := b.authn.Authenticate(context.Background(), "Bearer "+tok)
			assertUnauthenticated(t, tt.name, tok, err)
			if p != (Principal{}) {
				t.Errorf("principal %+v returned with an error", p)
			}
		})
	}
}

func TestAuthenticateUnknownToken(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t)
	tok, rec := b.mint(t, ward.RoleViewer, "shop")
	b.store.mu.Lock()
	delete(b.store.recs, rec.ID)
	b.store.mu.Unlock()
	_, err := b.authn.Authenticate(context.Background(), "Bearer "+tok)
	assertUnauthenticated(t, "unknown id", tok, err)

	// A not_found wrapped by the store is still not_found.
	b.store.err = fmt.Errorf("sqlite: get token: %w", ward.ErrNotFound)
	_, err = b.authn.Authenticate(context.Background(), "Bearer "+tok)
	assertUnauthenticated(t, "wrapped not_found", tok, err)
}

func TestAuthenticateStoreFailure(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t)
	tok, _ := b.mint(t, ward.RoleViewer, "shop")
	for _, cause := range []error{
		errors.New("database is locked"),
		context.DeadlineExceeded,
		ward.Errorf(ward.CodeUnavailable, "shutting down"),
		ward.Errorf(ward.CodeUnauthenticated, "confused store"),
	} {
		b.store.mu.Lock()
		b.store.err = cause
		b.store.mu.Unlock()
		_, err := b.authn.Authenticate(context.Background(), "Bearer "+tok)
		if ward.CodeOf(err) != ward.CodeInternal {
			t.Errorf("cause %v: code %s, want internal", cause, ward.CodeOf(err))
		}
		if !errors.Is(err, cause) {
			t.Errorf("cause %v: not wrapped in %v", cause, err)
		}
		if strings.Contains(err.Error(), tok) {
			t.Errorf("cause %v: error echoes the token", cause)
		}
	}
	// Once the store recovers, the token works and nothing bad was cached.
	b.store.mu.Lock()
	b.store.err = nil
	b.store.mu.Unlock()
	if _, err := b.authn.Authenticate(context.Background(), "Bearer "+tok); err != nil {
		t.Fatal(err)
	}
}

func TestAuthenticateNeverLooksUpBadTokens(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t)
	other := newAuthBundle(t)
	forged, _ := other.mint(t, ward.RoleAdmin, "")
	_, err := b.authn.Authenticate(context.Background(), "Bearer "+forged)
	assertUnauthenticated(t, "foreign key", forged, err)
	if n := b.store.callCount(); n != 0 {
		t.Fatalf("store consulted %d times for a token with a bad signature", n)
	}
}

func TestBearerParsing(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t)
	tok, _ := b.mint(t, ward.RoleViewer, "shop")
	tests := []struct {
		header string
		ok     bool
	}{
		{"Bearer " + tok, true},
		{"bearer " + tok, true},
		{"BEARER " + tok, true},
		{"BeArEr " + tok, true},
		{"Bearer   " + tok + "  ", true},
		{"", false},
		{"Bearer", false},
		{"Bearer ", false},
		{"Bearer    ", false},
		{tok, false},
		{"Bearer" + tok, false},
		{"Bearer\t" + tok, false},
		{"Bearer:" + tok, false},
		{" Bearer " + tok, false},
		{"Basic " + tok, false},
		{"Token " + tok, false},
		{"Bearer " + tok + " " + tok, false},
		{"Bearer " + tok + "," + tok, false},
		{"Bearer " + tok + "\n", false},
		{"Bearer " + tok + "\r\n", false},
		{"Bearer \"" + tok + "\"", false},
		{"Bearer Bearer " + tok, false},
		{"Bearer " + tok + "=", false},
		{"Bearér " + tok, false},
		{"Bearer " + strings.Repeat("a", 1<<20), false},
	}
	for _, tt := range tests {
		name := tt.header
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		p, err := b.authn.Authenticate(context.Background(), tt.header)
		if tt.ok {
			if err != nil || p.Role != ward.RoleViewer {
				t.Errorf("%q: %+v, %v", name, p, err)
			}
			continue
		}
		assertUnauthenticated(t, name, tok, err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	a := NewAuthenticator(nil, nil, fixedClock(t0))
	live := cacheEntry{until: t0.Add(time.Hour)}
	for i := range 3 * cacheMax {
		a.put(fmt.Sprint(i), live, t0)
		if len(a.cache) > cacheMax {
			t.Fatalf("cache holds %d entries, over %d", len(a.cache), cacheMax)
		}
	}
	if _, ok := a.cache[fmt.Sprint(3*cacheMax-1)]; !ok {
		t.Fatal("the newest entry was not kept")
	}

	// Expired entries are swept before live ones are evicted.
	a = NewAuthenticator(nil, nil, fixedClock(t0))
	for i := range cacheMax {
		e := live
		if i%2 == 0 {
			e = cacheEntry{until: t0}
		}
		a.put(fmt.Sprint(i), e, t0)
	}
	a.put("new", live, t0)
	if got, want := len(a.cache), cacheMax/2+1; got != want {
		t.Fatalf("after a sweep the cache holds %d entries, want %d", got, want)
	}
	for k, v := range a.cache {
		if !v.until.After(t0) {
			t.Fatalf("expired entry %s survived the sweep", k)
		}
	}
}

func TestAuthenticateConcurrent(t *testing.T) {
	t.Parallel()
	b := newAuthBundle(t)
	tok, rec := b.mint(t, ward.RoleDeveloper, "shop")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for range 8 {
				if _, err := b.authn.Authenticate(context.Background(), "Bearer "+tok); err != nil {
					errs <- err
				}
				if i == 0 {
					b.authn.Forget(rec.ID)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzAuthenticateHeader(f *testing.F) {
	b := newAuthBundle(f)
	tok, rec := b.mint(f, ward.RoleSubmitter, "shop")
	revoked, revokedRec := b.mint(f, ward.RoleViewer, "shop")
	b.store.revoke(revokedRec.ID, t0)
	f.Add("Bearer " + tok)
	f.Add("bearer  " + tok + " ")
	f.Add("Bearer " + revoked)
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("Bearer ")
	f.Add("")
	f.Add("Bearer a.b.c")
	f.Fuzz(func(t *testing.T, header string) {
		p, err := b.authn.Authenticate(context.Background(), header)
		if err != nil {
			assertUnauthenticated(t, "fuzz", tok, err)
			if p != (Principal{}) {
				t.Fatalf("principal %+v returned with an error", p)
			}
			return
		}
		// The only live token is tok, so success must name it.
		if p.TokenID != rec.ID || p.Role != rec.Role || p.Project != rec.Project {
			t.Fatalf("header authenticated as %+v", p)
		}
		if got, ok := parseBearer(header); !ok || got != tok {
			t.Fatalf("accepted a header that does not carry the token")
		}
	})
}

func BenchmarkAuthenticate(b *testing.B) {
	ab := newAuthBundle(b)
	tok, _ := ab.mint(b, ward.RoleDeveloper, "shop")
	header := "Bearer " + tok
	ctx := context.Background()
	if _, err := ab.authn.Authenticate(ctx, header); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := ab.authn.Authenticate(ctx, header); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ab.authn.Authenticate(ctx, header); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	if n := ab.store.callCount(); n != 1 {
		b.Fatalf("store consulted %d times, want 1 (cached path)", n)
	}
}
