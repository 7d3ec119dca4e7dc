package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
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
		{`{"quotas":{}}`, "quotas"},
		{`{"quotas":{"max_queued":-1}}`, "quotas.max_queued"},
		{`{"quotas":{"max_functions":100001}}`, "quotas.max_functions"},
		{`{"quotas":{"max_running":-1}}`, "quotas.max_running"},
		{`{"quotas":{"max_running":1000001}}`, "quotas.max_running"},
		{`{"quotas":{"max_stored_mb":-1}}`, "quotas.max_stored_mb"},
		{`{"quotas":{"max_stored_mb":16777217}}`, "quotas.max_stored_mb"},
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

// TestRunningQuota checks max_running: an invoke in a project with its
// quota of tasks running answers 429 project_running_quota with
// Retry-After and stores nothing, while submissions still queue and
// leases take no more of the project's tasks.
func TestRunningQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := e.token(ward.RoleOwner, "alpha")
	dev := e.token(ward.RoleDeveloper, "alpha")
	e.function("alpha", "f", ward.FunctionSpec{})
	e.function("alpha", "g", ward.FunctionSpec{})
	var proj ward.Project
	e.do("PATCH", "/v1/projects/alpha", owner, map[string]any{"quotas": map[string]int{"max_running": 2}}).
		wantStatus(t, http.StatusOK).decode(t, &proj)
	if proj.Quotas.MaxRunning != 2 {
		t.Fatalf("PATCH quotas answered %+v", proj.Quotas)
	}
	for range 3 {
		e.submit("alpha", dev, ward.SubmitRequest{Function: "f", Payload: []byte(`1`)})
	}
	// The lease takes two: the project is at its quota.
	jobs, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "r", Max: 10, FreeMemoryMB: 1024})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("leased %d, %v; want 2", len(jobs), err)
	}
	e.rejected.take()
	// An invoke of any function of the project is refused, and stores nothing.
	wantLimited(t, e.do("POST", "/v1/projects/alpha/functions/g/invoke", dev, []byte(`1`)), ward.CodeProjectRunning, 1)
	if got := countTasks(t, e, "alpha"); got != 3 {
		t.Errorf("%d tasks stored, want the 3 submitted", got)
	}
	if got, want := e.rejected.take(), []string{"alpha/g project_running_quota"}; !slices.Equal(got, want) {
		t.Errorf("rejections told %q, want %q", got, want)
	}
	// Submissions are not refused: they wait in the queue.
	e.submit("alpha", dev, ward.SubmitRequest{Function: "g", Payload: []byte(`1`)})
	// Another project's tasks are leased past alpha's backlog.
	e.function("beta", "h", ward.FunctionSpec{})
	e.submit("beta", e.token(ward.RoleDeveloper, "beta"), ward.SubmitRequest{Function: "h", Payload: []byte(`1`)})
	more, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "r", Max: 10, FreeMemoryMB: 1024})
	if err != nil || len(more) != 1 || more[0].Project != "beta" {
		t.Fatalf("leased %+v, %v; want beta's one task", more, err)
	}
	// A finished run frees a slot for the next of alpha's.
	e.complete(jobs[:1], echo)
	next, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "r", Max: 10, FreeMemoryMB: 1024})
	if err != nil || len(next) != 1 || next[0].Project != "alpha" {
		t.Fatalf("leased %+v, %v; want one of alpha's", next, err)
	}
}

// storedBytes reads a project's stored bytes.
func storedBytes(t *testing.T, e *testEnv, project string) int64 {
	t.Helper()
	p, err := e.st.GetProject(e.ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	return p.Usage.StoredBytes
}

// fillStorage sets alpha's quotas.max_stored_mb to 1 and stores a delayed
// task (never leased) whose payload leaves room bytes under the quota.
func fillStorage(t *testing.T, e *testEnv, room int64) {
	t.Helper()
	owner := e.token(ward.RoleOwner, "alpha")
	var proj ward.Project
	e.do("PATCH", "/v1/projects/alpha", owner, map[string]any{"quotas": map[string]int{"max_stored_mb": 1}}).
		wantStatus(t, http.StatusOK).decode(t, &proj)
	if proj.Quotas.MaxStoredMB != 1 || proj.Usage.StoredBytes == 0 {
		t.Fatalf("PATCH quotas answered %+v; want max_stored_mb 1 and the code's bytes stored", proj)
	}
	fill := 1<<20 - proj.Usage.StoredBytes - room
	if fill <= 0 {
		t.Fatalf("the project already stores %d bytes", proj.Usage.StoredBytes)
	}
	fn, err := e.st.GetFunction(e.ctx, "alpha", "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.InsertTasks(e.ctx, &store.InsertTasksParams{Now: e.clock.Now(), Tasks: []store.NewTask{{
		ID: "t_filler", Project: "alpha", Function: "f", CodeDigest: fn.CodeDigest, RunAt: e.clock.Now().Add(time.Hour),
		TimeoutS: 30, MemoryMB: 64, MaxAttempts: 1, Payload: make([]byte, fill),
	}}}); err != nil {
		t.Fatal(err)
	}
	if got := storedBytes(t, e, "alpha"); got != 1<<20-room {
		t.Fatalf("filled to %d bytes, want %d", got, 1<<20-room)
	}
}

// wantStorageRefused checks a 413 project_storage_quota that names the
// quota and the use, told to the observer, with nothing stored.
func wantStorageRefused(t *testing.T, e *testEnv, r response, tasks int, rejections ...string) {
	t.Helper()
	used := storedBytes(t, e, "alpha")
	r.wantError(t, http.StatusRequestEntityTooLarge, ward.CodeProjectStorage, "")
	if msg := string(r.body); !strings.Contains(msg, "max_stored_mb") || !strings.Contains(msg, strconv.FormatInt(used, 10)) {
		t.Errorf("refusal %s does not name the quota and the %d bytes stored", msg, used)
	}
	if r.header.Get("Retry-After") != "" {
		t.Errorf("a storage refusal has Retry-After %q", r.header.Get("Retry-After"))
	}
	if got := countTasks(t, e, "alpha"); got != tasks {
		t.Errorf("%d tasks stored, want %d", got, tasks)
	}
	got := e.rejected.take()
	slices.Sort(got)
	if !slices.Equal(got, rejections) {
		t.Errorf("rejections told %q, want %q", got, rejections)
	}
}

// TestStorageQuota drives max_stored_mb to its edge on every path that
// stores bytes: the call that fills the quota to the byte passes, one more
// byte is refused with 413 project_storage_quota and nothing is stored.
func TestStorageQuota(t *testing.T) {
	t.Parallel()
	for _, p := range submitPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			dev := e.token(ward.RoleDeveloper, "alpha")
			for _, fn := range []string{"f", "f-2", "f-3", "f-4"} {
				e.function("alpha", fn, ward.FunctionSpec{}) // one code blob: the same module
			}
			// Each task's payload is `1`, one byte.
			switch p.name {
			case "submit":
				fillStorage(t, e, 2)
				p.send(e, dev, "f", 2).wantStatus(t, http.StatusAccepted)
				wantStorageRefused(t, e, p.send(e, dev, "f", 1), 3, "alpha/f project_storage_quota")
			case "batch", "fanout":
				fillStorage(t, e, 3)
				want := []string{"alpha/f project_storage_quota"}
				if p.name == "fanout" {
					want = append(want, "alpha/f-2 project_storage_quota", "alpha/f-3 project_storage_quota", "alpha/f-4 project_storage_quota")
				}
				wantStorageRefused(t, e, p.send(e, dev, "f", 4), 1, want...)
				p.send(e, dev, "f", 3).wantStatus(t, http.StatusAccepted)
				wantStorageRefused(t, e, p.send(e, dev, "f", 1), 4, "alpha/f project_storage_quota")
			case "invoke":
				fillStorage(t, e, 1)
				const path = "/v1/projects/alpha/functions/f/invoke"
				// The run's result is kept though it passes the quota.
				r := e.invokeWith(path, dev, []byte(`1`), echo).wantStatus(t, http.StatusOK)
				id := r.header.Get(taskIDHeader)
				var out int64
				for _, b := range []store.Body{store.BodyResult, store.BodyLog} {
					body, err := e.st.GetTaskBody(e.ctx, "alpha", id, b)
					if err != nil {
						t.Fatal(err)
					}
					out += int64(len(body))
				}
				if got := storedBytes(t, e, "alpha"); out == 0 || got != 1<<20+out {
					t.Errorf("after an invoke at the edge: %d bytes stored, want the quota and the run's %d bytes of output", got, out)
				}
				wantStorageRefused(t, e, e.do("POST", path, dev, []byte(`1`)), 2, "alpha/f project_storage_quota")
			}
			// Another project's storage is its own.
			e.function("beta", "g", ward.FunctionSpec{})
			e.do("POST", "/v1/projects/beta/tasks", e.token(ward.RoleDeveloper, "beta"), ward.SubmitRequest{Function: "g", Payload: []byte(`1`)}).
				wantStatus(t, http.StatusAccepted)
		})
	}
}

// TestStorageQuotaCode checks code uploads count toward max_stored_mb.
func TestStorageQuotaCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.token(ward.RoleDeveloper, "alpha")
	e.function("alpha", "f", ward.FunctionSpec{})
	code := module(t, "exit3")
	upload := func() response {
		return e.do("PUT", "/v1/projects/alpha/functions/f/code", dev, code, "Content-Type", "application/wasm")
	}
	fillStorage(t, e, int64(len(code))-1)
	before, err := e.st.GetFunction(e.ctx, "alpha", "f")
	if err != nil {
		t.Fatal(err)
	}
	wantStorageRefused(t, e, upload(), 1, "alpha/f project_storage_quota")
	if after, err := e.st.GetFunction(e.ctx, "alpha", "f"); err != nil || after.CodeDigest != before.CodeDigest || after.CodeVersion != before.CodeVersion {
		t.Errorf("a refused upload changed the function: %+v, %v", after, err)
	}
	// With one byte more of room it fits to the byte: the filler goes
	// (cancelled, then purged), and a filler one byte smaller comes.
	if _, err := e.q.Cancel(e.ctx, "alpha", "t_filler"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.PurgeTasks(e.ctx, &store.PurgeParams{Project: "alpha", FinishedBefore: e.clock.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	used := storedBytes(t, e, "alpha")
	if _, err := e.st.InsertTasks(e.ctx, &store.InsertTasksParams{Now: e.clock.Now(), Tasks: []store.NewTask{{
		ID: "t_filler2", Project: "alpha", Function: "f", CodeDigest: before.CodeDigest, RunAt: e.clock.Now().Add(time.Hour),
		TimeoutS: 30, MemoryMB: 64, MaxAttempts: 1, Payload: make([]byte, 1<<20-used-int64(len(code))),
	}}}); err != nil {
		t.Fatal(err)
	}
	upload().wantStatus(t, http.StatusOK)
	if got := storedBytes(t, e, "alpha"); got != 1<<20 {
		t.Errorf("after an upload that fills the quota: %d bytes stored, want %d", got, 1<<20)
	}
	var p ward.Project
	e.do("GET", "/v1/projects/alpha", dev, nil).wantStatus(t, http.StatusOK).decode(t, &p)
	if p.Usage.StoredBytes != 1<<20 {
		t.Errorf("GET project: usage %+v, want %d stored bytes", p.Usage, 1<<20)
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
