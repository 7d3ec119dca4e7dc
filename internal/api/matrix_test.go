package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/auth"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
)

// fixture names resources of one project that the route cases act on.
type fixture struct {
	project  string
	fn       string // has code
	putFn    string // PUT target
	delFn    string // DELETE target
	revokeID string // a viewer token to revoke
	secret   string // a global and a function-local secret of fn, to delete
	task     string // finished
	retry    string // finished, to retry
	cancel   string // queued, to cancel
	newName  string // a project to create
	runner   string // a registered runner, to drain
	alert    string // an alert rule, to read
	delAlert string // an alert rule, to delete
}

// request is one HTTP request of a route case.
type request struct {
	method, path string
	body         any
	hdr          []string
}

// routeCase builds a valid request for a route against a fixture.
type routeCase struct {
	pattern string
	scope   auth.Scope // per docs/api.md; "" = any token
	build   func(fx fixture) request
}

func routeCases() []routeCase {
	p := func(fx fixture) string { return "/v1/projects/" + fx.project }
	return []routeCase{
		{"POST /v1/projects", auth.ScopeProjectsAdmin, func(fx fixture) request {
			return request{"POST", "/v1/projects", map[string]string{"name": fx.newName}, nil}
		}},
		{"GET /v1/projects", "", func(fx fixture) request { return request{"GET", "/v1/projects", nil, nil} }},
		{"GET /v1/projects/{p}", auth.ScopeTasksRead, func(fx fixture) request { return request{"GET", p(fx), nil, nil} }},
		{"PATCH /v1/projects/{p}", auth.ScopeProjectWrite, func(fx fixture) request {
			return request{"PATCH", p(fx), `{"retention_days":3}`, nil}
		}},
		{"POST /v1/projects/{p}/tokens", auth.ScopeTokensWrite, func(fx fixture) request {
			return request{"POST", p(fx) + "/tokens", ward.CreateTokenRequest{Role: ward.RoleViewer}, nil}
		}},
		{"DELETE /v1/projects/{p}/tokens/{id}", auth.ScopeTokensWrite, func(fx fixture) request {
			return request{"DELETE", p(fx) + "/tokens/" + fx.revokeID, nil, nil}
		}},
		{"GET /v1/projects/{p}/functions", auth.ScopeFunctionsRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/functions", nil, nil}
		}},
		{"GET /v1/projects/{p}/functions/{fn}", auth.ScopeFunctionsRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/functions/" + fx.fn, nil, nil}
		}},
		{"PUT /v1/projects/{p}/functions/{fn}", auth.ScopeFunctionsWrite, func(fx fixture) request {
			return request{"PUT", p(fx) + "/functions/" + fx.putFn, `{}`, nil}
		}},
		{"DELETE /v1/projects/{p}/functions/{fn}", auth.ScopeFunctionsWrite, func(fx fixture) request {
			return request{"DELETE", p(fx) + "/functions/" + fx.delFn, nil, nil}
		}},
		{"PUT /v1/projects/{p}/functions/{fn}/code", auth.ScopeFunctionsWrite, func(fx fixture) request {
			return request{"PUT", p(fx) + "/functions/" + fx.fn + "/code", sandboxtest.Module("exit3"), []string{"Content-Type", "application/wasm"}}
		}},
		{"GET /v1/projects/{p}/config", auth.ScopeConfigRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/config", nil, nil}
		}},
		{"PUT /v1/projects/{p}/config", auth.ScopeConfigWrite, func(fx fixture) request {
			return request{"PUT", p(fx) + "/config", `{"K":"v"}`, nil}
		}},
		{"GET /v1/projects/{p}/functions/{fn}/config", auth.ScopeConfigRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/functions/" + fx.fn + "/config", nil, nil}
		}},
		{"PUT /v1/projects/{p}/functions/{fn}/config", auth.ScopeConfigWrite, func(fx fixture) request {
			return request{"PUT", p(fx) + "/functions/" + fx.fn + "/config", `{"K":"v"}`, nil}
		}},
		{"GET /v1/projects/{p}/secrets", auth.ScopeSecretsWrite, func(fx fixture) request {
			return request{"GET", p(fx) + "/secrets", nil, nil}
		}},
		{"PUT /v1/projects/{p}/secrets/{name}", auth.ScopeSecretsWrite, func(fx fixture) request {
			return request{"PUT", p(fx) + "/secrets/API_KEY", "s3cret", nil}
		}},
		{"DELETE /v1/projects/{p}/secrets/{name}", auth.ScopeSecretsWrite, func(fx fixture) request {
			return request{"DELETE", p(fx) + "/secrets/" + fx.secret, nil, nil}
		}},
		{"GET /v1/projects/{p}/functions/{fn}/secrets", auth.ScopeSecretsWrite, func(fx fixture) request {
			return request{"GET", p(fx) + "/functions/" + fx.fn + "/secrets", nil, nil}
		}},
		{"PUT /v1/projects/{p}/functions/{fn}/secrets/{name}", auth.ScopeSecretsWrite, func(fx fixture) request {
			return request{"PUT", p(fx) + "/functions/" + fx.fn + "/secrets/API_KEY", "s3cret", nil}
		}},
		{"DELETE /v1/projects/{p}/functions/{fn}/secrets/{name}", auth.ScopeSecretsWrite, func(fx fixture) request {
			return request{"DELETE", p(fx) + "/functions/" + fx.fn + "/secrets/" + fx.secret, nil, nil}
		}},
		{"GET /v1/projects/{p}/functions/{fn}/sealing-key", auth.ScopeTasksSubmit, func(fx fixture) request {
			return request{"GET", p(fx) + "/functions/" + fx.fn + "/sealing-key", nil, nil}
		}},
		{"POST /v1/projects/{p}/tasks", auth.ScopeTasksSubmit, func(fx fixture) request {
			return request{"POST", p(fx) + "/tasks", ward.SubmitRequest{Function: fx.fn, DelayS: 3600}, nil}
		}},
		{"POST /v1/projects/{p}/tasks/batch", auth.ScopeTasksSubmit, func(fx fixture) request {
			return request{"POST", p(fx) + "/tasks/batch", ward.BatchSubmitRequest{Tasks: []ward.SubmitRequest{{Function: fx.fn, DelayS: 3600}}}, nil}
		}},
		{"POST /v1/projects/{p}/tasks/fanout", auth.ScopeTasksSubmit, func(fx fixture) request {
			return request{"POST", p(fx) + "/tasks/fanout", ward.FanoutRequest{Functions: []string{fx.fn}, DelayS: 3600}, nil}
		}},
		{"POST /v1/projects/{p}/detokenize", auth.ScopeDetokenize, func(fx fixture) request {
			return request{"POST", p(fx) + "/detokenize", ward.DetokenizeRequest{Tokens: []string{"tok_" + strings.Repeat("a", 32)}}, nil}
		}},
		{"GET /v1/projects/{p}/tasks", auth.ScopeTasksRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/tasks", nil, nil}
		}},
		{"GET /v1/projects/{p}/tasks/{id}", auth.ScopeTasksRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/tasks/" + fx.task + "?wait=1s", nil, nil}
		}},
		{"GET /v1/projects/{p}/tasks/{id}/result", auth.ScopeResultsRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/tasks/" + fx.task + "/result", nil, nil}
		}},
		{"GET /v1/projects/{p}/tasks/{id}/log", auth.ScopeLogsRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/tasks/" + fx.task + "/log", nil, nil}
		}},
		{"GET /v1/projects/{p}/tasks/{id}/payload", auth.ScopePayloadRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/tasks/" + fx.task + "/payload", nil, nil}
		}},
		{"POST /v1/projects/{p}/tasks/{id}/cancel", auth.ScopeTasksCancel, func(fx fixture) request {
			return request{"POST", p(fx) + "/tasks/" + fx.cancel + "/cancel", nil, nil}
		}},
		{"POST /v1/projects/{p}/tasks/{id}/retry", auth.ScopeTasksCancel, func(fx fixture) request {
			return request{"POST", p(fx) + "/tasks/" + fx.retry + "/retry", nil, nil}
		}},
		{"POST /v1/projects/{p}/functions/{fn}/invoke", auth.ScopeInvoke, func(fx fixture) request {
			return request{"POST", p(fx) + "/functions/" + fx.fn + "/invoke", `{"x":1}`, nil}
		}},
		{"GET /v1/runners", auth.ScopeRunnersAdmin, func(fx fixture) request { return request{"GET", "/v1/runners", nil, nil} }},
		{"GET /v1/topology", auth.ScopeTopologyRead, func(fx fixture) request { return request{"GET", "/v1/topology", nil, nil} }},
		{"POST /v1/runners/{id}/drain", auth.ScopeRunnersAdmin, func(fx fixture) request {
			return request{"POST", "/v1/runners/" + fx.runner + "/drain", nil, nil}
		}},
		{"POST /v1/runners/join-tokens", auth.ScopeRunnersAdmin, func(fx fixture) request {
			return request{"POST", "/v1/runners/join-tokens", `{"ttl":"10m"}`, nil}
		}},
		{"GET /v1/projects/{p}/alerts", auth.ScopeMetricsRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/alerts", nil, nil}
		}},
		{"GET /v1/projects/{p}/alerts/{name}", auth.ScopeMetricsRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/alerts/" + fx.alert, nil, nil}
		}},
		{"GET /v1/projects/{p}/alerts/{name}/history", auth.ScopeMetricsRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/alerts/" + fx.alert + "/history", nil, nil}
		}},
		{"PUT /v1/projects/{p}/alerts/{name}", auth.ScopeConfigWrite, func(fx fixture) request {
			return request{"PUT", p(fx) + "/alerts/put-alert", `{"metric":"queue_depth","threshold":5,"for":"1m","webhook":"https://example.test/hook"}`, nil}
		}},
		{"DELETE /v1/projects/{p}/alerts/{name}", auth.ScopeConfigWrite, func(fx fixture) request {
			return request{"DELETE", p(fx) + "/alerts/" + fx.delAlert, nil, nil}
		}},
		{"GET /v1/projects/{p}/stats", auth.ScopeMetricsRead, func(fx fixture) request {
			return request{"GET", p(fx) + "/stats?window=30s&function=" + fx.fn, nil, nil}
		}},
		// Last: it deletes the fixture's project.
		{"DELETE /v1/projects/{p}", auth.ScopeProjectsAdmin, func(fx fixture) request {
			return request{"DELETE", p(fx), nil, nil}
		}},
	}
}

// TestRouteCasesCoverRoutes keeps the matrix complete: every route of the
// server has a case with the scope docs/api.md gives it.
func TestRouteCasesCoverRoutes(t *testing.T) {
	t.Parallel()
	s := &Server{}
	var patterns []string
	for _, rt := range s.routeTable() {
		patterns = append(patterns, rt.pattern)
		i := slices.IndexFunc(routeCases(), func(rc routeCase) bool { return rc.pattern == rt.pattern })
		if i < 0 {
			t.Errorf("route %s has no case", rt.pattern)
			continue
		}
		if want := routeCases()[i].scope; rt.scope != want {
			t.Errorf("route %s needs scope %q, want %q", rt.pattern, rt.scope, want)
		}
	}
	for _, rc := range routeCases() {
		if !slices.Contains(patterns, rc.pattern) {
			t.Errorf("case %s has no route", rc.pattern)
		}
	}
}

// setupFixture creates a fixture's resources in project; tasks are
// submitted with submitter (so a submitter token owns them).
func (e *testEnv) setupFixture(project, submitter, tag string) fixture {
	e.t.Helper()
	fx := fixture{project: project, fn: "fn-" + tag, putFn: "put-" + tag, delFn: "del-" + tag, newName: "new-" + tag, secret: "OLD_" + tag, runner: "r_" + tag,
		alert: "alert-" + tag, delAlert: "del-alert-" + tag}
	if err := e.q.Register(e.ctx, ward.Runner{ID: fx.runner, Slots: 1, MemoryMB: 64}); err != nil {
		e.t.Fatal(err)
	}
	e.function(project, fx.fn, ward.DefaultSpec())
	e.do("PUT", "/v1/projects/"+project+"/secrets/"+fx.secret, e.admin, "old").wantStatus(e.t, http.StatusOK)
	e.do("PUT", "/v1/projects/"+project+"/functions/"+fx.fn+"/secrets/"+fx.secret, e.admin, "old").wantStatus(e.t, http.StatusOK)
	e.do("PUT", "/v1/projects/"+project+"/functions/"+fx.delFn, e.admin, `{}`).wantStatus(e.t, http.StatusCreated)
	_, fx.revokeID = e.tokenWithID(ward.RoleViewer, project, time.Hour)
	for _, name := range []string{fx.alert, fx.delAlert} {
		e.do("PUT", "/v1/projects/"+project+"/alerts/"+name, e.admin,
			`{"metric":"running","threshold":1,"for":"1m","webhook":"https://example.test/hook"}`).wantStatus(e.t, http.StatusCreated)
	}
	fx.task = e.submit(project, submitter, ward.SubmitRequest{Function: fx.fn, Payload: []byte(`{"in":1}`)}).ID
	fx.retry = e.submit(project, submitter, ward.SubmitRequest{Function: fx.fn}).ID
	e.runAll(echo)
	// Delayed, so no lease in a test picks it up.
	fx.cancel = e.submit(project, submitter, ward.SubmitRequest{Function: fx.fn, DelayS: 3600}).ID
	return fx
}

func (e *testEnv) send(token string, rq request) response {
	e.t.Helper()
	return e.do(rq.method, rq.path, token, rq.body, rq.hdr...)
}

func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	roles := []ward.Role{ward.RoleAdmin, ward.RoleOwner, ward.RoleDeveloper, ward.RoleSubmitter, ward.RoleViewer, ward.RoleRunner}
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			project := "alpha"
			if role == ward.RoleAdmin || role == ward.RoleRunner {
				project = ""
			}
			token := e.token(role, project)
			submitter := e.admin
			if auth.RoleHas(role, auth.ScopeTasksSubmit) {
				submitter = token
			}
			fx := e.setupFixture("alpha", submitter, "x")

			for _, rc := range routeCases() {
				allowed := rc.scope == "" || auth.RoleHas(role, rc.scope)
				rq := rc.build(fx)
				var r response
				if allowed && strings.HasSuffix(rc.pattern, "/invoke") {
					r = e.invokeWith(rq.path, token, []byte(rq.body.(string)), echo)
				} else {
					r = e.send(token, rq)
				}
				if allowed {
					if r.status < 200 || r.status > 299 {
						t.Errorf("%s: %s got %d, want 2xx; body %s", role, rc.pattern, r.status, r.body)
					}
					continue
				}
				if r.status != http.StatusForbidden || !strings.Contains(string(r.body), `"forbidden"`) {
					t.Errorf("%s: %s got %d, want 403 forbidden; body %s", role, rc.pattern, r.status, r.body)
				}
			}
		})
	}
}

// TestCrossProject sends every project route with a token of project beta
// at project alpha's resources: by alpha's path, and by beta's path with
// alpha's IDs. Every answer is 404, and alpha is left unchanged.
func TestCrossProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fx := e.setupFixture("alpha", e.admin, "a")
	e.function("beta", "fn-b", ward.DefaultSpec())
	before := e.auditEntries()

	for _, role := range []ward.Role{ward.RoleOwner, ward.RoleDeveloper, ward.RoleSubmitter, ward.RoleViewer} {
		token := e.token(role, "beta")
		for _, rc := range routeCases() {
			if !strings.Contains(rc.pattern, "{p}") || !auth.RoleHas(role, rc.scope) {
				continue // the matrix covers 403s
			}
			t.Run(string(role)+" "+rc.pattern, func(t *testing.T) {
				e.send(token, rc.build(fx)).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")

				// Beta's own path with alpha's IDs and function names. (PUT of a
				// function creates it in beta: not a cross-project access.)
				if strings.Contains(rc.pattern, "{id}") ||
					(strings.Contains(rc.pattern, "{fn}") && rc.pattern != "PUT /v1/projects/{p}/functions/{fn}") {
					viaBeta := fx
					viaBeta.project = "beta"
					e.send(token, rc.build(viaBeta)).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
				}
			})
		}
	}

	// Nothing of alpha changed.
	if _, err := e.st.GetFunction(e.ctx, "alpha", fx.delFn); err != nil {
		t.Errorf("alpha's function: %v", err)
	}
	if tok, err := e.st.GetToken(e.ctx, fx.revokeID); err != nil || tok.RevokedAt != nil {
		t.Errorf("alpha's token: %+v %v", tok, err)
	}
	if rec, err := e.st.GetTask(e.ctx, "alpha", fx.cancel); err != nil || rec.Status != ward.StatusQueued {
		t.Errorf("alpha's queued task: %+v %v", rec.Task, err)
	}
	if rec, err := e.st.GetTask(e.ctx, "alpha", fx.retry); err != nil || rec.Status != ward.StatusSucceeded {
		t.Errorf("alpha's finished task: %+v %v", rec.Task, err)
	}
	if _, err := e.st.GetAlert(e.ctx, "alpha", fx.delAlert); err != nil {
		t.Errorf("alpha's alert rule: %v", err)
	}
	if cfg, err := e.st.GetConfig(e.ctx, "alpha", ""); err != nil || len(cfg) != 0 {
		t.Errorf("alpha's config: %v %v", cfg, err)
	}
	// The refused body reads were audited as not_found.
	after := e.auditEntries()
	notFound := 0
	for _, en := range after[len(before):] {
		if en["outcome"] == "not_found" {
			notFound++
		}
	}
	if notFound == 0 {
		t.Error("cross-project attempts on audited routes were not audited")
	}
}
