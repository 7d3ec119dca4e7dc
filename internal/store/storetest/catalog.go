package storetest

import (
	"bytes"
	"maps"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// catalogTests cover projects, tokens, functions, code and config.
var catalogTests = []test{
	{"Projects", testProjects},
	{"Tokens", testTokens},
	{"TokenRevocation", testTokenRevocation},
	{"Functions", testFunctions},
	{"FunctionsNotFound", testFunctionsNotFound},
	{"Code", testCode},
	{"CodeErrors", testCodeErrors},
	{"Config", testConfig},
	{"ConfigErrors", testConfigErrors},
}

func testProjects(t *testing.T, e *env) {
	ps, err := e.s.ListProjects(e.ctx)
	if err != nil || len(ps) != 0 {
		t.Fatalf("ListProjects on an empty store = %v, %v; want none", ps, err)
	}
	for i, name := range []string{"zeta", "alpha", "mid"} {
		p, err := e.s.CreateProject(e.ctx, &store.CreateProjectParams{Name: name, Now: at(time.Duration(i) * time.Second)})
		if err != nil {
			t.Fatalf("CreateProject(%s): %v", name, err)
		}
		if p.Name != name {
			t.Fatalf("CreateProject(%s).Name = %q", name, p.Name)
		}
		wantTime(t, "CreateProject.CreatedAt", p.CreatedAt, at(time.Duration(i)*time.Second))
	}
	_, err = e.s.CreateProject(e.ctx, &store.CreateProjectParams{Name: "alpha", Now: at(time.Hour)})
	wantCode(t, "CreateProject(duplicate)", err, ward.CodeAlreadyExists)

	p, err := e.s.GetProject(e.ctx, "alpha")
	if err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	wantTime(t, "GetProject.CreatedAt (not changed by the duplicate)", p.CreatedAt, at(time.Second))
	_, err = e.s.GetProject(e.ctx, "nope")
	wantCode(t, "GetProject(missing)", err, ward.CodeNotFound)

	ps, err = e.s.ListProjects(e.ctx)
	if err != nil {
		t.Fatalf("ListProjects: %v", err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if got, want := mustJSON(t, names), `["alpha","mid","zeta"]`; got != want {
		t.Fatalf("ListProjects names = %s, want %s (by name)", got, want)
	}
}

func testTokens(t *testing.T, e *env) {
	e.project("p")
	n, err := e.s.CountTokens(e.ctx)
	if err != nil || n != 0 {
		t.Fatalf("CountTokens on an empty store = %d, %v; want 0", n, err)
	}
	admin := ward.Token{ID: "tok_admin", Role: ward.RoleAdmin, Name: "bootstrap", CreatedAt: t0, ExpiresAt: at(24 * time.Hour)}
	dev := ward.Token{ID: "tok_dev", Project: "p", Role: ward.RoleDeveloper, CreatedAt: at(time.Second), ExpiresAt: at(time.Hour)}
	for _, tok := range []ward.Token{admin, dev} {
		got, err := e.s.CreateToken(e.ctx, &store.CreateTokenParams{Token: tok})
		if err != nil {
			t.Fatalf("CreateToken(%s): %v", tok.ID, err)
		}
		if mustJSON(t, got) != mustJSON(t, tok) {
			t.Fatalf("CreateToken returned %s, want %s", mustJSON(t, got), mustJSON(t, tok))
		}
		got, err = e.s.GetToken(e.ctx, tok.ID)
		if err != nil {
			t.Fatalf("GetToken(%s): %v", tok.ID, err)
		}
		if mustJSON(t, got) != mustJSON(t, tok) {
			t.Fatalf("GetToken = %s, want %s", mustJSON(t, got), mustJSON(t, tok))
		}
		wantTime(t, "GetToken.ExpiresAt", got.ExpiresAt, tok.ExpiresAt)
	}
	_, err = e.s.CreateToken(e.ctx, &store.CreateTokenParams{Token: dev})
	wantCode(t, "CreateToken(duplicate ID)", err, ward.CodeAlreadyExists)
	_, err = e.s.CreateToken(e.ctx, &store.CreateTokenParams{Token: ward.Token{ID: "tok_x", Project: "nope", Role: ward.RoleViewer, CreatedAt: t0, ExpiresAt: at(time.Hour)}})
	wantCode(t, "CreateToken(missing project)", err, ward.CodeNotFound)
	_, err = e.s.GetToken(e.ctx, "tok_x")
	wantCode(t, "GetToken(token of a failed create)", err, ward.CodeNotFound)
	_, err = e.s.GetToken(e.ctx, "tok_unknown")
	wantCode(t, "GetToken(unknown)", err, ward.CodeNotFound)

	if n, err := e.s.CountTokens(e.ctx); err != nil || n != 2 {
		t.Fatalf("CountTokens = %d, %v; want 2", n, err)
	}
}

func testTokenRevocation(t *testing.T, e *env) {
	e.project("p", "q")
	for _, tok := range []ward.Token{
		{ID: "tok_admin", Role: ward.RoleAdmin, CreatedAt: t0, ExpiresAt: at(time.Hour)},
		{ID: "tok_p", Project: "p", Role: ward.RoleOwner, CreatedAt: t0, ExpiresAt: at(time.Hour)},
	} {
		if _, err := e.s.CreateToken(e.ctx, &store.CreateTokenParams{Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, project, id string
	}{
		{"unknown token", "p", "tok_nope"},
		{"other project", "q", "tok_p"},
		{"project token as admin", "", "tok_p"},
		{"admin token through a project", "p", "tok_admin"},
	} {
		err := e.s.RevokeToken(e.ctx, &store.RevokeTokenParams{Project: tc.project, ID: tc.id, Now: at(time.Minute)})
		wantCode(t, "RevokeToken("+tc.name+")", err, ward.CodeNotFound)
	}
	for _, id := range []string{"tok_admin", "tok_p"} {
		tok, err := e.s.GetToken(e.ctx, id)
		if err != nil || tok.RevokedAt != nil {
			t.Fatalf("after failed revocations, GetToken(%s) = %+v, %v; want not revoked", id, tok, err)
		}
	}

	if err := e.s.RevokeToken(e.ctx, &store.RevokeTokenParams{Project: "p", ID: "tok_p", Now: at(time.Minute)}); err != nil {
		t.Fatalf("RevokeToken(p, tok_p): %v", err)
	}
	if err := e.s.RevokeToken(e.ctx, &store.RevokeTokenParams{ID: "tok_admin", Now: at(2 * time.Minute)}); err != nil {
		t.Fatalf("RevokeToken(admin): %v", err)
	}
	// Revoking again succeeds and keeps the first time.
	if err := e.s.RevokeToken(e.ctx, &store.RevokeTokenParams{Project: "p", ID: "tok_p", Now: at(time.Hour)}); err != nil {
		t.Fatalf("RevokeToken again: %v", err)
	}
	for id, want := range map[string]time.Time{"tok_p": at(time.Minute), "tok_admin": at(2 * time.Minute)} {
		tok, err := e.s.GetToken(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wantTimePtr(t, id+".RevokedAt", tok.RevokedAt, &want)
	}
	if n, err := e.s.CountTokens(e.ctx); err != nil || n != 2 {
		t.Fatalf("CountTokens = %d, %v; want 2 (revoked tokens count)", n, err)
	}
}

func testFunctions(t *testing.T, e *env) {
	e.project("p", "q")
	spec := ward.DefaultSpec()
	spec.Limits.MaxConcurrency = 3
	spec.Retries.MaxAttempts = 4
	f, err := e.s.PutFunction(e.ctx, &store.PutFunctionParams{Project: "p", Name: "resize", Spec: spec, Now: t0})
	if err != nil {
		t.Fatalf("PutFunction: %v", err)
	}
	want := ward.Function{Project: "p", Name: "resize", Spec: spec, CreatedAt: t0, UpdatedAt: t0}
	if mustJSON(t, f) != mustJSON(t, want) {
		t.Fatalf("PutFunction = %s, want %s", mustJSON(t, f), mustJSON(t, want))
	}

	code := []byte("\x00asm module one")
	if _, err := e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "p", Function: "resize", Digest: ward.Digest(code), Code: code, Now: at(time.Second)}); err != nil {
		t.Fatalf("PutCode: %v", err)
	}
	// Updating the spec keeps code and creation time.
	spec2 := spec
	spec2.Limits.MemoryMB = 256
	f, err = e.s.PutFunction(e.ctx, &store.PutFunctionParams{Project: "p", Name: "resize", Spec: spec2, Now: at(time.Minute)})
	if err != nil {
		t.Fatalf("PutFunction(update): %v", err)
	}
	want = ward.Function{Project: "p", Name: "resize", Spec: spec2, CodeDigest: ward.Digest(code), CodeVersion: 1,
		CodeSize: int64(len(code)), CreatedAt: t0, UpdatedAt: at(time.Minute)}
	if mustJSON(t, f) != mustJSON(t, want) {
		t.Fatalf("PutFunction(update) = %s, want %s", mustJSON(t, f), mustJSON(t, want))
	}
	got, err := e.s.GetFunction(e.ctx, "p", "resize")
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if mustJSON(t, got) != mustJSON(t, want) {
		t.Fatalf("GetFunction = %s, want %s", mustJSON(t, got), mustJSON(t, want))
	}

	e.function("p", "alpha", nil)
	e.function("q", "other", nil)
	fs, err := e.s.ListFunctions(e.ctx, "p")
	if err != nil {
		t.Fatalf("ListFunctions: %v", err)
	}
	if len(fs) != 2 || fs[0].Name != "alpha" || fs[1].Name != "resize" {
		t.Fatalf("ListFunctions(p) = %s, want alpha, resize", mustJSON(t, fs))
	}
	e.project("empty")
	if fs, err := e.s.ListFunctions(e.ctx, "empty"); err != nil || len(fs) != 0 {
		t.Fatalf("ListFunctions(empty project) = %v, %v; want none", fs, err)
	}

	// Functions are per project.
	_, err = e.s.GetFunction(e.ctx, "q", "resize")
	wantCode(t, "GetFunction(other project)", err, ward.CodeNotFound)
	err = e.s.DeleteFunction(e.ctx, "q", "resize")
	wantCode(t, "DeleteFunction(other project)", err, ward.CodeNotFound)

	if err := e.s.DeleteFunction(e.ctx, "p", "resize"); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	_, err = e.s.GetFunction(e.ctx, "p", "resize")
	wantCode(t, "GetFunction(deleted)", err, ward.CodeNotFound)
	err = e.s.DeleteFunction(e.ctx, "p", "resize")
	wantCode(t, "DeleteFunction(deleted)", err, ward.CodeNotFound)
	// The code blob stays.
	if b, err := e.s.GetCode(e.ctx, "p", ward.Digest(code)); err != nil || !bytes.Equal(b, code) {
		t.Fatalf("GetCode after DeleteFunction = %q, %v; want the code", b, err)
	}
	// A function created again starts afresh.
	f = e.function("p", "resize", nil)
	if f.CodeDigest != "" || f.CodeVersion != 0 {
		t.Fatalf("recreated function has code %q v%d, want none", f.CodeDigest, f.CodeVersion)
	}
}

func testFunctionsNotFound(t *testing.T, e *env) {
	_, err := e.s.PutFunction(e.ctx, &store.PutFunctionParams{Project: "nope", Name: "f", Spec: ward.DefaultSpec(), Now: t0})
	wantCode(t, "PutFunction(missing project)", err, ward.CodeNotFound)
	_, err = e.s.ListFunctions(e.ctx, "nope")
	wantCode(t, "ListFunctions(missing project)", err, ward.CodeNotFound)
	e.project("p")
	_, err = e.s.GetFunction(e.ctx, "p", "nope")
	wantCode(t, "GetFunction(missing)", err, ward.CodeNotFound)
	err = e.s.DeleteFunction(e.ctx, "p", "nope")
	wantCode(t, "DeleteFunction(missing)", err, ward.CodeNotFound)
}

func testCode(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "a", nil)
	e.function("q", "b", nil)
	one, two := []byte("module one"), []byte("module two, longer")

	f, err := e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "p", Function: "a", Digest: ward.Digest(one), Code: one, Now: at(time.Second)})
	if err != nil {
		t.Fatalf("PutCode: %v", err)
	}
	if f.CodeDigest != ward.Digest(one) || f.CodeVersion != 1 || f.CodeSize != int64(len(one)) {
		t.Fatalf("PutCode = %s, want digest of one, version 1, size %d", mustJSON(t, f), len(one))
	}
	wantTime(t, "PutCode.UpdatedAt", f.UpdatedAt, at(time.Second))
	wantTime(t, "PutCode.CreatedAt", f.CreatedAt, t0)

	f, err = e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "p", Function: "a", Digest: ward.Digest(two), Code: two, Now: at(2 * time.Second)})
	if err != nil {
		t.Fatalf("PutCode(two): %v", err)
	}
	if f.CodeDigest != ward.Digest(two) || f.CodeVersion != 2 || f.CodeSize != int64(len(two)) {
		t.Fatalf("PutCode(two) = %s, want version 2", mustJSON(t, f))
	}
	// The same code in another project's function is that project's own
	// copy, and versions that function.
	f, err = e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "q", Function: "b", Digest: ward.Digest(one), Code: one, Now: at(3 * time.Second)})
	if err != nil || f.CodeVersion != 1 || f.CodeDigest != ward.Digest(one) {
		t.Fatalf("PutCode(q/b, one) = %s, %v; want version 1", mustJSON(t, f), err)
	}
	// Code already stored in the project still versions the function.
	f, err = e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "p", Function: "a", Digest: ward.Digest(one), Code: one, Now: at(4 * time.Second)})
	if err != nil || f.CodeVersion != 3 {
		t.Fatalf("PutCode(one again) = %s, %v; want version 3", mustJSON(t, f), err)
	}
	for _, c := range []struct {
		project string
		code    []byte
	}{{"p", one}, {"p", two}, {"q", one}} {
		b, err := e.s.GetCode(e.ctx, c.project, ward.Digest(c.code))
		if err != nil || !bytes.Equal(b, c.code) {
			t.Fatalf("GetCode(%s, %s) = %q, %v; want %q", c.project, ward.Digest(c.code), b, err, c.code)
		}
	}
	// Code is read through its project only: q never uploaded two, and r
	// nothing at all.
	_, err = e.s.GetCode(e.ctx, "q", ward.Digest(two))
	wantCode(t, "GetCode(q, code only p uploaded)", err, ward.CodeNotFound)
	e.project("r")
	_, err = e.s.GetCode(e.ctx, "r", ward.Digest(one))
	wantCode(t, "GetCode(project without code)", err, ward.CodeNotFound)
	_, err = e.s.GetCode(e.ctx, "nope", ward.Digest(one))
	wantCode(t, "GetCode(missing project)", err, ward.CodeNotFound)
	got, err := e.s.GetFunction(e.ctx, "p", "a")
	if err != nil || got.CodeVersion != 3 || got.CodeDigest != ward.Digest(one) {
		t.Fatalf("GetFunction after uploads = %s, %v", mustJSON(t, got), err)
	}
}

func testCodeErrors(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "a", nil)
	code := []byte("module")
	_, err := e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "p", Function: "nope", Digest: ward.Digest(code), Code: code, Now: t0})
	wantCode(t, "PutCode(missing function)", err, ward.CodeNotFound)
	_, err = e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "q", Function: "a", Digest: ward.Digest(code), Code: code, Now: t0})
	wantCode(t, "PutCode(function of another project)", err, ward.CodeNotFound)
	_, err = e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "nope", Function: "a", Digest: ward.Digest(code), Code: code, Now: t0})
	wantCode(t, "PutCode(missing project)", err, ward.CodeNotFound)
	for _, project := range []string{"p", "q", "nope"} {
		_, err = e.s.GetCode(e.ctx, project, ward.Digest(code))
		wantCode(t, "GetCode("+project+", after failed uploads)", err, ward.CodeNotFound)
	}
	_, err = e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "p", Function: "a", Digest: "", Code: code, Now: t0})
	wantCode(t, "PutCode(no digest)", err, ward.CodeInvalidArgument)
	_, err = e.s.GetCode(e.ctx, "p", "")
	wantCode(t, "GetCode(no digest)", err, ward.CodeNotFound)
	if f, err := e.s.GetFunction(e.ctx, "p", "a"); err != nil || f.CodeVersion != 0 {
		t.Fatalf("function after failed uploads = %s, %v; want no code", mustJSON(t, f), err)
	}
}

func testConfig(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "f", nil)
	for _, fn := range []string{"", "f"} {
		cfg, err := e.s.GetConfig(e.ctx, "p", fn)
		if err != nil || cfg == nil || len(cfg) != 0 {
			t.Fatalf("GetConfig(p, %q) never set = %v (nil: %t), %v; want an empty map", fn, cfg, cfg == nil, err)
		}
	}
	global := ward.Config{"region": "eu", "level": "1"}
	local := ward.Config{"level": "2"}
	put := func(project, fn string, cfg ward.Config) {
		t.Helper()
		if err := e.s.PutConfig(e.ctx, &store.PutConfigParams{Project: project, Function: fn, Config: cfg, Now: t0}); err != nil {
			t.Fatalf("PutConfig(%s, %q): %v", project, fn, err)
		}
	}
	put("p", "", global)
	put("p", "f", local)
	for fn, want := range map[string]ward.Config{"": global, "f": local} {
		got, err := e.s.GetConfig(e.ctx, "p", fn)
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("GetConfig(p, %q) = %v, %v; want %v", fn, got, err, want)
		}
	}
	// Put replaces the whole object.
	put("p", "", ward.Config{"region": "us"})
	if got, err := e.s.GetConfig(e.ctx, "p", ""); err != nil || !maps.Equal(got, ward.Config{"region": "us"}) {
		t.Fatalf("GetConfig after replace = %v, %v", got, err)
	}
	put("p", "f", nil)
	if got, err := e.s.GetConfig(e.ctx, "p", "f"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("GetConfig after putting nil = %v, %v; want empty", got, err)
	}
	// Other projects see nothing.
	if got, err := e.s.GetConfig(e.ctx, "q", ""); err != nil || len(got) != 0 {
		t.Fatalf("GetConfig(q) = %v, %v; want empty", got, err)
	}
	// Deleting a function drops its local config.
	put("p", "f", local)
	if err := e.s.DeleteFunction(e.ctx, "p", "f"); err != nil {
		t.Fatal(err)
	}
	e.function("p", "f", nil)
	if got, err := e.s.GetConfig(e.ctx, "p", "f"); err != nil || len(got) != 0 {
		t.Fatalf("GetConfig of a recreated function = %v, %v; want empty", got, err)
	}
}

func testConfigErrors(t *testing.T, e *env) {
	e.project("p")
	for _, tc := range []struct{ project, fn string }{{"nope", ""}, {"nope", "f"}, {"p", "nope"}} {
		err := e.s.PutConfig(e.ctx, &store.PutConfigParams{Project: tc.project, Function: tc.fn, Config: ward.Config{"a": "b"}, Now: t0})
		wantCode(t, "PutConfig("+tc.project+", "+tc.fn+")", err, ward.CodeNotFound)
		_, err = e.s.GetConfig(e.ctx, tc.project, tc.fn)
		wantCode(t, "GetConfig("+tc.project+", "+tc.fn+")", err, ward.CodeNotFound)
	}
}
