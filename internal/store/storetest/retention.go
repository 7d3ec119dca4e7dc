package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// retentionTests cover a project's retention, deleting a project and
// purging finished tasks.
var retentionTests = []test{
	{"Retention", testRetention},
	{"RetentionErrors", testRetentionErrors},
	{"DeleteProject", testDeleteProject},
	{"DeleteProjectRunningTask", testDeleteProjectRunningTask},
	{"DeleteProjectErrors", testDeleteProjectErrors},
	{"PurgeTasks", testPurgeTasks},
	{"PurgeTasksLimit", testPurgeTasksLimit},
	{"PurgeTasksErrors", testPurgeTasksErrors},
}

func testRetention(t *testing.T, e *env) {
	p, err := e.s.CreateProject(e.ctx, &store.CreateProjectParams{Name: "p", Now: t0})
	if err != nil || p.RetentionDays != ward.DefaultRetentionDays {
		t.Fatalf("CreateProject(no retention) = %+v, %v; want retention %d", p, err, ward.DefaultRetentionDays)
	}
	p, err = e.s.CreateProject(e.ctx, &store.CreateProjectParams{Name: "q", RetentionDays: 30, Now: at(time.Second)})
	if err != nil || p.RetentionDays != 30 {
		t.Fatalf("CreateProject(retention 30) = %+v, %v", p, err)
	}
	wantDays := func(name string, days int) {
		t.Helper()
		p, err := e.s.GetProject(e.ctx, name)
		if err != nil || p.RetentionDays != days {
			t.Fatalf("GetProject(%s) = %+v, %v; want retention %d", name, p, err, days)
		}
	}
	wantDays("p", ward.DefaultRetentionDays)
	wantDays("q", 30)

	p, err = e.s.SetRetention(e.ctx, "p", 90)
	if err != nil {
		t.Fatalf("SetRetention: %v", err)
	}
	if p.Name != "p" || p.RetentionDays != 90 {
		t.Fatalf("SetRetention = %+v, want p with retention 90", p)
	}
	wantTime(t, "SetRetention.CreatedAt (unchanged)", p.CreatedAt, t0)
	wantDays("p", 90)
	wantDays("q", 30)
	for _, days := range []int{1, ward.MaxRetention} {
		if p, err := e.s.SetRetention(e.ctx, "q", days); err != nil || p.RetentionDays != days {
			t.Fatalf("SetRetention(q, %d) = %+v, %v", days, p, err)
		}
	}

	ps, err := e.s.ListProjects(e.ctx)
	if err != nil || len(ps) != 2 {
		t.Fatalf("ListProjects = %+v, %v", ps, err)
	}
	if ps[0].RetentionDays != 90 || ps[1].RetentionDays != ward.MaxRetention {
		t.Fatalf("ListProjects = %s, want retention 90 and %d", mustJSON(t, ps), ward.MaxRetention)
	}
}

func testRetentionErrors(t *testing.T, e *env) {
	_, err := e.s.SetRetention(e.ctx, "nope", 10)
	wantCode(t, "SetRetention(missing project)", err, ward.CodeNotFound)
	e.project("p")
	for _, days := range []int{0, -1, ward.MaxRetention + 1} {
		_, err := e.s.SetRetention(e.ctx, "p", days)
		wantCode(t, "SetRetention(p, bad days)", err, ward.CodeInvalidArgument)
	}
	if p, err := e.s.GetProject(e.ctx, "p"); err != nil || p.RetentionDays != ward.DefaultRetentionDays {
		t.Fatalf("GetProject after failed SetRetention = %+v, %v", p, err)
	}
	for _, days := range []int{-1, ward.MaxRetention + 1} {
		_, err := e.s.CreateProject(e.ctx, &store.CreateProjectParams{Name: "q", RetentionDays: days, Now: t0})
		wantCode(t, "CreateProject(bad retention)", err, ward.CodeInvalidArgument)
	}
	_, err = e.s.GetProject(e.ctx, "q")
	wantCode(t, "GetProject(project of a failed create)", err, ward.CodeNotFound)
}

// fill gives a project one of everything: a token, a function "f" with
// code, global and local config and secrets, a queued task with an
// idempotency key and a succeeded task. It returns the two task IDs.
func (e *env) fill(project string, code []byte) (queued, done string) {
	e.t.Helper()
	t := e.t
	if _, err := e.s.CreateToken(e.ctx, &store.CreateTokenParams{Token: ward.Token{ID: "tok_" + project, Project: project,
		Role: ward.RoleOwner, CreatedAt: t0, ExpiresAt: at(time.Hour)}}); err != nil {
		t.Fatalf("CreateToken(%s): %v", project, err)
	}
	e.function(project, "f", nil)
	if _, err := e.s.PutCode(e.ctx, &store.PutCodeParams{Project: project, Function: "f", Digest: ward.Digest(code), Code: code, Now: t0}); err != nil {
		t.Fatalf("PutCode(%s): %v", project, err)
	}
	for _, fn := range []string{"", "f"} {
		if err := e.s.PutConfig(e.ctx, &store.PutConfigParams{Project: project, Function: fn, Config: ward.Config{"k": project + fn}, Now: t0}); err != nil {
			t.Fatalf("PutConfig(%s, %q): %v", project, fn, err)
		}
		e.putSecret(project, fn, "s", project+fn, t0)
	}
	d := e.task(project, "f")
	e.insert(d)
	l := e.leaseOne("r", t0)
	if l.Task.ID != d.ID {
		t.Fatalf("leased %s, want %s", l.Task.ID, d.ID)
	}
	e.completeOK(succeed(l, at(time.Second)))
	q := e.task(project, "f", func(n *store.NewTask) { n.IdempotencyKey = "key"; n.RunAt = at(time.Hour) })
	e.insert(q)
	return q.ID, d.ID
}

func testDeleteProject(t *testing.T, e *env) {
	e.project("p", "q")
	admin := ward.Token{ID: "tok_admin", Role: ward.RoleAdmin, CreatedAt: t0, ExpiresAt: at(time.Hour)}
	if _, err := e.s.CreateToken(e.ctx, &store.CreateTokenParams{Token: admin}); err != nil {
		t.Fatal(err)
	}
	code := []byte("the same module in both projects")
	pQueued, pDone := e.fill("p", code)
	qQueued, qDone := e.fill("q", code)

	if err := e.s.DeleteProject(e.ctx, "p"); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}

	// p and all it owned are gone.
	_, err := e.s.GetProject(e.ctx, "p")
	wantCode(t, "GetProject(deleted)", err, ward.CodeNotFound)
	_, err = e.s.GetToken(e.ctx, "tok_p")
	wantCode(t, "GetToken(token of the deleted project)", err, ward.CodeNotFound)
	_, err = e.s.GetFunction(e.ctx, "p", "f")
	wantCode(t, "GetFunction(deleted project)", err, ward.CodeNotFound)
	_, err = e.s.ListFunctions(e.ctx, "p")
	wantCode(t, "ListFunctions(deleted project)", err, ward.CodeNotFound)
	_, err = e.s.GetCode(e.ctx, "p", ward.Digest(code))
	wantCode(t, "GetCode(deleted project)", err, ward.CodeNotFound)
	_, err = e.s.GetConfig(e.ctx, "p", "")
	wantCode(t, "GetConfig(deleted project)", err, ward.CodeNotFound)
	_, err = e.s.ListSecrets(e.ctx, "p", "")
	wantCode(t, "ListSecrets(deleted project)", err, ward.CodeNotFound)
	_, err = e.s.GetSecrets(e.ctx, "p", "f")
	wantCode(t, "GetSecrets(deleted project)", err, ward.CodeNotFound)
	_, err = e.s.ListTasks(e.ctx, &store.ListTasksParams{Project: "p"})
	wantCode(t, "ListTasks(deleted project)", err, ward.CodeNotFound)
	for _, id := range []string{pQueued, pDone} {
		_, err = e.s.GetTask(e.ctx, "p", id)
		wantCode(t, "GetTask(task of the deleted project)", err, ward.CodeNotFound)
		for _, b := range []store.Body{store.BodyPayload, store.BodyResult, store.BodyLog} {
			_, err = e.s.GetTaskBody(e.ctx, "p", id, b)
			wantCode(t, "GetTaskBody(task of the deleted project, "+string(b)+")", err, ward.CodeNotFound)
		}
	}
	if n, err := e.s.CountTokens(e.ctx); err != nil || n != 2 {
		t.Fatalf("CountTokens = %d, %v; want 2 (admin and q's)", n, err)
	}
	ps, err := e.s.ListProjects(e.ctx)
	if err != nil || len(ps) != 1 || ps[0].Name != "q" {
		t.Fatalf("ListProjects = %+v, %v; want q only", ps, err)
	}
	// p's queued task is not leased (q's is, once due).
	ls := e.lease("r", 10, 1<<20, at(2*time.Hour))
	if got := ids(ls); !slices.Equal(got, []string{qQueued}) {
		t.Fatalf("leased %v after deleting p, want only %s", got, qQueued)
	}

	// q is intact.
	if tok, err := e.s.GetToken(e.ctx, "tok_q"); err != nil || tok.Project != "q" {
		t.Fatalf("GetToken(tok_q) = %+v, %v", tok, err)
	}
	if tok, err := e.s.GetToken(e.ctx, "tok_admin"); err != nil || tok.Role != ward.RoleAdmin {
		t.Fatalf("GetToken(tok_admin) = %+v, %v", tok, err)
	}
	if f, err := e.s.GetFunction(e.ctx, "q", "f"); err != nil || f.CodeDigest != ward.Digest(code) {
		t.Fatalf("GetFunction(q, f) = %+v, %v", f, err)
	}
	if b, err := e.s.GetCode(e.ctx, "q", ward.Digest(code)); err != nil || !bytes.Equal(b, code) {
		t.Fatalf("GetCode(q) = %q, %v; want the code", b, err)
	}
	for _, fn := range []string{"", "f"} {
		if cfg, err := e.s.GetConfig(e.ctx, "q", fn); err != nil || cfg["k"] != "q"+fn {
			t.Fatalf("GetConfig(q, %q) = %v, %v", fn, cfg, err)
		}
	}
	svs, err := e.s.GetSecrets(e.ctx, "q", "f")
	if err != nil || len(svs) != 2 || string(svs[0].Value) != "q" || string(svs[1].Value) != "qf" {
		t.Fatalf("GetSecrets(q, f) = %d secrets, %v; want q's two", len(svs), err)
	}
	if got := e.body("q", qDone, store.BodyResult); string(got) != `{"ok":true}` {
		t.Fatalf("q's result = %q", got)
	}
	res := e.insertAt(at(2*time.Hour), e.task("q", "f", func(n *store.NewTask) { n.IdempotencyKey = "key" }))
	if !res[0].Existing || res[0].Task.ID != qQueued {
		t.Fatalf("q's idempotency key after deleting p = %s, want the existing task", mustJSON(t, res[0]))
	}

	// A project created again under the name starts empty.
	e.project("p")
	if fs, err := e.s.ListFunctions(e.ctx, "p"); err != nil || len(fs) != 0 {
		t.Fatalf("ListFunctions(recreated p) = %+v, %v; want none", fs, err)
	}
	if got := e.listIDs(&store.ListTasksParams{Project: "p"}); len(got) != 0 {
		t.Fatalf("ListTasks(recreated p) = %v, want none", got)
	}
	if cfg, err := e.s.GetConfig(e.ctx, "p", ""); err != nil || len(cfg) != 0 {
		t.Fatalf("GetConfig(recreated p) = %v, %v; want empty", cfg, err)
	}
	if secs, err := e.s.ListSecrets(e.ctx, "p", ""); err != nil || len(secs) != 0 {
		t.Fatalf("ListSecrets(recreated p) = %+v, %v; want none", secs, err)
	}
	if svs, err := e.s.GetSecrets(e.ctx, "p", "f"); err != nil || len(svs) != 0 {
		t.Fatalf("GetSecrets(recreated p, f) = %d, %v; want none", len(svs), err)
	}
	_, err = e.s.GetCode(e.ctx, "p", ward.Digest(code))
	wantCode(t, "GetCode(recreated p)", err, ward.CodeNotFound)
	_, err = e.s.GetToken(e.ctx, "tok_p")
	wantCode(t, "GetToken(token of the deleted p, after recreating p)", err, ward.CodeNotFound)
	_, err = e.s.GetTask(e.ctx, "p", pDone)
	wantCode(t, "GetTask(task of the deleted p, after recreating p)", err, ward.CodeNotFound)
	e.function("p", "f", nil)
	if f, err := e.s.GetFunction(e.ctx, "p", "f"); err != nil || f.CodeVersion != 0 {
		t.Fatalf("recreated function = %+v, %v; want no code", f, err)
	}
	res = e.insertAt(at(2*time.Hour), e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "key" }))
	if res[0].Existing {
		t.Fatalf("the deleted p's idempotency key still maps to %s", res[0].Task.ID)
	}
}

// testDeleteProjectRunningTask deletes a project while a runner holds one of
// its tasks: the runner's heartbeat reports it lost and its completion is
// stale.
func testDeleteProjectRunningTask(t *testing.T, e *env) {
	e.project("p")
	e.insert(e.task("p", "f"))
	l := e.leaseOne("r", t0)
	if err := e.s.DeleteProject(e.ctx, "p"); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	lost, err := e.s.Heartbeat(e.ctx, &store.HeartbeatParams{RunnerID: "r", Leases: []store.LeaseRef{{TaskID: l.Task.ID, LeaseID: l.LeaseID}},
		TTL: time.Minute, Now: at(time.Second)})
	if err != nil || !slices.Equal(lost, []string{l.Task.ID}) {
		t.Fatalf("Heartbeat after DeleteProject = %v, %v; want the task lost", lost, err)
	}
	errs := e.complete(succeed(l, at(2*time.Second)))
	wantCode(t, "completion after DeleteProject", errs[0], ward.CodeStaleLease)
	if n, err := e.s.CountRunning(e.ctx, "p", "f"); err != nil || n != 0 {
		t.Fatalf("CountRunning after DeleteProject = %d, %v", n, err)
	}
}

func testDeleteProjectErrors(t *testing.T, e *env) {
	err := e.s.DeleteProject(e.ctx, "nope")
	wantCode(t, "DeleteProject(missing)", err, ward.CodeNotFound)
	// "" names no project, and deleting it never touches admin tokens.
	if _, err := e.s.CreateToken(e.ctx, &store.CreateTokenParams{Token: ward.Token{ID: "tok_admin", Role: ward.RoleAdmin,
		CreatedAt: t0, ExpiresAt: at(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	err = e.s.DeleteProject(e.ctx, "")
	wantCode(t, `DeleteProject("")`, err, ward.CodeNotFound)
	if _, err := e.s.GetToken(e.ctx, "tok_admin"); err != nil {
		t.Fatalf("admin token after DeleteProject(\"\"): %v", err)
	}
	e.project("p")
	if err := e.s.DeleteProject(e.ctx, "p"); err != nil {
		t.Fatal(err)
	}
	err = e.s.DeleteProject(e.ctx, "p")
	wantCode(t, "DeleteProject(deleted)", err, ward.CodeNotFound)
}

// purgeFixture makes, in project p, tasks in every state: succeeded at 1h
// (with an idempotency key), failed at 2h, cancelled (function g) at 3h,
// succeeded at 10h, running and queued (created long before any cutoff
// used), and in project q a task succeeded at 1h.
type purgeFixture struct {
	succeeded, failed, cancelled, late, running, queued, other string
}

func (e *env) purgeFixture() purgeFixture {
	e.t.Helper()
	e.project("p", "q")
	succeeded := e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" })
	failed, late, running := e.task("p", "f"), e.task("p", "f"), e.task("p", "f")
	cancelled := e.task("p", "g", func(n *store.NewTask) { n.RunAt = at(100 * time.Hour) })
	queued := e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(100 * time.Hour) })
	e.insert(succeeded, failed, late, running, cancelled, queued)

	if _, err := e.s.CancelTask(e.ctx, &store.CancelParams{Project: "p", ID: cancelled.ID, Now: at(3 * time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
	next := func(want string) store.Lease {
		e.t.Helper()
		l := e.leaseOne("r", t0)
		if l.Task.ID != want {
			e.t.Fatalf("leased %s, want %s", l.Task.ID, want)
		}
		return l
	}
	e.completeOK(succeed(next(succeeded.ID), at(time.Hour)))
	l := next(failed.ID)
	e.completeOK(store.Completion{TaskID: l.Task.ID, Project: "p", LeaseID: l.LeaseID, Status: ward.StatusFailed,
		Error: &ward.TaskError{Code: ward.CodeExitStatus}, ExitCode: ptr(1), Log: []byte("boom"), Now: at(2 * time.Hour)})
	e.completeOK(succeed(next(late.ID), at(10*time.Hour)))
	next(running.ID)
	other := e.task("q", "f")
	e.insert(other)
	e.completeOK(succeed(next(other.ID), at(time.Hour)))

	fx := purgeFixture{succeeded.ID, failed.ID, cancelled.ID, late.ID, running.ID, queued.ID, other.ID}
	for id, want := range map[string]ward.Status{fx.succeeded: ward.StatusSucceeded, fx.failed: ward.StatusFailed,
		fx.cancelled: ward.StatusCancelled, fx.late: ward.StatusSucceeded, fx.running: ward.StatusRunning, fx.queued: ward.StatusQueued} {
		if got := e.get("p", id).Status; got != want {
			e.t.Fatalf("fixture task %s is %s, want %s", id, got, want)
		}
	}
	return fx
}

// purge runs PurgeTasks and checks how many it deleted.
func (e *env) purge(p store.PurgeParams, want int) {
	e.t.Helper()
	n, err := e.s.PurgeTasks(e.ctx, &p)
	if err != nil || n != want {
		e.t.Fatalf("PurgeTasks(%+v) = %d, %v; want %d", p, n, err, want)
	}
}

// gone fails unless the task and its bodies are not found.
func (e *env) gone(project, id string) {
	e.t.Helper()
	_, err := e.s.GetTask(e.ctx, project, id)
	wantCode(e.t, "GetTask(purged "+id+")", err, ward.CodeNotFound)
	for _, b := range []store.Body{store.BodyPayload, store.BodyResult, store.BodyLog} {
		_, err := e.s.GetTaskBody(e.ctx, project, id, b)
		wantCode(e.t, "GetTaskBody(purged "+id+", "+string(b)+")", err, ward.CodeNotFound)
	}
}

func testPurgeTasks(t *testing.T, e *env) {
	fx := e.purgeFixture()
	cutoff := at(5 * time.Hour)

	// The function filter: only g's cancelled task.
	e.purge(store.PurgeParams{Project: "p", Function: "g", FinishedBefore: cutoff}, 1)
	e.gone("p", fx.cancelled)
	if e.get("p", fx.succeeded).Status != ward.StatusSucceeded {
		t.Fatal("a purge of function g deleted a task of f")
	}
	e.purge(store.PurgeParams{Project: "p", Function: "nope", FinishedBefore: cutoff}, 0)

	// The cutoff: succeeded at 1h and failed at 2h go; succeeded at 10h stays.
	e.purge(store.PurgeParams{Project: "p", FinishedBefore: cutoff}, 2)
	e.gone("p", fx.succeeded)
	e.gone("p", fx.failed)
	e.purge(store.PurgeParams{Project: "p", FinishedBefore: cutoff}, 0)
	if got, want := e.listIDs(&store.ListTasksParams{Project: "p"}), []string{fx.queued, fx.running, fx.late}; !slices.Equal(got, want) {
		t.Fatalf("ListTasks after purge = %v, want %v", got, want)
	}
	if got := e.body("p", fx.late, store.BodyResult); string(got) != `{"ok":true}` {
		t.Fatalf("result of a task finished after the cutoff = %q", got)
	}
	// The cutoff is exclusive.
	e.purge(store.PurgeParams{Project: "p", FinishedBefore: at(10 * time.Hour)}, 0)

	// Queued and running tasks stay whatever the cutoff.
	e.purge(store.PurgeParams{Project: "p", FinishedBefore: at(1000 * time.Hour)}, 1)
	e.gone("p", fx.late)
	if got := e.get("p", fx.running); got.Status != ward.StatusRunning {
		t.Fatalf("running task after purge: %s", got.Status)
	}
	if got := e.get("p", fx.queued); got.Status != ward.StatusQueued || len(e.body("p", fx.queued, store.BodyPayload)) == 0 {
		t.Fatalf("queued task after purge: %s", got.Status)
	}
	if n, err := e.s.CountRunning(e.ctx, "p", "f"); err != nil || n != 1 {
		t.Fatalf("CountRunning after purge = %d, %v", n, err)
	}

	// Other projects are untouched.
	if got := e.get("q", fx.other); got.Status != ward.StatusSucceeded || string(e.body("q", fx.other, store.BodyResult)) != `{"ok":true}` {
		t.Fatalf("q's task after purging p: %s", got.Status)
	}
	e.purge(store.PurgeParams{Project: "q", FinishedBefore: cutoff}, 1)
	e.gone("q", fx.other)

	// The purged task's idempotency key no longer maps to it.
	res := e.insertAt(at(6*time.Hour), e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }))
	if res[0].Existing {
		t.Fatalf("the key of a purged task still maps to %s", res[0].Task.ID)
	}
}

func testPurgeTasksLimit(t *testing.T, e *env) {
	fx := e.purgeFixture()
	cutoff := at(5 * time.Hour)
	candidates := []string{fx.succeeded, fx.failed, fx.cancelled}
	left := func() []string {
		t.Helper()
		var out []string
		for _, id := range candidates {
			if _, err := e.s.GetTask(e.ctx, "p", id); err == nil {
				out = append(out, id)
			}
		}
		return out
	}
	e.purge(store.PurgeParams{Project: "p", FinishedBefore: cutoff, Limit: 1}, 1)
	if got := left(); len(got) != 2 {
		t.Fatalf("after purging 1, %v of %v are left; want 2", got, candidates)
	}
	e.purge(store.PurgeParams{Project: "p", FinishedBefore: cutoff, Limit: 5}, 2)
	if got := left(); len(got) != 0 {
		t.Fatalf("after purging up to 5, %v are left", got)
	}
	e.purge(store.PurgeParams{Project: "p", FinishedBefore: cutoff, Limit: 5}, 0)
	for _, id := range []string{fx.late, fx.running, fx.queued} {
		e.get("p", id)
	}
}

func testPurgeTasksErrors(t *testing.T, e *env) {
	e.purgeFixture()
	_, err := e.s.PurgeTasks(e.ctx, &store.PurgeParams{Project: "p", FinishedBefore: at(1000 * time.Hour), Limit: -1})
	wantCode(t, "PurgeTasks(negative limit)", err, ward.CodeInvalidArgument)
	if got := e.listIDs(&store.ListTasksParams{Project: "p"}); len(got) != 6 {
		t.Fatalf("tasks after a failed purge = %v, want all 6", got)
	}
}
