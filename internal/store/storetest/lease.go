package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// leaseTests cover the queue: leasing, admission, heartbeats, completion,
// expiry, requeue, cancel and retry.
var leaseTests = []test{
	{"LeaseOrder", testLeaseOrder},
	{"LeaseFIFO", testLeaseFIFO},
	{"LeaseDelayed", testLeaseDelayed},
	{"LeaseRecord", testLeaseRecord},
	{"LeaseArguments", testLeaseArguments},
	{"MemoryAdmission", testMemoryAdmission},
	{"MaxConcurrency", testMaxConcurrency},
	{"MaxConcurrencyDeletedFunction", testDeletedFunctionNoLimit},
	{"HeartbeatAndTTL", testHeartbeat},
	{"Fencing", testFencing},
	{"CompleteSucceededAndFailed", testComplete},
	{"CompleteRetry", testCompleteRetry},
	{"CompleteInvalidStatus", testCompleteInvalidStatus},
	{"CompleteTwiceInOneBatch", testCompleteTwiceInBatch},
	{"LargeBatches", testLargeBatches},
	{"ExpireLeases", testExpireLeases},
	{"RequeueRunner", testRequeueRunner},
	{"Cancel", testCancel},
	{"Retry", testRetry},
	{"ConcurrentLeasing", testConcurrentLeasing},
	{"ConcurrentMaxConcurrency", testConcurrentMaxConcurrency},
}

func testLeaseOrder(t *testing.T, e *env) {
	e.project("p")
	a := e.task("p", "f")                                                                        // p0
	b := e.task("p", "f", func(n *store.NewTask) { n.Priority = 2 })                             // p2, run_at t0
	c := e.task("p", "f", func(n *store.NewTask) { n.Priority = 1 })                             // p1
	d := e.task("p", "f", func(n *store.NewTask) { n.Priority = 2; n.RunAt = at(-time.Second) }) // p2, earlier run_at, inserted later
	f := e.task("p", "f", func(n *store.NewTask) { n.Priority = 2 })                             // p2, run_at t0, inserted after b
	e.insert(a, b, c, d, f)
	got := ids(e.lease("r", 10, 1<<20, t0))
	if want := []string{d.ID, b.ID, f.ID, c.ID, a.ID}; !slices.Equal(got, want) {
		t.Fatalf("lease order = %v, want %v (priority, run_at, insertion)", got, want)
	}
}

func testLeaseFIFO(t *testing.T, e *env) {
	e.project("p")
	var want []string
	for range 6 {
		nt := e.task("p", "f", func(n *store.NewTask) { n.Priority = 1 })
		e.insert(nt)
		want = append(want, nt.ID)
	}
	var got []string
	for range 6 {
		got = append(got, e.leaseOne("r", t0).Task.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("one-by-one lease order = %v, want insertion order %v", got, want)
	}
	if ls := e.lease("r", 5, 1<<20, t0); len(ls) != 0 {
		t.Fatalf("leased %v from an empty queue", ids(ls))
	}
}

func testLeaseDelayed(t *testing.T, e *env) {
	e.project("p")
	delayed := e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(10 * time.Second); n.Priority = 2 })
	due := e.task("p", "f")
	e.insert(delayed, due)
	if got := ids(e.lease("r", 10, 1<<20, t0)); !slices.Equal(got, []string{due.ID}) {
		t.Fatalf("lease at t0 = %v, want only the due task", got)
	}
	if got := e.lease("r", 10, 1<<20, at(10*time.Second-time.Microsecond)); len(got) != 0 {
		t.Fatalf("lease before run_at = %v, want none", ids(got))
	}
	if got := ids(e.lease("r", 10, 1<<20, at(10*time.Second))); !slices.Equal(got, []string{delayed.ID}) {
		t.Fatalf("lease at run_at = %v, want the delayed task", got)
	}
}

func testLeaseRecord(t *testing.T, e *env) {
	e.project("p")
	nt := e.task("p", "f", func(n *store.NewTask) { n.Labels = map[string]string{"a": "b"} })
	before := e.insert(nt)[0]
	now := at(3 * time.Second)
	ls, err := e.s.LeaseTasks(e.ctx, &store.LeaseParams{RunnerID: "runner-1", Max: 1, FreeMemoryMB: 64, TTL: 30 * time.Second, Now: now})
	if err != nil || len(ls) != 1 {
		t.Fatalf("LeaseTasks = %d, %v", len(ls), err)
	}
	l := ls[0]
	want := before
	want.Status = ward.StatusRunning
	want.Attempts = 1
	want.StartedAt = &now
	want.LeaseID = l.LeaseID
	want.RunnerID = "runner-1"
	want.LeaseExpiresAt = now.Add(30 * time.Second)
	sameRecord(t, "leased record", l.Task, want)
	sameRecord(t, "GetTask after lease", e.get("p", nt.ID), want)
	if len(l.LeaseID) < 16 {
		t.Fatalf("lease ID %q is too short to be unguessable", l.LeaseID)
	}
	wantTime(t, "Lease.ExpiresAt", l.ExpiresAt, now.Add(30*time.Second))
	if !bytes.Equal(l.Payload, nt.Payload) {
		t.Fatalf("Lease.Payload = %q, want %q", l.Payload, nt.Payload)
	}
	// Every lease gets its own ID.
	e.insert(e.task("p", "f"), e.task("p", "f"))
	seen := map[string]bool{l.LeaseID: true}
	for _, l := range e.lease("runner-1", 2, 1000, now) {
		if seen[l.LeaseID] || l.LeaseID == "" {
			t.Fatalf("lease ID %q repeated or empty", l.LeaseID)
		}
		seen[l.LeaseID] = true
	}
}

func testLeaseArguments(t *testing.T, e *env) {
	e.project("p")
	e.insert(e.task("p", "f"))
	for _, tc := range []struct {
		name string
		p    store.LeaseParams
	}{
		{"max 0", store.LeaseParams{RunnerID: "r", Max: 0, FreeMemoryMB: 1000, TTL: time.Minute, Now: t0}},
		{"no memory", store.LeaseParams{RunnerID: "r", Max: 5, FreeMemoryMB: 0, TTL: time.Minute, Now: t0}},
		{"less memory than the task", store.LeaseParams{RunnerID: "r", Max: 5, FreeMemoryMB: 63, TTL: time.Minute, Now: t0}},
	} {
		ls, err := e.s.LeaseTasks(e.ctx, &tc.p)
		if err != nil || len(ls) != 0 {
			t.Fatalf("LeaseTasks(%s) = %v, %v; want none", tc.name, ids(ls), err)
		}
	}
	for _, tc := range []struct {
		name string
		p    store.LeaseParams
	}{
		{"no runner", store.LeaseParams{Max: 5, FreeMemoryMB: 1000, TTL: time.Minute, Now: t0}},
		{"no TTL", store.LeaseParams{RunnerID: "r", Max: 5, FreeMemoryMB: 1000, Now: t0}},
	} {
		_, err := e.s.LeaseTasks(e.ctx, &tc.p)
		wantCode(t, "LeaseTasks("+tc.name+")", err, ward.CodeInvalidArgument)
	}
	if got := e.get("p", "t_000001"); got.Status != ward.StatusQueued || got.Attempts != 0 {
		t.Fatalf("task after refused leases = %s", mustJSON(t, got))
	}
}

func testMemoryAdmission(t *testing.T, e *env) {
	e.project("p")
	mem := func(mb, prio int) func(*store.NewTask) {
		return func(n *store.NewTask) { n.MemoryMB = mb; n.Priority = prio }
	}
	big := e.task("p", "f", mem(200, 2)) // highest priority, never fits below
	t1, t2, t3, t4, t5 := e.task("p", "f", mem(64, 0)), e.task("p", "f", mem(128, 0)), e.task("p", "f", mem(32, 0)),
		e.task("p", "f", mem(64, 0)), e.task("p", "f", mem(16, 0))
	e.insert(big, t1, t2, t3, t4, t5)

	sum := func(ls []store.Lease) int {
		s := 0
		for _, l := range ls {
			s += l.Task.MemoryMB
		}
		return s
	}
	for _, step := range []struct {
		max, free int
		want      []string
	}{
		{10, 120, []string{t1.ID, t3.ID, t5.ID}}, // 64+32+16; 200, 128 and the second 64 are skipped
		{10, 127, []string{t4.ID}},               // 128 does not fit, 64 does
		{10, 127, nil},                           // 128 and 200 never fit in 127
		{1, 1000, []string{big.ID}},              // priority first once it fits
		{10, 128, []string{t2.ID}},               // exactly fits
	} {
		ls := e.lease("r", step.max, step.free, t0)
		if got := ids(ls); !slices.Equal(got, step.want) {
			t.Fatalf("lease(max %d, free %d MB) = %v, want %v", step.max, step.free, got, step.want)
		}
		if s := sum(ls); s > step.free {
			t.Fatalf("leased %d MB with %d MB free", s, step.free)
		}
	}
}

func testMaxConcurrency(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "lim", func(s *ward.FunctionSpec) { s.Limits.MaxConcurrency = 2 })
	e.function("p", "free", nil)
	e.function("q", "lim", func(s *ward.FunctionSpec) { s.Limits.MaxConcurrency = 1 })
	var lim []store.NewTask
	for range 4 {
		lim = append(lim, e.task("p", "lim"))
	}
	free1, free2 := e.task("p", "free"), e.task("p", "free")
	qlim1, qlim2 := e.task("q", "lim"), e.task("q", "lim")
	e.insert(append(lim, free1, free2, qlim1, qlim2)...)

	// The limited backlog does not hide the tasks behind it.
	a := e.lease("runner-a", 10, 1<<20, t0)
	if got, want := ids(a), []string{lim[0].ID, lim[1].ID, free1.ID, free2.ID, qlim1.ID}; !slices.Equal(got, want) {
		t.Fatalf("runner A leased %v, want %v", got, want)
	}
	wantRunning := func(project, fn string, want int) {
		t.Helper()
		if n, err := e.s.CountRunning(e.ctx, project, fn); err != nil || n != want {
			t.Fatalf("CountRunning(%s, %s) = %d, %v; want %d", project, fn, n, err, want)
		}
	}
	wantRunning("p", "lim", 2)
	wantRunning("p", "free", 2)
	wantRunning("q", "lim", 1)
	wantRunning("p", "nope", 0)

	// Another runner gets nothing: the limit holds across runners.
	if b := e.lease("runner-b", 10, 1<<20, t0); len(b) != 0 {
		t.Fatalf("runner B leased %v past max_concurrency", ids(b))
	}
	// Finishing one frees one slot.
	e.completeOK(succeed(a[0], at(time.Second)))
	if got := ids(e.lease("runner-b", 10, 1<<20, at(time.Second))); !slices.Equal(got, []string{lim[2].ID}) {
		t.Fatalf("after a completion runner B leased %v, want %v", got, lim[2].ID)
	}
	// Cancelling a running task frees its slot too.
	if _, err := e.s.CancelTask(e.ctx, &store.CancelParams{Project: "q", ID: qlim1.ID, Now: at(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := ids(e.lease("runner-b", 10, 1<<20, at(time.Second))); !slices.Equal(got, []string{qlim2.ID}) {
		t.Fatalf("after a cancel runner B leased %v, want %v", got, qlim2.ID)
	}
	// Raising the limit takes effect at once.
	e.function("p", "lim", func(s *ward.FunctionSpec) { s.Limits.MaxConcurrency = 3 })
	if got := ids(e.lease("runner-b", 10, 1<<20, at(time.Second))); !slices.Equal(got, []string{lim[3].ID}) {
		t.Fatalf("after raising the limit runner B leased %v, want %v", got, lim[3].ID)
	}
	wantRunning("p", "lim", 3)
}

func testDeletedFunctionNoLimit(t *testing.T, e *env) {
	e.project("p")
	e.function("p", "f", func(s *ward.FunctionSpec) { s.Limits.MaxConcurrency = 1 })
	e.insert(e.task("p", "f"), e.task("p", "f"), e.task("p", "f"))
	if got := e.lease("r", 10, 1<<20, t0); len(got) != 1 {
		t.Fatalf("leased %d with max_concurrency 1", len(got))
	}
	if err := e.s.DeleteFunction(e.ctx, "p", "f"); err != nil {
		t.Fatal(err)
	}
	if got := e.lease("r", 10, 1<<20, t0); len(got) != 2 {
		t.Fatalf("leased %d tasks of a deleted function, want the 2 left (no limit)", len(got))
	}
}

func testHeartbeat(t *testing.T, e *env) {
	e.project("p")
	e.insert(e.task("p", "f"), e.task("p", "f"))
	ls := e.lease("r", 2, 1<<20, t0) // TTL 1 minute
	l, other := ls[0], ls[1]
	hb := func(now time.Time, refs ...store.LeaseRef) []string {
		t.Helper()
		lost, err := e.s.Heartbeat(e.ctx, &store.HeartbeatParams{RunnerID: "r", Leases: refs, TTL: time.Minute, Now: now})
		if err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		return lost
	}
	ref := store.LeaseRef{TaskID: l.Task.ID, LeaseID: l.LeaseID}
	lost := hb(at(50*time.Second), ref,
		store.LeaseRef{TaskID: other.Task.ID, LeaseID: "not-the-lease"},
		store.LeaseRef{TaskID: "t_unknown", LeaseID: l.LeaseID})
	if want := []string{other.Task.ID, "t_unknown"}; !slices.Equal(lost, want) {
		t.Fatalf("Heartbeat lost = %v, want %v", lost, want)
	}
	wantTime(t, "extended lease_expires_at", e.get("p", l.Task.ID).LeaseExpiresAt, at(110*time.Second))
	wantTime(t, "lease_expires_at of a lost ref", e.get("p", other.Task.ID).LeaseExpiresAt, at(time.Minute))

	expire := func(now time.Time) []string {
		t.Helper()
		got, err := e.s.ExpireLeases(e.ctx, &store.ExpireParams{Now: now, PlatformRetries: ward.PlatformRetries})
		if err != nil {
			t.Fatalf("ExpireLeases: %v", err)
		}
		return got
	}
	// At t0+100s only the lease not extended has expired.
	if got := expire(at(100 * time.Second)); !slices.Equal(got, []string{other.Task.ID}) {
		t.Fatalf("ExpireLeases(t0+100s) = %v, want only %s", got, other.Task.ID)
	}
	// A lease expiring exactly at Now is not yet expired.
	if got := expire(at(110 * time.Second)); len(got) != 0 {
		t.Fatalf("ExpireLeases at the expiry instant = %v, want none", got)
	}
	if got := e.get("p", l.Task.ID); got.Status != ward.StatusRunning || got.LeaseID != l.LeaseID {
		t.Fatalf("extended task = %s, want still running", mustJSON(t, got))
	}
	if got := hb(at(105*time.Second), ref); len(got) != 0 {
		t.Fatalf("Heartbeat of a held lease lost %v", got)
	}
	// A cancelled task is reported lost.
	if _, err := e.s.CancelTask(e.ctx, &store.CancelParams{Project: "p", ID: l.Task.ID, Now: at(106 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := hb(at(107*time.Second), ref); !slices.Equal(got, []string{l.Task.ID}) {
		t.Fatalf("Heartbeat of a cancelled task lost %v, want it", got)
	}
	if got := hb(at(107 * time.Second)); len(got) != 0 {
		t.Fatalf("empty Heartbeat lost %v", got)
	}
	_, err := e.s.Heartbeat(e.ctx, &store.HeartbeatParams{RunnerID: "r", Leases: []store.LeaseRef{ref}, Now: t0})
	wantCode(t, "Heartbeat(no TTL)", err, ward.CodeInvalidArgument)
}

func testFencing(t *testing.T, e *env) {
	e.project("p")
	e.insert(e.task("p", "f"))
	l1 := e.leaseOne("old", t0)
	// A completion with the wrong lease ID changes nothing.
	bad := succeed(l1, at(time.Second))
	bad.LeaseID = "forged"
	errs := e.complete(bad)
	wantCode(t, "complete with a wrong lease ID", errs[0], ward.CodeStaleLease)
	sameRecord(t, "record after a forged completion", e.get("p", l1.Task.ID), l1.Task)

	// The lease expires and another runner takes the task.
	if _, err := e.s.ExpireLeases(e.ctx, &store.ExpireParams{Now: at(2 * time.Minute), PlatformRetries: 3}); err != nil {
		t.Fatal(err)
	}
	l2 := e.leaseOne("new", at(2*time.Minute))
	if l2.LeaseID == l1.LeaseID || l2.Task.ID != l1.Task.ID {
		t.Fatalf("re-lease = %s with lease %s; want the same task with a new lease", l2.Task.ID, l2.LeaseID)
	}
	before := e.get("p", l1.Task.ID)
	for _, st := range []ward.Status{ward.StatusSucceeded, ward.StatusFailed, ward.StatusQueued} {
		c := succeed(l1, at(3*time.Minute))
		c.Status = st
		c.RunAt = at(time.Hour)
		errs := e.complete(c)
		wantCode(t, "late "+string(st)+" completion of the old lease", errs[0], ward.CodeStaleLease)
		if !errors.Is(errs[0], ward.ErrStaleLease) {
			t.Fatalf("late completion error %v is not ward.ErrStaleLease", errs[0])
		}
	}
	sameRecord(t, "record after stale completions", e.get("p", l1.Task.ID), before)
	if len(e.body("p", l1.Task.ID, store.BodyResult)) != 0 {
		t.Fatal("a stale completion wrote a result")
	}
	lost, err := e.s.Heartbeat(e.ctx, &store.HeartbeatParams{RunnerID: "old", Leases: []store.LeaseRef{{TaskID: l1.Task.ID, LeaseID: l1.LeaseID}}, TTL: time.Minute, Now: at(3 * time.Minute)})
	if err != nil || !slices.Equal(lost, []string{l1.Task.ID}) {
		t.Fatalf("old runner's heartbeat lost %v, %v; want the task", lost, err)
	}
	// The current lease completes, once.
	e.completeOK(succeed(l2, at(3*time.Minute)))
	errs = e.complete(succeed(l2, at(4*time.Minute)))
	wantCode(t, "second completion", errs[0], ward.CodeStaleLease)
	got := e.get("p", l1.Task.ID)
	if got.Status != ward.StatusSucceeded {
		t.Fatalf("status = %s", got.Status)
	}
	wantTimePtr(t, "FinishedAt (first completion)", got.FinishedAt, ptr(at(3*time.Minute)))
}

func testComplete(t *testing.T, e *env) {
	e.project("p")
	e.insert(e.task("p", "ok"), e.task("p", "bad"))
	ls := e.lease("r", 2, 1<<20, t0)
	okL, badL := ls[0], ls[1]
	code := 3
	fail := store.Completion{TaskID: badL.Task.ID, Project: badL.Task.Project, LeaseID: badL.LeaseID, Status: ward.StatusFailed,
		Error: &ward.TaskError{Code: ward.CodeExitStatus, Message: "exit status 3"}, ExitCode: &code,
		Usage: &ward.Usage{PeakMemoryBytes: 10, CPUMs: 20, DurationMs: 30}, Log: []byte("boom"), Now: at(2 * time.Second)}
	e.completeOK(succeed(okL, at(time.Second)), fail)

	want := okL.Task
	want.Status = ward.StatusSucceeded
	want.FinishedAt = ptr(at(time.Second))
	want.ExitCode = ptr(0)
	want.Usage = &ward.Usage{PeakMemoryBytes: 1 << 20, CPUMs: 5, DurationMs: 7}
	want.LeaseID, want.RunnerID, want.LeaseExpiresAt = "", "", time.Time{}
	sameRecord(t, "succeeded record", e.get("p", okL.Task.ID), want)

	want = badL.Task
	want.Status = ward.StatusFailed
	want.FinishedAt = ptr(at(2 * time.Second))
	want.ExitCode = ptr(3)
	want.Error = fail.Error
	want.Usage = fail.Usage
	want.LeaseID, want.RunnerID, want.LeaseExpiresAt = "", "", time.Time{}
	sameRecord(t, "failed record", e.get("p", badL.Task.ID), want)
	if got := e.body("p", badL.Task.ID, store.BodyResult); len(got) != 0 {
		t.Fatalf("failed task result = %q, want none", got)
	}
	if got := e.body("p", badL.Task.ID, store.BodyLog); string(got) != "boom" {
		t.Fatalf("failed task log = %q", got)
	}
	if n, _ := e.s.CountRunning(e.ctx, "p", "ok"); n != 0 {
		t.Fatalf("CountRunning after completion = %d", n)
	}
}

func testCompleteRetry(t *testing.T, e *env) {
	e.project("p")
	nt := e.task("p", "f")
	e.insert(nt)
	l := e.leaseOne("r", t0)
	one := 1
	e.completeOK(store.Completion{TaskID: nt.ID, Project: "p", LeaseID: l.LeaseID, Status: ward.StatusQueued, RunAt: at(5 * time.Second),
		Error: &ward.TaskError{Code: ward.CodeExitStatus, Message: "exit status 1"}, ExitCode: &one,
		Log: []byte("try 1"), Result: []byte("partial"), Now: at(time.Second)})
	got := e.get("p", nt.ID)
	switch {
	case got.Status != ward.StatusQueued, got.Attempts != 1, got.PlatformTries != 0,
		got.Error == nil || got.Error.Code != ward.CodeExitStatus,
		got.StartedAt != nil, got.FinishedAt != nil, got.LeaseID != "", got.RunnerID != "", !got.LeaseExpiresAt.IsZero():
		t.Fatalf("after a retry completion = %s", mustJSON(t, got))
	}
	wantTime(t, "RunAt of the retry", got.RunAt, at(5*time.Second))
	if b := e.body("p", nt.ID, store.BodyLog); string(b) != "try 1" {
		t.Fatalf("log of the failed try = %q, want it kept", b)
	}
	if ls := e.lease("r", 1, 1<<20, at(5*time.Second-time.Microsecond)); len(ls) != 0 {
		t.Fatal("retry leased before its run_at")
	}
	l = e.leaseOne("r", at(5*time.Second))
	if l.Task.Attempts != 2 {
		t.Fatalf("second run attempts = %d, want 2", l.Task.Attempts)
	}
	// A platform retry counts a platform try; attempts still counts runs.
	e.completeOK(store.Completion{TaskID: nt.ID, Project: "p", LeaseID: l.LeaseID, Status: ward.StatusQueued, RunAt: at(6 * time.Second),
		Error: &ward.TaskError{Code: ward.CodeNodePressure}, PlatformRetry: true, Now: at(6 * time.Second)})
	got = e.get("p", nt.ID)
	if got.PlatformTries != 1 || got.Attempts != 2 || got.Error.Code != ward.CodeNodePressure || got.ExitCode != nil {
		t.Fatalf("after a platform retry = %s", mustJSON(t, got))
	}
	if b := e.body("p", nt.ID, store.BodyLog); len(b) != 0 {
		t.Fatalf("log after a run without log = %q, want the old one gone", b)
	}
	l = e.leaseOne("r", at(6*time.Second))
	if l.Task.Attempts != 3 || l.Task.PlatformTries != 1 {
		t.Fatalf("third run = attempts %d, platform tries %d", l.Task.Attempts, l.Task.PlatformTries)
	}
	e.completeOK(store.Completion{TaskID: nt.ID, Project: "p", LeaseID: l.LeaseID, Status: ward.StatusSucceeded, Result: []byte("final"), Now: at(7 * time.Second)})
	got = e.get("p", nt.ID)
	if got.Status != ward.StatusSucceeded || got.Error != nil || got.Attempts != 3 {
		t.Fatalf("final = %s, want succeeded with no error", mustJSON(t, got))
	}
	if b := e.body("p", nt.ID, store.BodyResult); string(b) != "final" {
		t.Fatalf("result = %q, want the last run's", b)
	}
}

func testCompleteInvalidStatus(t *testing.T, e *env) {
	e.project("p")
	e.insert(e.task("p", "f"), e.task("p", "f"))
	ls := e.lease("r", 2, 1<<20, t0)
	for _, st := range []ward.Status{ward.StatusRunning, ward.StatusCancelled, "bogus"} {
		c := succeed(ls[0], at(time.Second))
		c.Status = st
		errs := e.complete(c)
		wantCode(t, "complete with status "+string(st), errs[0], ward.CodeInvalidArgument)
	}
	c := succeed(ls[0], at(time.Second))
	c.Status = ward.StatusCancelled
	errs := e.complete(c, succeed(ls[1], at(time.Second)))
	if errs[0] == nil || errs[1] != nil {
		t.Fatalf("mixed batch errors = %v", errs)
	}
	if got := e.get("p", ls[0].Task.ID); got.Status != ward.StatusRunning {
		t.Fatalf("task after an invalid completion = %s", got.Status)
	}
	if got := e.get("p", ls[1].Task.ID); got.Status != ward.StatusSucceeded {
		t.Fatalf("valid completion in the batch not applied: %s", got.Status)
	}
}

func testExpireLeases(t *testing.T, e *env) {
	e.project("p")
	nt, keep := e.task("p", "f"), e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(time.Hour) })
	e.insert(nt, keep)
	now := t0
	for try := 1; try <= ward.PlatformRetries+1; try++ {
		l := e.leaseOne("r", now) // TTL 1 minute
		if l.Task.Attempts != try {
			t.Fatalf("run %d: attempts = %d", try, l.Task.Attempts)
		}
		// Not expired before its time.
		got, err := e.s.ExpireLeases(e.ctx, &store.ExpireParams{Now: now.Add(30 * time.Second), PlatformRetries: ward.PlatformRetries})
		if err != nil || len(got) != 0 {
			t.Fatalf("run %d: early ExpireLeases = %v, %v", try, got, err)
		}
		now = now.Add(time.Minute + time.Microsecond)
		got, err = e.s.ExpireLeases(e.ctx, &store.ExpireParams{Now: now, PlatformRetries: ward.PlatformRetries})
		if err != nil || !slices.Equal(got, []string{nt.ID}) {
			t.Fatalf("run %d: ExpireLeases = %v, %v; want [%s]", try, got, err, nt.ID)
		}
		rec := e.get("p", nt.ID)
		if rec.Error == nil || rec.Error.Code != ward.CodeLeaseExpired || rec.LeaseID != "" || rec.RunnerID != "" {
			t.Fatalf("run %d: after expiry = %s", try, mustJSON(t, rec))
		}
		if try <= ward.PlatformRetries {
			if rec.Status != ward.StatusQueued || rec.PlatformTries != try || rec.FinishedAt != nil || rec.StartedAt != nil {
				t.Fatalf("run %d: want queued with %d platform tries, got %s", try, try, mustJSON(t, rec))
			}
			wantTime(t, "RunAt after expiry", rec.RunAt, now)
			continue
		}
		if rec.Status != ward.StatusFailed || rec.PlatformTries != ward.PlatformRetries {
			t.Fatalf("run %d: want failed, got %s", try, mustJSON(t, rec))
		}
		wantTimePtr(t, "FinishedAt", rec.FinishedAt, &now)
	}
	if got := e.get("p", keep.ID); got.Status != ward.StatusQueued || got.PlatformTries != 0 {
		t.Fatalf("untouched task = %s", mustJSON(t, got))
	}
	// With no platform retries allowed, an expired lease fails at once (and
	// one expiring exactly at Now has not expired).
	l := e.leaseOne("r", at(time.Hour))
	got, err := e.s.ExpireLeases(e.ctx, &store.ExpireParams{Now: at(time.Hour + time.Minute), PlatformRetries: 0})
	if err != nil || len(got) != 0 {
		t.Fatalf("ExpireLeases(0 retries) at the expiry instant = %v, %v; want none", got, err)
	}
	got, err = e.s.ExpireLeases(e.ctx, &store.ExpireParams{Now: at(time.Hour + time.Minute + time.Microsecond), PlatformRetries: 0})
	if err != nil || !slices.Equal(got, []string{l.Task.ID}) {
		t.Fatalf("ExpireLeases(0 retries) = %v, %v", got, err)
	}
	if rec := e.get("p", l.Task.ID); rec.Status != ward.StatusFailed || rec.Error.Code != ward.CodeLeaseExpired {
		t.Fatalf("with 0 retries = %s, want failed/lease_expired", mustJSON(t, rec))
	}
	if got, err := e.s.ExpireLeases(e.ctx, &store.ExpireParams{Now: at(3 * time.Hour), PlatformRetries: 3}); err != nil || len(got) != 0 {
		t.Fatalf("ExpireLeases with nothing running = %v, %v", got, err)
	}
	// ExpiredBy later than Now reaps a live lease too, timed at Now.
	orphan := e.task("p", "f")
	e.insert(orphan)
	ol := e.leaseOne("r2", now) // expires at now + 1 minute
	got, err = e.s.ExpireLeases(e.ctx, &store.ExpireParams{Now: now, ExpiredBy: now.Add(time.Hour), PlatformRetries: ward.PlatformRetries})
	if err != nil || !slices.Equal(got, []string{ol.Task.ID}) {
		t.Fatalf("ExpireLeases(ExpiredBy) = %v, %v; want [%s]", got, err, ol.Task.ID)
	}
	if rec := e.get("p", ol.Task.ID); rec.Status != ward.StatusQueued || rec.PlatformTries != 1 || !rec.RunAt.Equal(now) {
		t.Fatalf("orphan after ExpiredBy = %s", mustJSON(t, rec))
	}
}

func testRequeueRunner(t *testing.T, e *env) {
	e.project("p")
	e.insert(e.task("p", "f"), e.task("p", "f"), e.task("p", "f"))
	a := e.lease("a", 2, 1<<20, t0)
	b := e.leaseOne("b", t0)
	got, err := e.s.RequeueRunner(e.ctx, &store.RequeueRunnerParams{RunnerID: "a", Now: at(time.Second)})
	slices.Sort(got)
	if err != nil || !slices.Equal(got, ids(a)) {
		t.Fatalf("RequeueRunner(a) = %v, %v; want %v", got, err, ids(a))
	}
	for _, l := range a {
		rec := e.get("p", l.Task.ID)
		want := l.Task
		want.Status = ward.StatusQueued
		want.Attempts = 0
		want.StartedAt = nil
		want.RunAt = at(time.Second)
		want.LeaseID, want.RunnerID, want.LeaseExpiresAt = "", "", time.Time{}
		sameRecord(t, "requeued record", rec, want)
	}
	if rec := e.get("p", b.Task.ID); rec.Status != ward.StatusRunning || rec.LeaseID != b.LeaseID {
		t.Fatalf("other runner's task = %s", mustJSON(t, rec))
	}
	errs := e.complete(succeed(a[0], at(2*time.Second)))
	wantCode(t, "completion after requeue", errs[0], ward.CodeStaleLease)
	l := e.leaseOne("c", at(2*time.Second))
	if l.Task.ID != a[0].Task.ID || l.Task.Attempts != 1 {
		t.Fatalf("re-lease after requeue = %s attempts %d; want %s attempts 1", l.Task.ID, l.Task.Attempts, a[0].Task.ID)
	}
	if got, err := e.s.RequeueRunner(e.ctx, &store.RequeueRunnerParams{RunnerID: "nobody", Now: t0}); err != nil || len(got) != 0 {
		t.Fatalf("RequeueRunner(unknown) = %v, %v", got, err)
	}
}

func testCancel(t *testing.T, e *env) {
	e.project("p")
	queued, running, done := e.task("p", "f"), e.task("p", "f"), e.task("p", "f")
	e.insert(done, running, queued)
	ld := e.leaseOne("r", t0)
	e.completeOK(succeed(ld, t0))
	lr := e.leaseOne("r", t0)

	cancel := func(id string, now time.Time) (store.TaskRecord, error) {
		return e.s.CancelTask(e.ctx, &store.CancelParams{Project: "p", ID: id, Now: now})
	}
	rec, err := cancel(queued.ID, at(time.Second))
	if err != nil {
		t.Fatalf("CancelTask(queued): %v", err)
	}
	sameRecord(t, "CancelTask result", rec, e.get("p", queued.ID))
	if rec.Status != ward.StatusCancelled || rec.Error == nil || rec.Error.Code != ward.CodeCancelled {
		t.Fatalf("cancelled queued task = %s", mustJSON(t, rec))
	}
	wantTimePtr(t, "FinishedAt", rec.FinishedAt, ptr(at(time.Second)))

	rec, err = cancel(running.ID, at(2*time.Second))
	if err != nil {
		t.Fatalf("CancelTask(running): %v", err)
	}
	if rec.Status != ward.StatusCancelled || rec.LeaseID != "" || rec.RunnerID != "" || rec.Error.Code != ward.CodeCancelled {
		t.Fatalf("cancelled running task = %s", mustJSON(t, rec))
	}
	errs := e.complete(succeed(lr, at(3*time.Second)))
	wantCode(t, "completion of a cancelled task", errs[0], ward.CodeStaleLease)
	if got := e.get("p", running.ID); got.Status != ward.StatusCancelled {
		t.Fatalf("late completion changed a cancelled task to %s", got.Status)
	}
	if n, _ := e.s.CountRunning(e.ctx, "p", "f"); n != 0 {
		t.Fatalf("CountRunning after cancel = %d", n)
	}

	for _, id := range []string{done.ID, queued.ID} {
		before := e.get("p", id)
		_, err = cancel(id, at(time.Hour))
		wantCode(t, "CancelTask(finished)", err, ward.CodeInvalidState)
		sameRecord(t, "record after a refused cancel", e.get("p", id), before)
	}
	_, err = cancel("t_nope", t0)
	wantCode(t, "CancelTask(missing)", err, ward.CodeNotFound)
	if ls := e.lease("r", 10, 1<<20, at(time.Hour)); len(ls) != 0 {
		t.Fatalf("leased cancelled tasks: %v", ids(ls))
	}
}

func testRetry(t *testing.T, e *env) {
	e.project("p")
	failed, queued := e.task("p", "f"), e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(time.Hour) })
	e.insert(failed, queued)
	l := e.leaseOne("r", t0)
	code := 2
	e.completeOK(store.Completion{TaskID: failed.ID, Project: "p", LeaseID: l.LeaseID, Status: ward.StatusFailed, ExitCode: &code,
		Error: &ward.TaskError{Code: ward.CodeExitStatus}, Usage: &ward.Usage{DurationMs: 1}, Result: []byte("r"), Log: []byte("l"), Now: at(time.Second)})

	retry := func(id string) (store.TaskRecord, error) {
		return e.s.RetryTask(e.ctx, &store.RetryParams{Project: "p", ID: id, Now: at(time.Minute)})
	}
	rec, err := retry(failed.ID)
	if err != nil {
		t.Fatalf("RetryTask(failed): %v", err)
	}
	want := l.Task
	want.Status = ward.StatusQueued
	want.Attempts = 0
	want.RunAt = at(time.Minute)
	want.StartedAt = nil
	want.LeaseID, want.RunnerID, want.LeaseExpiresAt = "", "", time.Time{}
	sameRecord(t, "RetryTask result", rec, want)
	sameRecord(t, "record after retry", e.get("p", failed.ID), want)
	for _, b := range []store.Body{store.BodyResult, store.BodyLog} {
		if got := e.body("p", failed.ID, b); len(got) != 0 {
			t.Fatalf("%s after retry = %q, want cleared", b, got)
		}
	}
	if got := e.body("p", failed.ID, store.BodyPayload); !bytes.Equal(got, failed.Payload) {
		t.Fatalf("payload after retry = %q", got)
	}
	l = e.leaseOne("r", at(time.Minute))
	if l.Task.ID != failed.ID || l.Task.Attempts != 1 {
		t.Fatalf("lease after retry = %s attempts %d", l.Task.ID, l.Task.Attempts)
	}
	_, err = retry(failed.ID)
	wantCode(t, "RetryTask(running)", err, ward.CodeInvalidState)
	_, err = retry(queued.ID)
	wantCode(t, "RetryTask(queued)", err, ward.CodeInvalidState)
	_, err = retry("t_nope")
	wantCode(t, "RetryTask(missing)", err, ward.CodeNotFound)

	// Succeeded and cancelled tasks can be retried too.
	e.completeOK(succeed(l, at(2*time.Minute)))
	if rec, err := retry(failed.ID); err != nil || rec.Status != ward.StatusQueued {
		t.Fatalf("RetryTask(succeeded) = %s, %v", rec.Status, err)
	}
	if _, err := e.s.CancelTask(e.ctx, &store.CancelParams{Project: "p", ID: queued.ID, Now: at(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if rec, err := retry(queued.ID); err != nil || rec.Status != ward.StatusQueued || rec.Error != nil || rec.FinishedAt != nil {
		t.Fatalf("RetryTask(cancelled) = %s, %v", mustJSON(t, rec), err)
	}
}

func testConcurrentLeasing(t *testing.T, e *env) {
	e.project("p")
	const n, workers = 300, 6
	var tasks []store.NewTask
	for range n {
		tasks = append(tasks, e.task("p", "f", func(n *store.NewTask) { n.MemoryMB = 1 }))
	}
	e.insert(tasks...)

	var mu sync.Mutex
	leased := map[string]int{}
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			runner := fmt.Sprintf("runner-%d", w)
			for {
				ls, err := e.s.LeaseTasks(e.ctx, &store.LeaseParams{RunnerID: runner, Max: 7, FreeMemoryMB: 1000, TTL: time.Minute, Now: t0})
				if err != nil {
					errc <- err
					return
				}
				if len(ls) == 0 {
					return
				}
				cs := make([]store.Completion, len(ls))
				mu.Lock()
				for i, l := range ls {
					leased[l.Task.ID]++
					cs[i] = succeed(l, t0)
				}
				mu.Unlock()
				errs, err := e.s.CompleteTasks(e.ctx, &store.CompleteParams{Completions: cs})
				if err != nil {
					errc <- err
					return
				}
				for _, err := range errs {
					if err != nil {
						errc <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("worker: %v", err)
	}
	if len(leased) != n {
		t.Fatalf("leased %d distinct tasks, want %d", len(leased), n)
	}
	for id, c := range leased {
		if c != 1 {
			t.Fatalf("task %s leased %d times", id, c)
		}
	}
	recs, err := e.s.ListTasks(e.ctx, &store.ListTasksParams{Project: "p", Status: ward.StatusSucceeded, Limit: ward.MaxPageSize})
	if err != nil || len(recs) != n {
		t.Fatalf("succeeded tasks = %d, %v; want %d", len(recs), err, n)
	}
}

// leaseConcurrently has four runners lease at once, five calls of two
// tasks each, and returns how many tasks they leased in all.
func (e *env) leaseConcurrently(t *testing.T) int {
	t.Helper()
	var wg sync.WaitGroup
	counts := make([]int, 4)
	errs := make([]error, 4)
	for w := range counts {
		wg.Go(func() {
			for range 5 {
				ls, err := e.s.LeaseTasks(e.ctx, &store.LeaseParams{RunnerID: fmt.Sprintf("r%d", w), Max: 2, FreeMemoryMB: 1 << 20, TTL: time.Minute, Now: t0})
				if err != nil {
					errs[w] = err
					return
				}
				counts[w] += len(ls)
			}
		})
	}
	wg.Wait()
	total := 0
	for w, c := range counts {
		if errs[w] != nil {
			t.Fatalf("runner %d: %v", w, errs[w])
		}
		total += c
	}
	return total
}

func testConcurrentMaxConcurrency(t *testing.T, e *env) {
	e.project("p")
	e.function("p", "f", func(s *ward.FunctionSpec) { s.Limits.MaxConcurrency = 3 })
	var tasks []store.NewTask
	for range 40 {
		tasks = append(tasks, e.task("p", "f"))
	}
	e.insert(tasks...)
	total := e.leaseConcurrently(t)
	if total != 3 {
		t.Fatalf("%d tasks leased concurrently with max_concurrency 3", total)
	}
}

func testCompleteTwiceInBatch(t *testing.T, e *env) {
	e.project("p")
	e.insert(e.task("p", "f"), e.task("p", "f"))
	ls := e.lease("r", 2, 1<<20, t0)
	a, b := ls[0], ls[1]
	forged := succeed(a, at(time.Second))
	forged.LeaseID = "forged"
	failA := succeed(a, at(time.Second))
	failA.Status = ward.StatusFailed
	// In order: a forged completion (stale), the real one (applies), the
	// real one again (stale: the task is no longer running); b applies once.
	errs := e.complete(forged, succeed(a, at(time.Second)), failA, succeed(b, at(time.Second)), succeed(b, at(2*time.Second)))
	for i, want := range []ward.Code{ward.CodeStaleLease, "", ward.CodeStaleLease, "", ward.CodeStaleLease} {
		if want == "" {
			if errs[i] != nil {
				t.Fatalf("completion %d: %v, want applied", i, errs[i])
			}
			continue
		}
		wantCode(t, fmt.Sprintf("completion %d", i), errs[i], want)
	}
	for _, id := range []string{a.Task.ID, b.Task.ID} {
		got := e.get("p", id)
		if got.Status != ward.StatusSucceeded {
			t.Fatalf("%s = %s, want succeeded", id, got.Status)
		}
		wantTimePtr(t, id+" FinishedAt", got.FinishedAt, ptr(at(time.Second)))
	}
}

// testLargeBatches runs batches bigger than any store is likely to handle in
// one statement.
func testLargeBatches(t *testing.T, e *env) {
	e.project("p")
	const n = 700
	tasks := make([]store.NewTask, n)
	for i := range tasks {
		tasks[i] = e.task("p", "f", func(nt *store.NewTask) {
			nt.MemoryMB = 1
			if i%7 == 0 {
				nt.IdempotencyKey = fmt.Sprintf("key-%d", i)
			}
		})
	}
	recs := e.insert(tasks...)
	for i, r := range recs {
		if r.ID != tasks[i].ID {
			t.Fatalf("insert result %d = %s, want %s", i, r.ID, tasks[i].ID)
		}
	}
	ls := e.lease("r", n+100, 1<<20, t0)
	if len(ls) != n {
		t.Fatalf("leased %d, want %d", len(ls), n)
	}
	refs := make([]store.LeaseRef, n)
	cs := make([]store.Completion, n)
	for i, l := range ls {
		if l.Task.ID != tasks[i].ID || !bytes.Equal(l.Payload, tasks[i].Payload) {
			t.Fatalf("lease %d = %s (payload %q), want %s in FIFO order", i, l.Task.ID, l.Payload, tasks[i].ID)
		}
		refs[i] = store.LeaseRef{TaskID: l.Task.ID, LeaseID: l.LeaseID}
		cs[i] = succeed(l, at(time.Second))
		cs[i].Result = []byte(l.Task.ID)
	}
	lost, err := e.s.Heartbeat(e.ctx, &store.HeartbeatParams{RunnerID: "r", Leases: refs, TTL: time.Hour, Now: at(time.Second)})
	if err != nil || len(lost) != 0 {
		t.Fatalf("Heartbeat of %d held leases lost %d, %v", n, len(lost), err)
	}
	e.completeOK(cs...)
	for _, i := range []int{0, 255, 256, 511, 512, n - 1} {
		if got := e.body("p", tasks[i].ID, store.BodyResult); string(got) != tasks[i].ID {
			t.Fatalf("result of task %d = %q", i, got)
		}
	}
	recsAfter, err := e.s.ListTasks(e.ctx, &store.ListTasksParams{Project: "p", Status: ward.StatusSucceeded, Limit: ward.MaxPageSize})
	if err != nil || len(recsAfter) != n {
		t.Fatalf("succeeded = %d, %v; want %d", len(recsAfter), err, n)
	}
}
