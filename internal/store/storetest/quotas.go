package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// quotaTests cover project quotas and the counts they are checked against.
var quotaTests = []test{
	{"Quotas", testQuotas},
	{"CountQueued", testCountQueued},
	{"MaxRunning", testMaxRunning},
	{"MaxRunningAndConcurrency", testMaxRunningAndConcurrency},
	{"ConcurrentMaxRunning", testConcurrentMaxRunning},
	{"StoredBytes", testStoredBytes},
	{"StoredBytesPurgeAndDelete", testStoredBytesPurgeAndDelete},
	{"ConcurrentStoredBytes", testConcurrentStoredBytes},
}

func testQuotas(t *testing.T, e *env) {
	e.project("p", "q")
	if p, err := e.s.GetProject(e.ctx, "p"); err != nil || p.Quotas != (ward.Quotas{}) {
		t.Fatalf("a new project's quotas = %+v, %v; want none", p.Quotas, err)
	}
	want := ward.Quotas{MaxQueued: 100, MaxFunctions: 3, MaxRunning: 7, MaxStoredMB: 512}
	p, err := e.s.SetQuotas(e.ctx, "p", want.Patch())
	if err != nil || p.Quotas != want || p.RetentionDays != ward.DefaultRetentionDays {
		t.Fatalf("SetQuotas = %+v, %v; want quotas %+v and retention unchanged", p, err, want)
	}
	wantTime(t, "SetQuotas.CreatedAt (unchanged)", p.CreatedAt, t0)
	for _, name := range []string{"p", "q"} {
		got, err := e.s.GetProject(e.ctx, name)
		if want := map[string]ward.Quotas{"p": want}[name]; err != nil || got.Quotas != want {
			t.Errorf("GetProject(%s).Quotas = %+v, %v; want %+v", name, got.Quotas, err, want)
		}
	}
	list, err := e.s.ListProjects(e.ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListProjects = %+v, %v", list, err)
	}
	for _, pr := range list {
		if pr.Name == "p" && pr.Quotas != want {
			t.Errorf("ListProjects: p's quotas = %+v, want %+v", pr.Quotas, want)
		}
	}
	// Retention and quotas are set apart and keep each other.
	if p, err := e.s.SetRetention(e.ctx, "p", 30); err != nil || p.Quotas != want {
		t.Errorf("SetRetention changed the quotas: %+v, %v", p, err)
	}
	// A patch changes the quotas it gives and keeps the others.
	two := 2
	if p, err := e.s.SetQuotas(e.ctx, "p", ward.QuotasPatch{MaxRunning: &two}); err != nil ||
		p.Quotas != (ward.Quotas{MaxQueued: 100, MaxFunctions: 3, MaxRunning: 2, MaxStoredMB: 512}) || p.RetentionDays != 30 {
		t.Errorf("SetQuotas(max_running only) = %+v, %v", p, err)
	}
	if _, err := e.s.SetQuotas(e.ctx, "p", ward.QuotasPatch{}); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("SetQuotas(empty patch): %v, want invalid_argument", err)
	}
	if p, err := e.s.SetQuotas(e.ctx, "p", ward.Quotas{}.Patch()); err != nil || p.Quotas != (ward.Quotas{}) || p.RetentionDays != 30 {
		t.Errorf("SetQuotas(none) = %+v, %v", p, err)
	}
	for _, bad := range []ward.Quotas{{MaxQueued: -1}, {MaxFunctions: ward.MaxQuotaFunctions + 1},
		{MaxRunning: -1}, {MaxRunning: ward.MaxQuotaRunning + 1}, {MaxStoredMB: -1}, {MaxStoredMB: ward.MaxQuotaStoredMB + 1}} {
		if _, err := e.s.SetQuotas(e.ctx, "p", bad.Patch()); ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Errorf("SetQuotas(%+v): %v, want invalid_argument", bad, err)
		}
	}
	if _, err := e.s.SetQuotas(e.ctx, "nope", want.Patch()); ward.CodeOf(err) != ward.CodeNotFound {
		t.Errorf("SetQuotas(missing project): %v, want not_found", err)
	}
}

func testCountQueued(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "f", nil)
	e.function("q", "f", nil)
	count := func(project string, limit int) int {
		t.Helper()
		n, err := e.s.CountQueued(e.ctx, project, limit)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("p", 10); n != 0 {
		t.Fatalf("CountQueued(empty) = %d", n)
	}
	// Five of p's tasks, one delayed; three of q's.
	for i := range 5 {
		tk := e.task("p", "f")
		if i == 4 {
			tk.RunAt = t0.Add(time.Hour)
		}
		e.insert(tk)
	}
	e.insert(e.task("q", "f"), e.task("q", "f"), e.task("q", "f"))
	if n := count("p", 100); n != 5 {
		t.Errorf("CountQueued(p) = %d, want 5 (delayed tasks count)", n)
	}
	if n := count("q", 100); n != 3 {
		t.Errorf("CountQueued(q) = %d, want 3", n)
	}
	if n := count("p", 2); n != 2 {
		t.Errorf("CountQueued(p, limit 2) = %d, want 2", n)
	}
	// A leased task is no longer queued.
	if ls := e.lease("r1", 2, 1024, t0); len(ls) != 2 {
		t.Fatalf("leased %d", len(ls))
	}
	if n := count("p", 100) + count("q", 100); n != 6 {
		t.Errorf("queued after leasing 2 of 8 = %d, want 6", n)
	}
	if n := count("nope", 100); n != 0 {
		t.Errorf("CountQueued(missing project) = %d", n)
	}
}

// setQuotas sets a project's quotas.
func (e *env) setQuotas(project string, q ward.Quotas) {
	e.t.Helper()
	if _, err := e.s.SetQuotas(e.ctx, project, q.Patch()); err != nil {
		e.t.Fatalf("SetQuotas(%s): %v", project, err)
	}
}

// wantRunning fails unless CountRunning(project, fn) is want.
func (e *env) wantRunning(project, fn string, want int) {
	e.t.Helper()
	if n, err := e.s.CountRunning(e.ctx, project, fn); err != nil || n != want {
		e.t.Fatalf("CountRunning(%s, %q) = %d, %v; want %d", project, fn, n, err, want)
	}
}

func testMaxRunning(t *testing.T, e *env) {
	e.project("a", "b")
	e.setQuotas("a", ward.Quotas{MaxRunning: 2})
	// a's backlog is ahead of b's in the queue.
	var as, bs []store.NewTask
	for range 5 {
		as = append(as, e.task("a", "f"), e.task("a", "g"))
	}
	for range 3 {
		bs = append(bs, e.task("b", "f"))
	}
	e.insert(as...)
	e.insert(bs...)

	// A lease of 10 takes a's first 2 and all of b's: a's backlog does
	// not block the tasks behind it.
	l := e.lease("r1", 10, 1<<20, t0)
	want := []string{as[0].ID, as[1].ID, bs[0].ID, bs[1].ID, bs[2].ID}
	if got := ids(l); !slices.Equal(got, want) {
		t.Fatalf("leased %v, want %v", got, want)
	}
	e.wantRunning("a", "", 2)
	e.wantRunning("a", "f", 1)
	e.wantRunning("b", "", 3)
	// The quota holds across runners and leases.
	if got := e.lease("r2", 10, 1<<20, t0); len(got) != 0 {
		t.Fatalf("runner 2 leased %v past max_running", ids(got))
	}
	// A finished run frees one slot, a cancelled one another.
	e.completeOK(succeed(l[0], at(time.Second)))
	if got := ids(e.lease("r2", 10, 1<<20, at(time.Second))); !slices.Equal(got, []string{as[2].ID}) {
		t.Fatalf("after a completion leased %v, want %v", got, as[2].ID)
	}
	if _, err := e.s.CancelTask(e.ctx, &store.CancelParams{Project: "a", ID: as[1].ID, Now: at(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := ids(e.lease("r2", 10, 1<<20, at(time.Second))); !slices.Equal(got, []string{as[3].ID}) {
		t.Fatalf("after a cancel leased %v, want %v", got, as[3].ID)
	}
	// Lowering the quota under the running count leases none until enough
	// finish; raising it takes effect at once.
	e.setQuotas("a", ward.Quotas{MaxRunning: 1})
	if got := e.lease("r2", 10, 1<<20, at(time.Second)); len(got) != 0 {
		t.Fatalf("leased %v with 2 running and max_running 1", ids(got))
	}
	e.setQuotas("a", ward.Quotas{MaxRunning: 5})
	if got := ids(e.lease("r2", 10, 1<<20, at(time.Second))); !slices.Equal(got, []string{as[4].ID, as[5].ID, as[6].ID}) {
		t.Fatalf("after raising the quota leased %v, want 3 more of a", got)
	}
	e.wantRunning("a", "", 5)
	// No quota: the rest.
	e.setQuotas("a", ward.Quotas{})
	if got := e.lease("r2", 10, 1<<20, at(time.Second)); len(got) != 3 {
		t.Fatalf("without a quota leased %d, want the 3 left", len(got))
	}
	e.wantRunning("nope", "", 0)
}

func testMaxRunningAndConcurrency(t *testing.T, e *env) {
	e.project("a")
	e.setQuotas("a", ward.Quotas{MaxRunning: 3})
	e.function("a", "lim", func(s *ward.FunctionSpec) { s.Limits.MaxConcurrency = 1 })
	lim1, lim2 := e.task("a", "lim"), e.task("a", "lim")
	free := []store.NewTask{e.task("a", "free"), e.task("a", "free"), e.task("a", "free")}
	e.insert(append([]store.NewTask{lim1, lim2}, free...)...)
	// lim takes one slot of its own limit, and the project's other two go
	// to free: a task held back by its function uses no project slot.
	got := ids(e.lease("r", 10, 1<<20, t0))
	if want := []string{lim1.ID, free[0].ID, free[1].ID}; !slices.Equal(got, want) {
		t.Fatalf("leased %v, want %v", got, want)
	}
}

func testConcurrentMaxRunning(t *testing.T, e *env) {
	e.project("p")
	e.setQuotas("p", ward.Quotas{MaxRunning: 3})
	var tasks []store.NewTask
	for i := range 40 {
		tasks = append(tasks, e.task("p", fmt.Sprintf("f%d", i%4)))
	}
	e.insert(tasks...)
	total := e.leaseConcurrently(t)
	if total != 3 {
		t.Fatalf("%d tasks leased concurrently with max_running 3", total)
	}
}

// storedBytes returns a project's stored bytes as GetProject and
// ListProjects tell them (which must agree).
func (e *env) storedBytes(project string) int64 {
	e.t.Helper()
	p, err := e.s.GetProject(e.ctx, project)
	if err != nil {
		e.t.Fatalf("GetProject(%s): %v", project, err)
	}
	list, err := e.s.ListProjects(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, lp := range list {
		if lp.Name == project && lp.Usage != p.Usage {
			e.t.Fatalf("ListProjects: %s's usage %+v, GetProject's %+v", project, lp.Usage, p.Usage)
		}
	}
	return p.Usage.StoredBytes
}

// wantStored fails unless a project's stored bytes are want.
func (e *env) wantStored(what, project string, want int64) {
	e.t.Helper()
	if got := e.storedBytes(project); got != want {
		e.t.Fatalf("%s: %s's stored bytes = %d, want %d", what, project, got, want)
	}
}

// withPayload sets a task's payload.
func withPayload(b []byte) func(*store.NewTask) {
	return func(t *store.NewTask) { t.Payload = b }
}

// sizer returns the stored size of a body of n bytes: n plus what the
// store adds to every non-empty body (a sealing adapter's envelope),
// measured on a scratch project.
func (e *env) sizer() func(n int) int64 {
	e.t.Helper()
	e.project("size-probe")
	e.insert(e.task("size-probe", "f", withPayload([]byte("x")), func(t *store.NewTask) { t.RunAt = t0.Add(24 * time.Hour) }))
	overhead := e.storedBytes("size-probe") - 1
	if overhead < 0 {
		e.t.Fatalf("a 1-byte payload is stored in %d bytes", overhead+1)
	}
	return func(n int) int64 {
		if n == 0 {
			return 0
		}
		return int64(n) + overhead
	}
}

func testStoredBytes(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "f", nil)
	e.wantStored("new project", "p", 0)
	sz := e.sizer()

	// Code: a blob stored counts once per digest.
	code := []byte("0123456789")
	put := func(digest string, b []byte) {
		t.Helper()
		if _, err := e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "p", Function: "f", Digest: digest, Code: b, Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	put("sha256:aa", code)
	want := sz(10)
	e.wantStored("code", "p", want)
	put("sha256:aa", code)
	e.wantStored("the same code again", "p", want)
	put("sha256:bb", code[:4])
	want += sz(4)
	e.wantStored("new code", "p", want)

	// Payloads, an empty one and an idempotent repeat.
	a := e.task("p", "f", withPayload(make([]byte, 100)))
	b := e.task("p", "f", withPayload(make([]byte, 50)), func(t *store.NewTask) { t.IdempotencyKey = "k" })
	c := e.task("p", "f", withPayload(nil))
	e.insert(a, b, c)
	want += sz(100) + sz(50)
	e.wantStored("payloads", "p", want)
	e.insert(e.task("p", "f", withPayload(make([]byte, 70)), func(t *store.NewTask) { t.IdempotencyKey = "k" }))
	e.wantStored("an idempotent repeat", "p", want)
	e.insert(e.task("q", "f", withPayload(make([]byte, 1000)), func(t *store.NewTask) { t.RunAt = t0.Add(24 * time.Hour) }))
	e.wantStored("another project's task", "p", want)
	e.wantStored("q's task", "q", sz(1000))

	// Results and logs; a retry's log is replaced by the next run's.
	ls := e.lease("r", 3, 1<<20, t0)
	byID := map[string]store.Lease{}
	for _, l := range ls {
		byID[l.Task.ID] = l
	}
	la, lb, lc := byID[a.ID], byID[b.ID], byID[c.ID]
	done := func(l store.Lease, status ward.Status, result, log int) store.Completion {
		return store.Completion{TaskID: l.Task.ID, LeaseID: l.LeaseID, Project: "p", Status: status, RunAt: at(time.Second),
			Result: make([]byte, result), Log: make([]byte, log), Now: at(time.Second)}
	}
	e.completeOK(done(la, ward.StatusSucceeded, 20, 30), done(lb, ward.StatusQueued, 0, 40))
	want += sz(20) + sz(30) + sz(40)
	e.wantStored("a result and log, a retry's log", "p", want)
	// A stale completion stores nothing.
	e.complete(done(la, ward.StatusSucceeded, 500, 500))
	e.wantStored("a stale completion", "p", want)

	lb = e.leaseOne("r", at(time.Second))
	if lb.Task.ID != b.ID {
		t.Fatalf("leased %s, want the retried %s", lb.Task.ID, b.ID)
	}
	e.completeOK(done(lb, ward.StatusSucceeded, 7, 8))
	want += sz(7) + sz(8) - sz(40)
	e.wantStored("the retried run's result and log replace the first log", "p", want)
	e.completeOK(done(lc, ward.StatusFailed, 0, 0))
	e.wantStored("a run with no output", "p", want)

	// A retry with no log after one with a log clears it.
	d := e.task("p", "f", withPayload(make([]byte, 5)))
	e.insert(d)
	want += sz(5)
	ld := e.leaseOne("r", at(time.Second))
	e.completeOK(done(ld, ward.StatusQueued, 0, 60))
	e.wantStored("a retry's log", "p", want+sz(60))
	ld = e.leaseOne("r", at(2*time.Second))
	e.completeOK(done(ld, ward.StatusFailed, 0, 0))
	e.wantStored("a retry that clears the earlier log", "p", want)

	// RetryTask clears a's result and log.
	if _, err := e.s.RetryTask(e.ctx, &store.RetryParams{Project: "p", ID: a.ID, Now: at(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	want -= sz(20) + sz(30)
	e.wantStored("a re-queued task", "p", want)
	// Deleting a function keeps its tasks and code.
	if err := e.s.DeleteFunction(e.ctx, "p", "f"); err != nil {
		t.Fatal(err)
	}
	e.wantStored("a deleted function", "p", want)
	e.wantStored("q unchanged", "q", sz(1000))
}

func testStoredBytesPurgeAndDelete(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "f", nil)
	sz := e.sizer()
	if _, err := e.s.PutCode(e.ctx, &store.PutCodeParams{Project: "p", Function: "f", Digest: "sha256:aa", Code: make([]byte, 9), Now: t0}); err != nil {
		t.Fatal(err)
	}
	var tasks []store.NewTask
	want := sz(9)
	for i := range 4 {
		tasks = append(tasks, e.task("p", "f", withPayload(make([]byte, 10*(i+1)))))
		want += sz(10 * (i + 1))
	}
	e.insert(tasks...)
	e.insert(e.task("q", "f", withPayload(make([]byte, 3)), func(t *store.NewTask) { t.RunAt = t0.Add(24 * time.Hour) }))
	e.wantStored("inserted", "p", want)
	// Two finish (with 1+2 and 3+4 bytes), one runs, one waits.
	ls := e.lease("r", 3, 1<<20, t0)
	for i, l := range ls[:2] {
		e.completeOK(store.Completion{TaskID: l.Task.ID, LeaseID: l.LeaseID, Project: "p", Status: ward.StatusSucceeded,
			Result: make([]byte, 2*i+1), Log: make([]byte, 2*i+2), Now: at(time.Duration(i+1) * time.Second)})
		want += sz(2*i+1) + sz(2*i+2)
	}
	e.wantStored("finished", "p", want)
	// Purge the first to finish: its payload, result and log go.
	if n, err := e.s.PurgeTasks(e.ctx, &store.PurgeParams{Project: "p", FinishedBefore: at(1500 * time.Millisecond)}); err != nil || n != 1 {
		t.Fatalf("PurgeTasks = %d, %v; want 1", n, err)
	}
	want -= sz(10) + sz(1) + sz(2)
	e.wantStored("purged one", "p", want)
	// Purge the rest of the finished: running and queued tasks stay.
	if n, err := e.s.PurgeTasks(e.ctx, &store.PurgeParams{Project: "p", FinishedBefore: at(time.Hour)}); err != nil || n != 1 {
		t.Fatalf("PurgeTasks = %d, %v; want 1", n, err)
	}
	want -= sz(20) + sz(3) + sz(4)
	e.wantStored("purged the finished", "p", want)
	if want != sz(9)+sz(30)+sz(40) {
		t.Fatalf("the test's sum is off: %d", want)
	}
	if n, err := e.s.PurgeTasks(e.ctx, &store.PurgeParams{Project: "p", FinishedBefore: at(time.Hour)}); err != nil || n != 0 {
		t.Fatalf("PurgeTasks (nothing left) = %d, %v", n, err)
	}
	e.wantStored("purged nothing", "p", want)
	e.wantStored("q", "q", sz(3))
	// A project deleted and created again starts from nothing.
	if err := e.s.DeleteProject(e.ctx, "p"); err != nil {
		t.Fatal(err)
	}
	e.project("p")
	e.wantStored("created again", "p", 0)
	e.wantStored("q after p's deletion", "q", sz(3))
}

func testConcurrentStoredBytes(t *testing.T, e *env) {
	e.project("p", "q")
	sz := e.sizer()
	const workers, rounds = 6, 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	var batches [][][]store.NewTask
	for w := range workers {
		// Batches of both projects, in either order.
		var bs [][]store.NewTask
		for i := range rounds {
			first, second := "p", "q"
			if (w+i)%2 == 1 {
				first, second = second, first
			}
			bs = append(bs, []store.NewTask{
				e.task(first, "f", withPayload(make([]byte, 3))),
				e.task(second, "f", withPayload(make([]byte, 5))),
			})
		}
		batches = append(batches, bs)
	}
	for w := range workers {
		wg.Go(func() {
			for _, b := range batches[w] {
				if _, err := e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: b, Now: t0}); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	// Each project got half its tasks of 3 bytes, half of 5.
	half := int64(workers * rounds / 2)
	want := half * (sz(3) + sz(5))
	for _, p := range []string{"p", "q"} {
		e.wantStored("concurrent inserts", p, want)
	}
	// Complete them concurrently, in batches that span both projects.
	var leases [][]store.Lease
	for range workers {
		leases = append(leases, e.lease("r", rounds*2, 1<<20, t0))
	}
	for w := range workers {
		wg.Go(func() {
			var cs []store.Completion
			for _, l := range leases[w] {
				cs = append(cs, store.Completion{TaskID: l.Task.ID, LeaseID: l.LeaseID, Project: l.Task.Project,
					Status: ward.StatusSucceeded, Result: make([]byte, 1), Log: make([]byte, 2), Now: at(time.Second)})
			}
			_, errs[w] = e.s.CompleteTasks(e.ctx, &store.CompleteParams{Completions: cs})
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("completion worker %d: %v", w, err)
		}
	}
	want += 2 * half * (sz(1) + sz(2))
	for _, p := range []string{"p", "q"} {
		e.wantStored("concurrent completions", p, want)
	}
}
