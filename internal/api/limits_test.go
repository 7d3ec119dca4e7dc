package api

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
)

// submitPath is one way of submitting tasks, sending n tasks of fn.
type submitPath struct {
	name string
	send func(e *testEnv, token, fn string, n int) response
}

var submitPaths = []submitPath{
	{"submit", func(e *testEnv, token, fn string, n int) response {
		var r response
		for range n {
			if r = e.do("POST", "/v1/projects/alpha/tasks", token, ward.SubmitRequest{Function: fn, Payload: []byte(`1`)}); r.status != http.StatusAccepted {
				return r
			}
		}
		return r
	}},
	{"batch", func(e *testEnv, token, fn string, n int) response {
		reqs := make([]ward.SubmitRequest, n)
		for i := range reqs {
			reqs[i] = ward.SubmitRequest{Function: fn, Payload: []byte(`1`)}
		}
		return e.do("POST", "/v1/projects/alpha/tasks/batch", token, map[string]any{"tasks": reqs})
	}},
	{"fanout", func(e *testEnv, token, fn string, n int) response {
		// A fan-out names each function once: n tasks go to fn, fn-2, …
		fns := []string{fn}
		for i := 2; i <= n; i++ {
			fns = append(fns, fn+"-"+strconv.Itoa(i))
		}
		return e.do("POST", "/v1/projects/alpha/tasks/fanout", token, ward.FanoutRequest{Functions: fns, Payload: []byte(`1`)})
	}},
	{"invoke", func(e *testEnv, token, fn string, n int) response {
		// An invoke that passes its limits would wait for a runner: only
		// the refused one is sent.
		return e.do("POST", "/v1/projects/alpha/functions/"+fn+"/invoke", token, []byte(`1`))
	}},
}

// wantLimited checks a 429 naming limit, with a Retry-After of at least
// min seconds.
func wantLimited(t *testing.T, r response, limit ward.Code, min int) {
	t.Helper()
	r.wantError(t, http.StatusTooManyRequests, limit, "")
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < min {
		t.Errorf("Retry-After = %q, want at least %d seconds", r.header.Get("Retry-After"), min)
	}
}

// TestSubmitRate drives a function's submit_rate to its edge on every path:
// rate tasks pass, one more is refused with function_rate until the bucket
// refills.
func TestSubmitRate(t *testing.T) {
	t.Parallel()
	for _, p := range submitPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			dev := e.token(ward.RoleDeveloper, "alpha")
			e.function("alpha", "f", ward.FunctionSpec{Limits: ward.Limits{SubmitRate: 4}})
			switch p.name {
			case "batch":
				p.send(e, dev, "f", 4).wantStatus(t, http.StatusAccepted)
			case "fanout":
				for range 4 {
					p.send(e, dev, "f", 1).wantStatus(t, http.StatusAccepted)
				}
			default:
				submitPaths[0].send(e, dev, "f", 4).wantStatus(t, http.StatusAccepted)
			}
			wantLimited(t, p.send(e, dev, "f", 1), ward.CodeFunctionRate, 1)
			// A quarter second later one token is back, not two.
			e.clock.Advance(250 * time.Millisecond)
			if p.name != "invoke" {
				p.send(e, dev, "f", 1).wantStatus(t, http.StatusAccepted)
			} else {
				submitPaths[0].send(e, dev, "f", 1).wantStatus(t, http.StatusAccepted)
			}
			wantLimited(t, p.send(e, dev, "f", 1), ward.CodeFunctionRate, 1)
			// More than a second's worth in one call can never pass.
			if p.name == "batch" {
				e.clock.Advance(time.Hour)
				wantLimited(t, p.send(e, dev, "f", 5), ward.CodeFunctionRate, 1)
			}
			// The refusals stored nothing.
			if got := countTasks(t, e, "alpha"); got != 5 {
				t.Errorf("%d tasks stored, want the 5 accepted", got)
			}
		})
	}
}

// TestQueuedQuota drives a project's max_queued to its edge on every path.
func TestQueuedQuota(t *testing.T) {
	t.Parallel()
	for _, p := range submitPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			owner := e.token(ward.RoleOwner, "alpha")
			dev := e.token(ward.RoleDeveloper, "alpha")
			e.function("alpha", "f", ward.FunctionSpec{})
			e.function("alpha", "f-2", ward.FunctionSpec{})
			var proj ward.Project
			e.do("PATCH", "/v1/projects/alpha", owner, map[string]any{"quotas": map[string]int{"max_queued": 3}}).
				wantStatus(t, http.StatusOK).decode(t, &proj)
			if proj.Quotas.MaxQueued != 3 || proj.RetentionDays != ward.DefaultRetentionDays {
				t.Fatalf("PATCH quotas answered %+v", proj)
			}
			if p.name == "batch" || p.name == "fanout" {
				// A call that would pass the quota is refused whole.
				submitPaths[0].send(e, dev, "f", 2).wantStatus(t, http.StatusAccepted)
				wantLimited(t, p.send(e, dev, "f", 2), ward.CodeProjectQueued, 1)
				p.send(e, dev, "f", 1).wantStatus(t, http.StatusAccepted)
			} else {
				submitPaths[0].send(e, dev, "f", 3).wantStatus(t, http.StatusAccepted)
			}
			wantLimited(t, p.send(e, dev, "f", 1), ward.CodeProjectQueued, 1)
			if got := countTasks(t, e, "alpha"); got != 3 {
				t.Errorf("%d tasks stored, want 3", got)
			}
			// Once tasks leave the queue, there is room again.
			e.runAll(echo)
			submitPaths[0].send(e, dev, "f", 3).wantStatus(t, http.StatusAccepted)
			// Another project's queue is its own.
			e.function("beta", "g", ward.FunctionSpec{})
			e.do("POST", "/v1/projects/beta/tasks", e.token(ward.RoleDeveloper, "beta"), ward.SubmitRequest{Function: "g", Payload: []byte(`1`)}).
				wantStatus(t, http.StatusAccepted)
		})
	}
}

// TestInvokeConcurrency checks an invoke over max_concurrency answers 429
// function_concurrency with Retry-After.
func TestInvokeConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.token(ward.RoleDeveloper, "alpha")
	e.function("alpha", "f", ward.FunctionSpec{Limits: ward.Limits{MaxConcurrency: 1}})
	e.submit("alpha", dev, ward.SubmitRequest{Function: "f", Payload: []byte(`1`)})
	// Lease it: the function is at its limit while the task runs.
	jobs, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "r", Max: 10, FreeMemoryMB: 1024})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("leased %d, %v", len(jobs), err)
	}
	wantLimited(t, submitPaths[3].send(e, dev, "f", 1), ward.CodeFunctionBusy, 1)
}

// TestFunctionsQuota checks max_functions: new functions past it are
// refused with 409 project_functions_quota; existing ones still update.
func TestFunctionsQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := e.token(ward.RoleOwner, "alpha")
	e.do("PATCH", "/v1/projects/alpha", owner, map[string]any{"quotas": map[string]int{"max_functions": 2}}).wantStatus(t, http.StatusOK)
	for _, fn := range []string{"a", "b"} {
		e.do("PUT", "/v1/projects/alpha/functions/"+fn, owner, `{}`).wantStatus(t, http.StatusCreated)
	}
	e.do("PUT", "/v1/projects/alpha/functions/c", owner, `{}`).wantError(t, http.StatusConflict, ward.CodeProjectFunctions, "")
	e.do("PUT", "/v1/projects/alpha/functions/a", owner, `{"limits":{"memory_mb":128}}`).wantStatus(t, http.StatusOK)
	e.do("DELETE", "/v1/projects/alpha/functions/b", owner, nil).wantStatus(t, http.StatusNoContent)
	e.do("PUT", "/v1/projects/alpha/functions/c", owner, `{}`).wantStatus(t, http.StatusCreated)
}

// TestProjectSettingsBad checks PATCH refuses bad quotas and empty bodies,
// and that developers cannot change them.
func TestProjectSettingsBad(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := e.token(ward.RoleOwner, "alpha")
	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{}`, "retention_days"},
		{`{"quotas":{"max_queued":-1}}`, "quotas.max_queued"},
		{`{"quotas":{"max_functions":100001}}`, "quotas.max_functions"},
		{`{"retention_days":0,"quotas":{"max_queued":1,"nope":2}}`, "quotas.nope"},
	} {
		r := e.do("PATCH", "/v1/projects/alpha", owner, tc.body)
		code := ward.CodeInvalidArgument
		if tc.field == "quotas.nope" {
			code = ward.CodeUnknownField
		}
		r.wantError(t, http.StatusBadRequest, code, tc.field)
	}
	e.do("PATCH", "/v1/projects/alpha", e.token(ward.RoleDeveloper, "alpha"), `{"quotas":{"max_queued":1}}`).
		wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	if p, err := e.st.GetProject(e.ctx, "alpha"); err != nil || p.Quotas != (ward.Quotas{}) {
		t.Errorf("after refused PATCHes: %+v, %v", p.Quotas, err)
	}
}

func countTasks(t *testing.T, e *testEnv, project string) int {
	t.Helper()
	var l ward.TaskList
	e.do("GET", "/v1/projects/"+project+"/tasks?limit=1000", e.admin, nil).wantStatus(t, http.StatusOK).decode(t, &l)
	return len(l.Tasks)
}

// TestOutputLimitsReachJobs checks a function's max_result_kb and
// max_log_kb travel with its jobs to the runner, which hands them to the
// sandbox as its stdout and log caps.
func TestOutputLimitsReachJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.token(ward.RoleDeveloper, "alpha")
	e.function("alpha", "small", ward.FunctionSpec{Limits: ward.Limits{MaxResultKB: 2, MaxLogKB: 3}})
	e.function("alpha", "plain", ward.FunctionSpec{})
	e.submit("alpha", dev, ward.SubmitRequest{Function: "small", Payload: []byte(`1`)})
	e.submit("alpha", dev, ward.SubmitRequest{Function: "plain", Payload: []byte(`1`)})
	jobs, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "r", Max: 10, FreeMemoryMB: 1024})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("leased %d, %v", len(jobs), err)
	}
	want := map[string][2]int{"small": {2 << 10, 3 << 10}, "plain": {1 << 20, 1 << 20}}
	for _, j := range jobs {
		if got := [2]int{j.ResultLimit, j.LogLimit}; got != want[j.Function] {
			t.Errorf("%s: job limits %v, want %v", j.Function, got, want[j.Function])
		}
	}
	e.do("PUT", "/v1/projects/alpha/functions/small", dev, `{"limits":{"max_result_kb":16385}}`).
		wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "limits.max_result_kb")
}
