package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/auth"
	"github.com/wardhq/ward/internal/queue"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var readyErr error
	e := newEnvWith(t, envOptions{ready: func() error { mu.Lock(); defer mu.Unlock(); return readyErr }})

	r := e.do("GET", "/healthz", "", nil).wantStatus(t, http.StatusOK)
	if string(bytes.TrimSpace(r.body)) != `{"status":"ok"}` {
		t.Errorf("healthz body = %s", r.body)
	}
	if r.header.Get(requestIDHeader) == "" {
		t.Error("no request ID header")
	}
	e.do("GET", "/readyz", "", nil).wantStatus(t, http.StatusOK)

	mu.Lock()
	readyErr = errors.New("store down")
	mu.Unlock()
	r = e.do("GET", "/readyz", "", nil)
	r.wantError(t, http.StatusServiceUnavailable, ward.CodeUnavailable, "")
	if strings.Contains(string(r.body), "store down") {
		t.Error("readyz leaks the cause")
	}
	e.do("GET", "/healthz", "", nil).wantStatus(t, http.StatusOK)
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.do("GET", "/v1/nothing", e.admin, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("GET", "/", "", nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")

	r := e.do("PATCH", "/v1/projects/alpha/functions/f", e.admin, nil)
	r.wantError(t, http.StatusMethodNotAllowed, ward.CodeMethodNotAllowed, "")
	allow := r.header.Get("Allow")
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if !strings.Contains(allow, m) {
			t.Errorf("Allow = %q, missing %s", allow, m)
		}
	}
	e.do("DELETE", "/healthz", "", nil).wantError(t, http.StatusMethodNotAllowed, ward.CodeMethodNotAllowed, "")
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := e.token(ward.RoleOwner, "alpha")
	const path = "/v1/projects/alpha/functions"
	e.do("GET", path, owner, nil).wantStatus(t, http.StatusOK)

	// A token with alg "none" and otherwise plausible claims.
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := e.clock.Now().Unix()
	claims := map[string]any{"iss": "ward-test", "aud": "ward-api", "sub": "owner", "project": "alpha",
		"jti": auth.NewTokenID(), "iat": now, "nbf": now, "exp": now + 3600}
	algNone := seg(map[string]string{"alg": "none", "typ": "JWT"}) + "." + seg(claims) + "."

	// A well-formed token signed by a key the server does not know.
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	foreign, err := auth.NewIssuer(otherKey, "ward-test", "ward-api", e.clock.Now).Mint(
		auth.Principal{TokenID: auth.NewTokenID(), Project: "alpha", Role: ward.RoleOwner, ExpiresAt: e.clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		header string
	}{
		{"missing", ""},
		{"not bearer", "Basic dXNlcjpwYXNz"},
		{"empty bearer", "Bearer "},
		{"garbage", "Bearer not-a-token"},
		{"alg none", "Bearer " + algNone},
		{"foreign key", "Bearer " + foreign},
		{"tampered", "Bearer " + owner[:len(owner)-4] + "AAAA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", path, "", nil, "Authorization", tc.header)
			r.wantError(t, http.StatusUnauthorized, ward.CodeUnauthenticated, "")
			if r.header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("revoked", func(t *testing.T) {
		tok, id := e.tokenWithID(ward.RoleDeveloper, "alpha", time.Hour)
		e.do("GET", path, tok, nil).wantStatus(t, http.StatusOK)
		e.do("DELETE", "/v1/projects/alpha/tokens/"+id, owner, nil).wantStatus(t, http.StatusNoContent)
		e.do("GET", path, tok, nil).wantError(t, http.StatusUnauthorized, ward.CodeUnauthenticated, "")
	})

	t.Run("expired", func(t *testing.T) {
		tok, _ := e.tokenWithID(ward.RoleDeveloper, "alpha", time.Hour)
		e.do("GET", path, tok, nil).wantStatus(t, http.StatusOK)
		e.clock.Advance(2 * time.Hour)
		e.do("GET", path, tok, nil).wantError(t, http.StatusUnauthorized, ward.CodeUnauthenticated, "")
	})
}

func TestProjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var p ward.Project
	e.do("POST", "/v1/projects", e.admin, map[string]string{"name": "gamma"}).wantStatus(t, http.StatusCreated).decode(t, &p)
	if p.Name != "gamma" || p.CreatedAt.IsZero() {
		t.Errorf("created %+v", p)
	}
	e.do("POST", "/v1/projects", e.admin, map[string]string{"name": "gamma"}).wantError(t, http.StatusConflict, ward.CodeAlreadyExists, "")
	for _, bad := range []string{"", "Gamma", "-g", "a_b", strings.Repeat("a", 64), "ü"} {
		e.do("POST", "/v1/projects", e.admin, map[string]string{"name": bad}).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "name")
	}
	e.do("POST", "/v1/projects", e.admin, `{"name":"x","owner":"y"}`).wantError(t, http.StatusBadRequest, ward.CodeUnknownField, "owner")
	e.do("POST", "/v1/projects", e.token(ward.RoleOwner, "alpha"), map[string]string{"name": "delta"}).
		wantError(t, http.StatusForbidden, ward.CodeForbidden, "")

	names := func(token string) []string {
		var l projectList
		e.do("GET", "/v1/projects", token, nil).wantStatus(t, http.StatusOK).decode(t, &l)
		var out []string
		for _, p := range l.Projects {
			out = append(out, p.Name)
		}
		return out
	}
	if got := strings.Join(names(e.admin), ","); got != "alpha,beta,gamma" {
		t.Errorf("admin sees %s", got)
	}
	if got := strings.Join(names(e.token(ward.RoleViewer, "beta")), ","); got != "beta" {
		t.Errorf("beta viewer sees %s", got)
	}
	if got := names(e.token(ward.RoleRunner, "")); len(got) != 0 {
		t.Errorf("runner sees %v", got)
	}

	last := e.lastAudit()
	if last["action"] != "POST /v1/projects" || last["role"] != "owner" || last["outcome"] != "forbidden" {
		t.Errorf("last audit = %v", last)
	}
}

func TestUnknownProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/v1/projects/nope/functions", "/v1/projects/NOPE/functions", "/v1/projects/nope/tasks/t_1"} {
		e.do("GET", path, e.admin, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := e.token(ward.RoleOwner, "alpha")
	developer := e.token(ward.RoleDeveloper, "alpha")

	var created ward.CreateTokenResponse
	e.do("POST", "/v1/projects/alpha/tokens", owner, ward.CreateTokenRequest{Role: ward.RoleViewer, Name: "ci reader"}).
		wantStatus(t, http.StatusCreated).decode(t, &created)
	if !auth.ValidTokenID(created.ID) || created.Token == "" {
		t.Fatalf("created %+v", created)
	}
	if want := e.clock.Now().Add(24 * time.Hour); !created.ExpiresAt.Equal(want) {
		t.Errorf("default expiry %v, want %v", created.ExpiresAt, want)
	}
	rec, err := e.st.GetToken(e.ctx, created.ID)
	if err != nil || rec.Role != ward.RoleViewer || rec.Project != "alpha" || rec.Name != "ci reader" {
		t.Errorf("stored token %+v, %v", rec, err)
	}
	last := e.lastAudit()
	if last["action"] != "POST /v1/projects/{p}/tokens" || last["resource"] != created.ID || last["outcome"] != "ok" || last["role"] != "owner" {
		t.Errorf("mint audit = %v", last)
	}
	// The new token works, with its role's scopes.
	e.do("GET", "/v1/projects/alpha/functions", created.Token, nil).wantStatus(t, http.StatusOK)
	e.do("PUT", "/v1/projects/alpha/config", created.Token, map[string]string{}).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	if strings.Contains(fmt.Sprint(e.auditEntries()), created.Token) {
		t.Error("the token string reached the audit log")
	}

	var long ward.CreateTokenResponse
	e.do("POST", "/v1/projects/alpha/tokens", owner, ward.CreateTokenRequest{Role: ward.RoleSubmitter, TTL: "8760h"}).
		wantStatus(t, http.StatusCreated).decode(t, &long)
	if want := e.clock.Now().Add(8760 * time.Hour); !long.ExpiresAt.Equal(want) {
		t.Errorf("8760h expiry %v, want %v", long.ExpiresAt, want)
	}

	for _, ttl := range []string{"abc", "0s", "-1h", "8761h", "1", "10ms"} {
		e.do("POST", "/v1/projects/alpha/tokens", owner, ward.CreateTokenRequest{Role: ward.RoleViewer, TTL: ttl}).
			wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "ttl")
	}
	e.do("POST", "/v1/projects/alpha/tokens", owner, ward.CreateTokenRequest{Role: "root"}).
		wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "role")
	e.do("POST", "/v1/projects/alpha/tokens", owner, ward.CreateTokenRequest{Role: ward.RoleViewer, Name: "a\x00b"}).
		wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "name")
	// Owners mint owner and below in their project, never admin or runner.
	for _, role := range []ward.Role{ward.RoleAdmin, ward.RoleRunner} {
		e.do("POST", "/v1/projects/alpha/tokens", owner, ward.CreateTokenRequest{Role: role}).
			wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	}
	e.do("POST", "/v1/projects/alpha/tokens", owner, ward.CreateTokenRequest{Role: ward.RoleOwner}).wantStatus(t, http.StatusCreated)
	e.do("POST", "/v1/projects/alpha/tokens", developer, ward.CreateTokenRequest{Role: ward.RoleViewer}).
		wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	// Admins mint anything; admin tokens belong to no project.
	var adm ward.CreateTokenResponse
	e.do("POST", "/v1/projects/alpha/tokens", e.admin, ward.CreateTokenRequest{Role: ward.RoleAdmin, TTL: "1h"}).
		wantStatus(t, http.StatusCreated).decode(t, &adm)
	if rec, _ := e.st.GetToken(e.ctx, adm.ID); rec.Project != "" {
		t.Errorf("admin token recorded with project %q", rec.Project)
	}
	e.do("GET", "/v1/projects", adm.Token, nil).wantStatus(t, http.StatusOK)

	// Revocation.
	e.do("DELETE", "/v1/projects/alpha/tokens/"+created.ID, developer, nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	e.do("DELETE", "/v1/projects/beta/tokens/"+created.ID, e.admin, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("DELETE", "/v1/projects/alpha/tokens/"+adm.ID, owner, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("DELETE", "/v1/projects/alpha/tokens/tok_nope", owner, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("DELETE", "/v1/projects/alpha/tokens/"+auth.NewTokenID(), owner, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("DELETE", "/v1/projects/alpha/tokens/"+created.ID, owner, nil).wantStatus(t, http.StatusNoContent)
	e.do("GET", "/v1/projects/alpha/functions", created.Token, nil).wantError(t, http.StatusUnauthorized, ward.CodeUnauthenticated, "")
	e.do("DELETE", "/v1/projects/alpha/tokens/"+created.ID, owner, nil).wantStatus(t, http.StatusNoContent) // idempotent
	last = e.lastAudit()
	if last["action"] != "DELETE /v1/projects/{p}/tokens/{id}" || last["resource"] != created.ID || last["outcome"] != "ok" {
		t.Errorf("revoke audit = %v", last)
	}
	// An admin revokes an admin token through any project's route.
	e.do("DELETE", "/v1/projects/beta/tokens/"+adm.ID, e.admin, nil).wantStatus(t, http.StatusNoContent)
	e.do("GET", "/v1/projects", adm.Token, nil).wantError(t, http.StatusUnauthorized, ward.CodeUnauthenticated, "")
}

func TestFunctions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.token(ward.RoleDeveloper, "alpha")
	const path = "/v1/projects/alpha/functions/resize"

	var fn ward.Function
	e.do("PUT", path, dev, `{"limits":{"memory_mb":128}}`).wantStatus(t, http.StatusCreated).decode(t, &fn)
	want := ward.DefaultSpec()
	want.Limits.MemoryMB = 128
	if fn.Name != "resize" || fn.Project != "alpha" || fn.Spec.Limits != want.Limits || fn.Spec.Retries != want.Retries || fn.CodeDigest != "" {
		t.Errorf("created %+v", fn)
	}
	e.do("PUT", path, dev, `{"limits":{"timeout_s":5}}`).wantStatus(t, http.StatusOK).decode(t, &fn)
	if fn.Spec.Limits.TimeoutS != 5 || fn.Spec.Limits.MemoryMB != ward.DefaultMemoryMB {
		t.Errorf("updated %+v", fn.Spec)
	}
	e.do("GET", path, dev, nil).wantStatus(t, http.StatusOK).decode(t, &fn)
	if fn.Spec.Limits.TimeoutS != 5 {
		t.Errorf("got %+v", fn.Spec)
	}
	e.do("PUT", "/v1/projects/alpha/functions/other", dev, `{}`).wantStatus(t, http.StatusCreated)
	var list functionList
	e.do("GET", "/v1/projects/alpha/functions", dev, nil).wantStatus(t, http.StatusOK).decode(t, &list)
	if len(list.Functions) != 2 {
		t.Errorf("listed %d functions", len(list.Functions))
	}
	var empty map[string]json.RawMessage
	e.do("GET", "/v1/projects/beta/functions", e.admin, nil).wantStatus(t, http.StatusOK).decode(t, &empty)
	if string(empty["functions"]) != "[]" {
		t.Errorf("empty list = %s", empty["functions"])
	}
	e.do("DELETE", path, dev, nil).wantStatus(t, http.StatusNoContent)
	e.do("GET", path, dev, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("DELETE", path, dev, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")

	bad := []struct {
		name   string
		path   string
		body   string
		status int
		code   ward.Code
		field  string
	}{
		{"bad name", "/v1/projects/alpha/functions/Resize", `{}`, 400, ward.CodeInvalidArgument, "name"},
		{"bad name dash", "/v1/projects/alpha/functions/-x", `{}`, 400, ward.CodeInvalidArgument, "name"},
		{"malformed", path, `{"limits":`, 400, ward.CodeInvalidJSON, ""},
		{"not json", path, `limits`, 400, ward.CodeInvalidJSON, ""},
		{"empty", path, ``, 400, ward.CodeInvalidJSON, ""},
		{"trailing", path, `{} {}`, 400, ward.CodeInvalidJSON, ""},
		{"trailing garbage", path, `{}x`, 400, ward.CodeInvalidJSON, ""},
		{"unknown field", path, `{"limits":{"memory_mb":64,"gpu":1}}`, 400, ward.CodeUnknownField, "limits.gpu"},
		{"unknown top field", path, `{"image":"x"}`, 400, ward.CodeUnknownField, "image"},
		{"wrong type", path, `{"limits":{"timeout_s":"5"}}`, 400, ward.CodeInvalidArgument, "limits.timeout_s"},
		{"array", path, `[]`, 400, ward.CodeInvalidArgument, ""},
		{"memory out of range", path, `{"limits":{"memory_mb":99999}}`, 400, ward.CodeInvalidArgument, "limits.memory_mb"},
		{"timeout out of range", path, `{"limits":{"timeout_s":3601}}`, 400, ward.CodeInvalidArgument, "limits.timeout_s"},
		{"unknown runtime", path, `{"runtime":"docker"}`, 400, ward.CodeInvalidArgument, "runtime"},
		{"oversize", path, `{"runtime":"` + strings.Repeat("w", maxJSONBody) + `"}`, 413, ward.CodeBodyTooLarge, ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			e.do("PUT", tc.path, dev, tc.body).wantError(t, tc.status, tc.code, tc.field)
		})
	}
}

func TestCodeUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev, devID := e.tokenWithID(ward.RoleDeveloper, "alpha", time.Hour)
	e.do("PUT", "/v1/projects/alpha/functions/f", dev, `{}`).wantStatus(t, http.StatusCreated)
	const path = "/v1/projects/alpha/functions/f/code"

	mod := module(t, "echo")
	sum := sha256.Sum256(mod)
	var up ward.CodeUploadResponse
	e.do("PUT", path, dev, mod, "Content-Type", "application/wasm").wantStatus(t, http.StatusOK).decode(t, &up)
	if up.Digest != "sha256:"+hex.EncodeToString(sum[:]) || up.Version != 1 || up.Size != int64(len(mod)) || up.Scan != "ok" {
		t.Errorf("upload = %+v", up)
	}
	stored, err := e.st.GetCode(e.ctx, "alpha", up.Digest)
	if err != nil || !bytes.Equal(stored, mod) {
		t.Errorf("stored code %x, %v", stored, err)
	}
	last := e.lastAudit()
	if last["action"] != "PUT /v1/projects/{p}/functions/{fn}/code" || last["actor"] != devID || last["resource"] != "f" ||
		last["project"] != "alpha" || last["outcome"] != "ok" {
		t.Errorf("audit = %v", last)
	}

	e.do("PUT", path, dev, module(t, "exit3"), "Content-Type", "application/wasm; charset=binary").wantStatus(t, http.StatusOK).decode(t, &up)
	if up.Version != 2 {
		t.Errorf("second upload version %d", up.Version)
	}
	var fn ward.Function
	e.do("GET", "/v1/projects/alpha/functions/f", dev, nil).decode(t, &fn)
	if fn.CodeDigest != up.Digest || fn.CodeVersion != 2 {
		t.Errorf("function after upload %+v", fn)
	}

	for _, name := range []string{"nostart", "badimport"} {
		e.do("PUT", path, dev, module(t, name), "Content-Type", "application/wasm").
			wantError(t, http.StatusBadRequest, ward.CodeInvalidModule, "")
	}
	e.do("PUT", path, dev, []byte("\x00asm\x01\x00\x00\x00garbage"), "Content-Type", "application/wasm").
		wantError(t, http.StatusBadRequest, ward.CodeInvalidModule, "")
	e.do("PUT", path, dev, []byte("#!/bin/sh\necho hi\n"), "Content-Type", "application/wasm").
		wantError(t, http.StatusBadRequest, ward.CodeInvalidModule, "")
	e.do("PUT", path, dev, []byte{}, "Content-Type", "application/wasm").wantError(t, http.StatusBadRequest, ward.CodeInvalidModule, "")
	if last := e.lastAudit(); last["outcome"] != "invalid_module" {
		t.Errorf("audit of rejected upload = %v", last)
	}
	for _, ct := range []string{"", "application/octet-stream", "application/json", "application/wasm;;"} {
		e.do("PUT", path, dev, mod, "Content-Type", ct).wantError(t, http.StatusUnsupportedMediaType, ward.CodeUnsupportedMedia, "")
	}
	// An image for a wasm function.
	e.do("PUT", path, dev, mod, "Content-Type", "application/x-tar").wantError(t, http.StatusConflict, ward.CodeRuntimeMismatch, "")
	// A function with code keeps its runtime.
	e.do("PUT", "/v1/projects/alpha/functions/f", dev, `{"runtime":"oci"}`).wantError(t, http.StatusConflict, ward.CodeRuntimeMismatch, "runtime")
	e.do("PUT", "/v1/projects/alpha/functions/nope/code", dev, mod, "Content-Type", "application/wasm").
		wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("PUT", "/v1/projects/alpha/functions/No/code", dev, mod, "Content-Type", "application/wasm").
		wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "name")
	e.do("PUT", path, e.token(ward.RoleViewer, "alpha"), mod, "Content-Type", "application/wasm").
		wantError(t, http.StatusForbidden, ward.CodeForbidden, "")

	big := make([]byte, maxCodeBody+1)
	copy(big, mod)
	e.do("PUT", path, dev, big, "Content-Type", "application/wasm").wantError(t, http.StatusRequestEntityTooLarge, ward.CodeBodyTooLarge, "")
	e.do("GET", "/v1/projects/alpha/functions/f", dev, nil).decode(t, &fn)
	if fn.CodeVersion != 2 {
		t.Errorf("rejected uploads changed the code: version %d", fn.CodeVersion)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev, devID := e.tokenWithID(ward.RoleDeveloper, "alpha", time.Hour)
	e.do("PUT", "/v1/projects/alpha/functions/f", dev, `{}`).wantStatus(t, http.StatusCreated)

	for _, path := range []string{"/v1/projects/alpha/config", "/v1/projects/alpha/functions/f/config"} {
		var cfg ward.Config
		e.do("GET", path, dev, nil).wantStatus(t, http.StatusOK).decode(t, &cfg)
		if len(cfg) != 0 {
			t.Errorf("%s initially %v", path, cfg)
		}
		e.do("PUT", path, dev, ward.Config{"REGION": "eu", "MODE": path}).wantStatus(t, http.StatusOK).decode(t, &cfg)
		if cfg["REGION"] != "eu" || cfg["MODE"] != path {
			t.Errorf("PUT %s answered %v", path, cfg)
		}
		cfg = nil
		e.do("GET", path, dev, nil).wantStatus(t, http.StatusOK).decode(t, &cfg)
		if len(cfg) != 2 || cfg["MODE"] != path {
			t.Errorf("GET %s = %v", path, cfg)
		}
		last := e.lastAudit()
		if last["action"] != "PUT "+strings.Replace(strings.Replace(path, "alpha", "{p}", 1), "/f/", "/{fn}/", 1) ||
			last["actor"] != devID || last["outcome"] != "ok" {
			t.Errorf("audit = %v", last)
		}
		if strings.Contains(fmt.Sprint(e.auditEntries()), "eu") {
			t.Error("config values reached the audit log")
		}

		for _, tc := range []struct {
			body  string
			code  ward.Code
			field string
		}{
			{`{"A":1}`, ward.CodeInvalidArgument, "A"},
			{`{"A":null}`, "", ""}, // null leaves a string empty: accepted
			{`null`, ward.CodeInvalidArgument, ""},
			{`[]`, ward.CodeInvalidArgument, ""},
			{`"x"`, ward.CodeInvalidArgument, ""},
			{`{"":"x"}`, ward.CodeInvalidArgument, ""},
			{`{"A":"x"`, ward.CodeInvalidJSON, ""},
			{`{"A":"x"}{}`, ward.CodeInvalidJSON, ""},
		} {
			r := e.do("PUT", path, dev, tc.body)
			if tc.code == "" {
				r.wantStatus(t, http.StatusOK)
				continue
			}
			r.wantError(t, http.StatusBadRequest, tc.code, tc.field)
		}
	}
	e.do("PUT", "/v1/projects/alpha/functions/nope/config", dev, `{}`).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("GET", "/v1/projects/alpha/functions/nope/config", dev, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("PUT", "/v1/projects/alpha/config", dev, `{"A":"`+strings.Repeat("x", maxJSONBody)+`"}`).
		wantError(t, http.StatusRequestEntityTooLarge, ward.CodeBodyTooLarge, "")
}

func TestSubmit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	spec := ward.DefaultSpec()
	spec.Limits.MaxPayloadKB = 1
	spec.Limits.TimeoutS = 10
	fn := e.function("alpha", "f", spec)
	e.do("PUT", "/v1/projects/alpha/functions/nocode", e.admin, `{}`).wantStatus(t, http.StatusCreated)
	sub, subID := e.tokenWithID(ward.RoleSubmitter, "alpha", time.Hour)
	const path = "/v1/projects/alpha/tasks"

	var task ward.Task
	e.do("POST", path, sub, `{"function":"f","payload":{"n":1},"priority":2,"labels":{"k":"v"},"timeout_s":10}`).
		wantStatus(t, http.StatusAccepted).decode(t, &task)
	if !strings.HasPrefix(task.ID, "t_") || task.Function != "f" || task.Project != "alpha" || task.Status != ward.StatusQueued ||
		task.Priority != 2 || task.CodeDigest != fn.CodeDigest || task.Labels["k"] != "v" || task.TimeoutS != 10 || task.PayloadSize != len(`{"n":1}`) {
		t.Errorf("task = %+v", task)
	}
	rec, err := e.st.GetTask(e.ctx, "alpha", task.ID)
	if err != nil || rec.SubmittedBy != subID {
		t.Errorf("stored %+v, %v", rec, err)
	}
	payload, _ := e.st.GetTaskBody(e.ctx, "alpha", task.ID, store.BodyPayload)
	if string(payload) != `{"n":1}` {
		t.Errorf("stored payload %q", payload)
	}

	// payload_b64 carries bytes.
	e.do("POST", path, sub, ward.SubmitRequest{Function: "f", PayloadB64: []byte{0, 1, 2}}).wantStatus(t, http.StatusAccepted).decode(t, &task)
	if payload, _ := e.st.GetTaskBody(e.ctx, "alpha", task.ID, store.BodyPayload); !bytes.Equal(payload, []byte{0, 1, 2}) {
		t.Errorf("stored b64 payload %v", payload)
	}

	// A repeated idempotency key answers 200 with the first task.
	var first, again ward.Task
	e.do("POST", path, sub, `{"function":"f","idempotency_key":"k1"}`).wantStatus(t, http.StatusAccepted).decode(t, &first)
	e.do("POST", path, sub, `{"function":"f","idempotency_key":"k1"}`).wantStatus(t, http.StatusOK).decode(t, &again)
	if first.ID != again.ID {
		t.Errorf("idempotent repeat made %s, first %s", again.ID, first.ID)
	}
	// A submitter's keys are its own: another submitter reusing one gets a
	// task of its own and learns nothing of the first; so does a developer.
	sub2 := e.token(ward.RoleSubmitter, "alpha")
	var other, otherAgain ward.Task
	e.do("POST", path, sub2, `{"function":"f","idempotency_key":"k1"}`).wantStatus(t, http.StatusAccepted).decode(t, &other)
	e.do("POST", path, sub2, `{"function":"f","idempotency_key":"k1"}`).wantStatus(t, http.StatusOK).decode(t, &otherAgain)
	if other.ID == first.ID || otherAgain.ID != other.ID {
		t.Errorf("second submitter's key k1: %s then %s (first submitter's task %s)", other.ID, otherAgain.ID, first.ID)
	}
	var batch ward.BatchSubmitResponse
	e.do("POST", path+"/batch", sub2, `{"tasks":[{"function":"f","idempotency_key":"k1"},{"function":"f","idempotency_key":"k2"}]}`).
		wantStatus(t, http.StatusAccepted).decode(t, &batch)
	if batch.Tasks[0].ID != other.ID || batch.Tasks[1].ID == other.ID {
		t.Errorf("batch with keys k1, k2: %s, %s", batch.Tasks[0].ID, batch.Tasks[1].ID)
	}
	var devTask ward.Task
	e.do("POST", path, e.token(ward.RoleDeveloper, "alpha"), `{"function":"f","idempotency_key":"k1"}`).wantStatus(t, http.StatusAccepted).decode(t, &devTask)
	e.do("POST", path, sub, `{"function":"f","idempotency_key":"`+strings.Repeat("k", 257)+`"}`).
		wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "idempotency_key")
	e.do("POST", path+"/batch", sub, `{"tasks":[{"function":"f"},{"function":"f","idempotency_key":"`+strings.Repeat("k", 257)+`"}]}`).
		wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "tasks[1].idempotency_key")

	bad := []struct {
		name   string
		body   string
		status int
		code   ward.Code
		field  string
	}{
		{"malformed", `{"function":"f"`, 400, ward.CodeInvalidJSON, ""},
		{"empty", ``, 400, ward.CodeInvalidJSON, ""},
		{"trailing", `{"function":"f"} x`, 400, ward.CodeInvalidJSON, ""},
		{"unknown field", `{"function":"f","color":"red"}`, 400, ward.CodeUnknownField, "color"},
		{"no function", `{"payload":1}`, 400, ward.CodeInvalidArgument, "function"},
		{"bad function name", `{"function":"F!"}`, 400, ward.CodeInvalidArgument, "function"},
		{"unknown function", `{"function":"nope"}`, 404, ward.CodeNotFound, "function"},
		{"function without code", `{"function":"nocode"}`, 409, ward.CodeNoCode, "function"},
		{"priority high", `{"function":"f","priority":3}`, 400, ward.CodeInvalidArgument, "priority"},
		{"priority negative", `{"function":"f","priority":-1}`, 400, ward.CodeInvalidArgument, "priority"},
		{"priority type", `{"function":"f","priority":"high"}`, 400, ward.CodeInvalidArgument, "priority"},
		{"priority overflow", `{"function":"f","priority":1e99}`, 400, ward.CodeInvalidArgument, "priority"},
		{"timeout above function's", `{"function":"f","timeout_s":11}`, 400, ward.CodeInvalidArgument, "timeout_s"},
		{"delay negative", `{"function":"f","delay_s":-5}`, 400, ward.CodeInvalidArgument, "delay_s"},
		{"max attempts", `{"function":"f","max_attempts":21}`, 400, ward.CodeInvalidArgument, "max_attempts"},
		{"both payloads", `{"function":"f","payload":1,"payload_b64":"AA=="}`, 400, ward.CodeInvalidArgument, "payload"},
		{"bad base64", `{"function":"f","payload_b64":"!!"}`, 400, ward.CodeInvalidArgument, "payload_b64"},
		{"too many labels", `{"function":"f","labels":{` + labels(17) + `}}`, 400, ward.CodeInvalidArgument, "labels"},
		{"payload too large", `{"function":"f","payload":"` + strings.Repeat("x", 1100) + `"}`, 413, ward.CodePayloadTooLarge, "payload"},
		{"body too large", `{"function":"f","payload":"` + strings.Repeat("x", maxSubmitBody) + `"}`, 413, ward.CodeBodyTooLarge, ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			e.do("POST", path, sub, tc.body).wantError(t, tc.status, tc.code, tc.field)
		})
	}
	e.do("POST", path, e.token(ward.RoleViewer, "alpha"), `{"function":"f"}`).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")

	recs, err := e.st.ListTasks(e.ctx, &store.ListTasksParams{Project: "alpha", Limit: 100})
	if err != nil || len(recs) != 6 {
		t.Errorf("%d tasks stored after the bad submissions, want 6 (%v)", len(recs), err)
	}
}

func labels(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"k%d":"v"`, i))
	}
	return strings.Join(parts, ",")
}

func TestSubmitBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	e.function("alpha", "g", ward.DefaultSpec())
	dev := e.token(ward.RoleDeveloper, "alpha")
	const path = "/v1/projects/alpha/tasks/batch"

	var out ward.BatchSubmitResponse
	e.do("POST", path, dev, `{"tasks":[{"function":"f","payload":1},{"function":"g","priority":1},{"function":"f"}]}`).
		wantStatus(t, http.StatusAccepted).decode(t, &out)
	if len(out.Tasks) != 3 || out.Tasks[0].Function != "f" || out.Tasks[1].Function != "g" || out.Tasks[1].Priority != 1 || out.Tasks[2].Function != "f" {
		t.Errorf("batch = %+v", out.Tasks)
	}

	many := `{"tasks":[` + strings.TrimSuffix(strings.Repeat(`{"function":"f"},`, ward.MaxBatch+1), ",") + `]}`
	bad := []struct {
		name   string
		body   string
		status int
		code   ward.Code
		field  string
	}{
		{"empty", `{"tasks":[]}`, 400, ward.CodeInvalidArgument, "tasks"},
		{"missing", `{}`, 400, ward.CodeInvalidArgument, "tasks"},
		{"too many", many, 400, ward.CodeInvalidArgument, "tasks"},
		{"bad priority", `{"tasks":[{"function":"f"},{"function":"f","priority":7}]}`, 400, ward.CodeInvalidArgument, "tasks[1].priority"},
		{"bad name", `{"tasks":[{"function":"f"},{"function":"f"},{"function":"F"}]}`, 400, ward.CodeInvalidArgument, "tasks[2].function"},
		{"unknown function", `{"tasks":[{"function":"nope"}]}`, 404, ward.CodeNotFound, "tasks[0].function"},
		{"unknown field", `{"tasks":[{"function":"f","x":1}]}`, 400, ward.CodeUnknownField, "tasks[0].x"},
		{"case folded field", `{"tasks":[{"function":"f"},{"Function":"f"}]}`, 400, ward.CodeUnknownField, "tasks[1].Function"},
		{"duplicate key", `{"tasks":[{"function":"f","function":"g"}]}`, 400, ward.CodeInvalidJSON, "tasks[0].function"},
		{"label type", `{"tasks":[{"function":"f","labels":{"a":1}}]}`, 400, ward.CodeInvalidArgument, "tasks[0].labels.a"},
		{"not a list", `{"tasks":{}}`, 400, ward.CodeInvalidArgument, "tasks"},
		{"malformed", `{"tasks":[`, 400, ward.CodeInvalidJSON, ""},
		{"oversize", `{"tasks":[{"function":"f","payload":"` + strings.Repeat("x", maxSubmitBody) + `"}]}`, 413, ward.CodeBodyTooLarge, ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			e.do("POST", path, dev, tc.body).wantError(t, tc.status, tc.code, tc.field)
		})
	}
	// All or nothing: the failed batches stored nothing.
	recs, _ := e.st.ListTasks(e.ctx, &store.ListTasksParams{Project: "alpha", Limit: 100})
	if len(recs) != 3 {
		t.Errorf("%d tasks stored, want 3", len(recs))
	}
}

func TestListTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	e.function("alpha", "g", ward.DefaultSpec())
	viewer := e.token(ward.RoleViewer, "alpha")
	var ids []string
	for i := range 5 {
		fn := "f"
		if i%2 == 1 {
			fn = "g"
		}
		ids = append(ids, e.submit("alpha", e.admin, ward.SubmitRequest{Function: fn}).ID)
	}

	// Page through all five, two at a time, newest first.
	var got []string
	cursor := ""
	for range 5 {
		var page ward.TaskList
		e.do("GET", "/v1/projects/alpha/tasks?limit=2&cursor="+cursor, viewer, nil).wantStatus(t, http.StatusOK).decode(t, &page)
		for _, task := range page.Tasks {
			got = append(got, task.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(got) != 5 || got[0] != ids[4] || got[4] != ids[0] {
		t.Errorf("paged %v, want newest first of %v", got, ids)
	}

	var page ward.TaskList
	e.do("GET", "/v1/projects/alpha/tasks?function=g", viewer, nil).wantStatus(t, http.StatusOK).decode(t, &page)
	if len(page.Tasks) != 2 || page.NextCursor != "" {
		t.Errorf("function filter: %+v", page)
	}
	e.do("GET", "/v1/projects/alpha/tasks?status=succeeded", viewer, nil).wantStatus(t, http.StatusOK).decode(t, &page)
	if len(page.Tasks) != 0 {
		t.Errorf("status filter: %+v", page)
	}
	var raw map[string]json.RawMessage
	e.do("GET", "/v1/projects/beta/tasks", e.admin, nil).wantStatus(t, http.StatusOK).decode(t, &raw)
	if string(raw["tasks"]) != "[]" {
		t.Errorf("empty list = %s", raw["tasks"])
	}

	for _, tc := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=x", "limit"},
		{"status=done", "status"}, {"function=F", "function"},
		{"cursor=!!", "cursor"}, {"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("x'; drop")), "cursor"},
	} {
		e.do("GET", "/v1/projects/alpha/tasks?"+tc.query, viewer, nil).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, tc.field)
	}
}

func TestGetTaskAndWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	viewer := e.token(ward.RoleViewer, "alpha")
	task := e.submit("alpha", e.admin, ward.SubmitRequest{Function: "f"})
	path := "/v1/projects/alpha/tasks/" + task.ID

	var got ward.Task
	e.do("GET", path, viewer, nil).wantStatus(t, http.StatusOK).decode(t, &got)
	if got.ID != task.ID || got.Status != ward.StatusQueued {
		t.Errorf("got %+v", got)
	}
	e.do("GET", "/v1/projects/alpha/tasks/t_00000000000000000000000000000000", viewer, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("GET", "/v1/projects/alpha/tasks/bogus", viewer, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	for _, w := range []string{"x", "-1s", "1h5", "10q"} {
		e.do("GET", path+"?wait="+w, viewer, nil).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "wait")
	}

	// A long poll returns as soon as the task finishes.
	done := make(chan response, 1)
	go func() { done <- e.do("GET", path+"?wait=60s", viewer, nil) }()
	// Lease now; complete once the poll is (very likely) waiting. Either
	// order gives the same answer, so the test does not depend on timing.
	jobs, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "r", Max: 1, FreeMemoryMB: 1024, Wait: 5 * time.Second})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("lease: %v, %d jobs", err, len(jobs))
	}
	e.complete(jobs, echo)
	r := <-done
	r.wantStatus(t, http.StatusOK).decode(t, &got)
	if got.Status != ward.StatusSucceeded || got.FinishedAt == nil {
		t.Errorf("after wait: %+v", got)
	}
	// A finished task answers at once, wait or not; plain seconds parse.
	e.do("GET", path+"?wait=5", viewer, nil).wantStatus(t, http.StatusOK)
}

func TestParseWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"30", 30 * time.Second, true}, {"30s", 30 * time.Second, true},
		{"1m", time.Minute, true}, {"90s", maxWait, true}, {"3600", maxWait, true}, {"250ms", 250 * time.Millisecond, true},
		{"99999999999999999999", 0, false}, {"-1", 0, false}, {"-1s", 0, false}, {"x", 0, false}, {"1.5", 0, false},
	} {
		got, err := parseWait(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseWait(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && (ward.CodeOf(err) != ward.CodeInvalidArgument || err.(*ward.Error).Field != "wait") {
			t.Errorf("parseWait(%q) error %#v", tc.in, err)
		}
	}
}

func TestTaskBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	owner, ownerID := e.tokenWithID(ward.RoleOwner, "alpha", time.Hour)
	jsonTask := e.submit("alpha", owner, ward.SubmitRequest{Function: "f", Payload: json.RawMessage(`{"a":[1,2]}`)})
	binTask := e.submit("alpha", owner, ward.SubmitRequest{Function: "f", PayloadB64: []byte{0xff, 0x00}})
	base := "/v1/projects/alpha/tasks/"

	// Before the task has run: no result, no log; the payload is there.
	e.do("GET", base+jsonTask.ID+"/result", owner, nil).wantError(t, http.StatusConflict, ward.CodeInvalidState, "")
	e.do("GET", base+jsonTask.ID+"/log", owner, nil).wantError(t, http.StatusConflict, ward.CodeInvalidState, "")
	if last := e.lastAudit(); last["outcome"] != "invalid_state" || last["resource"] != jsonTask.ID {
		t.Errorf("audit of refused read = %v", last)
	}
	r := e.do("GET", base+jsonTask.ID+"/payload", owner, nil).wantStatus(t, http.StatusOK)
	if string(r.body) != `{"a":[1,2]}` || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("payload %q %q", r.body, r.header.Get("Content-Type"))
	}

	if n := e.runAll(echo); n != 2 {
		t.Fatalf("ran %d tasks", n)
	}
	r = e.do("GET", base+jsonTask.ID+"/result", owner, nil).wantStatus(t, http.StatusOK)
	if string(r.body) != `{"a":[1,2]}` || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("result %q %q", r.body, r.header.Get("Content-Type"))
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("body headers %v", r.header)
	}
	last := e.lastAudit()
	if last["action"] != "GET /v1/projects/{p}/tasks/{id}/result" || last["actor"] != ownerID || last["role"] != "owner" ||
		last["project"] != "alpha" || last["resource"] != jsonTask.ID || last["outcome"] != "ok" {
		t.Errorf("audit = %v", last)
	}
	r = e.do("GET", base+binTask.ID+"/result", owner, nil).wantStatus(t, http.StatusOK)
	if !bytes.Equal(r.body, []byte{0xff, 0x00}) || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("binary result %q %q", r.body, r.header.Get("Content-Type"))
	}
	r = e.do("GET", base+binTask.ID+"/log", owner, nil).wantStatus(t, http.StatusOK)
	if string(r.body) != "log of "+binTask.ID+"\n" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("log %q %q", r.body, r.header.Get("Content-Type"))
	}
	r = e.do("GET", base+binTask.ID+"/payload", owner, nil).wantStatus(t, http.StatusOK)
	if !bytes.Equal(r.body, []byte{0xff, 0x00}) || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("binary payload %q %q", r.body, r.header.Get("Content-Type"))
	}

	// Scopes: a developer reads results and logs, not payloads; a viewer none.
	dev := e.token(ward.RoleDeveloper, "alpha")
	e.do("GET", base+jsonTask.ID+"/result", dev, nil).wantStatus(t, http.StatusOK)
	e.do("GET", base+jsonTask.ID+"/payload", dev, nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	if last := e.lastAudit(); last["outcome"] != "forbidden" || last["action"] != "GET /v1/projects/{p}/tasks/{id}/payload" {
		t.Errorf("audit of forbidden read = %v", last)
	}
	viewer := e.token(ward.RoleViewer, "alpha")
	for _, b := range []string{"result", "log", "payload"} {
		e.do("GET", base+jsonTask.ID+"/"+b, viewer, nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	}
	e.do("GET", base+"t_0000/result", owner, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")

	// Every read attempt is in the (verified) audit log; no body is.
	entries := e.auditEntries()
	reads := 0
	for _, en := range entries {
		if strings.HasPrefix(en["action"].(string), "GET /v1/projects/{p}/tasks/{id}/") {
			reads++
		}
	}
	if reads != 13 {
		t.Errorf("%d body reads audited, want 13", reads)
	}
	if strings.Contains(fmt.Sprint(entries), `"a"`) {
		t.Error("a body reached the audit log")
	}
}

func TestFailedTaskResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	task := e.submit("alpha", e.admin, ward.SubmitRequest{Function: "f"})
	e.runAll(fail(ward.CodeExitStatus))
	var got ward.Task
	e.do("GET", "/v1/projects/alpha/tasks/"+task.ID, e.admin, nil).decode(t, &got)
	if got.Status != ward.StatusFailed || got.Error == nil || got.Error.Code != ward.CodeExitStatus {
		t.Fatalf("task %+v", got)
	}
	r := e.do("GET", "/v1/projects/alpha/tasks/"+task.ID+"/result", e.admin, nil).wantStatus(t, http.StatusOK)
	if len(r.body) != 0 {
		t.Errorf("failed task's result = %q", r.body)
	}
	r = e.do("GET", "/v1/projects/alpha/tasks/"+task.ID+"/log", e.admin, nil).wantStatus(t, http.StatusOK)
	if string(r.body) != "boom\n" {
		t.Errorf("failed task's log = %q", r.body)
	}
}

func TestCancelAndRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	dev := e.token(ward.RoleDeveloper, "alpha")
	task := e.submit("alpha", dev, ward.SubmitRequest{Function: "f"})
	base := "/v1/projects/alpha/tasks/" + task.ID

	e.do("POST", base+"/retry", dev, nil).wantError(t, http.StatusConflict, ward.CodeInvalidState, "")
	var got ward.Task
	e.do("POST", base+"/cancel", dev, nil).wantStatus(t, http.StatusOK).decode(t, &got)
	if got.Status != ward.StatusCancelled {
		t.Errorf("cancelled: %+v", got)
	}
	e.do("POST", base+"/cancel", dev, nil).wantError(t, http.StatusConflict, ward.CodeInvalidState, "")
	e.do("POST", base+"/retry", dev, nil).wantStatus(t, http.StatusOK).decode(t, &got)
	if got.Status != ward.StatusQueued {
		t.Errorf("retried: %+v", got)
	}
	e.do("POST", base+"/cancel", e.token(ward.RoleViewer, "alpha"), nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	e.do("POST", "/v1/projects/alpha/tasks/t_0/cancel", dev, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
}

func TestSubmitterSeesOwnTasksOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	s1 := e.token(ward.RoleSubmitter, "alpha")
	s2 := e.token(ward.RoleSubmitter, "alpha")
	mine := e.submit("alpha", s1, ward.SubmitRequest{Function: "f"})
	theirs := e.submit("alpha", s2, ward.SubmitRequest{Function: "f"})
	byAdmin := e.submit("alpha", e.admin, ward.SubmitRequest{Function: "f"})
	e.runAll(echo)

	base := "/v1/projects/alpha/tasks/"
	e.do("GET", base+mine.ID, s1, nil).wantStatus(t, http.StatusOK)
	e.do("GET", base+mine.ID+"/result", s1, nil).wantStatus(t, http.StatusOK)
	for _, id := range []string{theirs.ID, byAdmin.ID} {
		e.do("GET", base+id, s1, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
		e.do("GET", base+id+"?wait=1s", s1, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
		e.do("GET", base+id+"/result", s1, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	}
	// Submitters hold neither logs:read nor tasks:cancel.
	e.do("GET", base+mine.ID+"/log", s1, nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	e.do("POST", base+mine.ID+"/cancel", s1, nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")

	var page ward.TaskList
	e.do("GET", "/v1/projects/alpha/tasks", s1, nil).wantStatus(t, http.StatusOK).decode(t, &page)
	if len(page.Tasks) != 1 || page.Tasks[0].ID != mine.ID {
		t.Errorf("submitter lists %+v", page.Tasks)
	}
	// A viewer sees every task's metadata.
	e.do("GET", base+theirs.ID, e.token(ward.RoleViewer, "alpha"), nil).wantStatus(t, http.StatusOK)
}

// invokeWith starts a synchronous invoke and plays the runner for it.
func (e *testEnv) invokeWith(path, token string, body []byte, run func(runner.Job) runner.Result) response {
	e.t.Helper()
	done := make(chan response, 1)
	go func() { done <- e.do("POST", path, token, body) }()
	// Other due tasks may be leased first; they are completed as echoes.
	for found := false; !found; {
		jobs, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "r", Max: 1, FreeMemoryMB: 1024, Wait: 10 * time.Second})
		if err != nil || len(jobs) != 1 {
			e.t.Fatalf("lease: %v, %d jobs", err, len(jobs))
		}
		rec, err := e.st.GetTask(e.ctx, jobs[0].Project, jobs[0].TaskID)
		if err != nil {
			e.t.Fatal(err)
		}
		if rec.Priority == ward.MaxPriority && bytes.Equal(jobs[0].Payload, body) {
			found = true
			e.complete(jobs, run)
		} else {
			e.complete(jobs, echo)
		}
	}
	return <-done
}

func TestInvoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	sub := e.token(ward.RoleSubmitter, "alpha")
	const path = "/v1/projects/alpha/functions/f/invoke"

	r := e.invokeWith(path, sub, []byte(`{"x":1}`), echo).wantStatus(t, http.StatusOK)
	if string(r.body) != `{"x":1}` || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("invoke = %q %q", r.body, r.header.Get("Content-Type"))
	}
	id := r.header.Get(taskIDHeader)
	rec, err := e.st.GetTask(e.ctx, "alpha", id)
	if err != nil || rec.Status != ward.StatusSucceeded {
		t.Errorf("invoked task %s: %+v %v", id, rec.Task, err)
	}

	r = e.invokeWith(path, sub, []byte{1, 2, 3}, echo).wantStatus(t, http.StatusOK)
	if !bytes.Equal(r.body, []byte{1, 2, 3}) || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("binary invoke = %q %q", r.body, r.header.Get("Content-Type"))
	}

	for _, tc := range []struct {
		code   ward.Code
		status int
	}{
		{ward.CodeExitStatus, http.StatusBadGateway},
		{ward.CodeTrap, http.StatusBadGateway},
		{ward.CodeMemoryLimit, http.StatusBadGateway},
		{ward.CodeTimeout, http.StatusGatewayTimeout},
	} {
		r := e.invokeWith(path, sub, nil, fail(tc.code))
		r.wantError(t, tc.status, tc.code, "")
		var b errorBody
		r.decode(t, &b)
		if b.TaskID == "" || b.TaskID != r.header.Get(taskIDHeader) {
			t.Errorf("%s: task_id %q, header %q", tc.code, b.TaskID, r.header.Get(taskIDHeader))
		}
	}

	e.do("POST", "/v1/projects/alpha/functions/nope/invoke", sub, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("POST", "/v1/projects/alpha/functions/BAD/invoke", sub, nil).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "name")
	for _, v := range []string{"0", "x", "3601", "-1"} {
		e.do("POST", path+"?timeout_s="+v, sub, nil).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "timeout_s")
	}
	e.do("POST", path+"?timeout_s=31", sub, nil).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "timeout_s")
	e.do("POST", path, e.token(ward.RoleViewer, "alpha"), nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	e.do("POST", path, sub, make([]byte, maxInvokeBody+1)).wantError(t, http.StatusRequestEntityTooLarge, ward.CodeBodyTooLarge, "")
	e.do("POST", path, sub, make([]byte, 257<<10)).wantError(t, http.StatusRequestEntityTooLarge, ward.CodePayloadTooLarge, "payload")
}

func TestInvokeBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	spec := ward.DefaultSpec()
	spec.Limits.MaxConcurrency = 1
	e.function("alpha", "f", spec)
	e.submit("alpha", e.admin, ward.SubmitRequest{Function: "f"})
	jobs, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "r", Max: 1, FreeMemoryMB: 1024})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("lease: %v %d", err, len(jobs))
	}
	r := e.do("POST", "/v1/projects/alpha/functions/f/invoke", e.admin, nil)
	r.wantError(t, http.StatusTooManyRequests, ward.CodeFunctionBusy, "")
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
}

// panicQueue panics in List, to exercise the recover middleware.
type panicQueue struct{ Queue }

func (panicQueue) List(context.Context, *store.ListTasksParams) ([]store.TaskRecord, error) {
	panic("secret detail 42")
}

func TestRecover(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	e := newEnvWith(t, envOptions{
		queue:  func(q *queue.Service) Queue { return panicQueue{q} },
		logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	r := e.do("GET", "/v1/projects/alpha/tasks", e.admin, nil)
	r.wantError(t, http.StatusInternalServerError, ward.CodeInternal, "")
	if strings.Contains(string(r.body), "secret detail") || strings.Contains(string(r.body), "goroutine") {
		t.Errorf("500 body leaks the panic: %s", r.body)
	}
	if !strings.Contains(string(r.body), r.header.Get(requestIDHeader)) {
		t.Errorf("500 body does not name the request ID: %s", r.body)
	}
	out := logs.String()
	if !strings.Contains(out, "secret detail 42") || !strings.Contains(out, "panicQueue") {
		t.Errorf("panic not logged with its stack:\n%s", out)
	}
	// The server keeps serving.
	e.do("GET", "/v1/projects/alpha/functions", e.admin, nil).wantStatus(t, http.StatusOK)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAuditFailureWithholdsBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	task := e.submit("alpha", e.admin, ward.SubmitRequest{Function: "f", Payload: json.RawMessage(`"private-payload"`)})
	if err := e.audit.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/v1/projects/alpha/tasks/"+task.ID+"/payload", e.admin, nil)
	r.wantError(t, http.StatusInternalServerError, ward.CodeInternal, "")
	if strings.Contains(string(r.body), "private-payload") {
		t.Error("the payload was served although its read could not be audited")
	}
	// Unaudited routes keep working.
	e.do("GET", "/v1/projects/alpha/tasks/"+task.ID, e.admin, nil).wantStatus(t, http.StatusOK)
}

func TestStatusOf(t *testing.T) {
	t.Parallel()
	for code, status := range map[ward.Code]int{
		ward.CodeInvalidJSON: 400, ward.CodeUnknownField: 400, ward.CodeInvalidArgument: 400, ward.CodeInvalidModule: 400,
		ward.CodeUnauthenticated: 401, ward.CodeForbidden: 403, ward.CodeNotFound: 404, ward.CodeMethodNotAllowed: 405,
		ward.CodeAlreadyExists: 409, ward.CodeInvalidState: 409, ward.CodeStaleLease: 409, ward.CodeNoCode: 409,
		ward.CodeBodyTooLarge: 413, ward.CodePayloadTooLarge: 413, ward.CodeUnsupportedMedia: 415,
		ward.CodeFunctionBusy: 429, ward.CodeInternal: 500, ward.CodeUnavailable: 503, ward.CodeTimeout: 504,
		ward.CodeTaskFailed: 502, ward.CodeExitStatus: 502, ward.CodeTrap: 502, "something_new": 500,
	} {
		if got := statusOf(code); got != status {
			t.Errorf("statusOf(%s) = %d, want %d", code, got, status)
		}
	}
}

func TestNewHTTPServer(t *testing.T) {
	t.Parallel()
	s := NewHTTPServer("127.0.0.1:0", http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Errorf("server without a timeout: %+v", s)
	}
	if s.WriteTimeout < maxWait {
		t.Errorf("WriteTimeout %v is shorter than the longest wait %v", s.WriteTimeout, maxWait)
	}
}

func TestNewPanicsWithoutDependencies(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("New without dependencies did not panic")
		}
	}()
	New(Config{})
}
