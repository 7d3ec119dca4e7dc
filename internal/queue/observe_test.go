package queue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

// recorder is an Observer that keeps what it is told of finished tasks.
type recorder struct {
	mu       sync.Mutex
	finished []string
}

func (r *recorder) Submitted(string, string, int)      {}
func (r *recorder) Rejected(string, string, ward.Code) {}
func (r *recorder) Finished(project, function string, status ward.Status, code ward.Code, wait, run time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = append(r.finished, fmt.Sprintf("%s/%s %s %q wait=%v run=%v", project, function, status, code, wait, run))
}

// take returns and clears what was told, sorted.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.finished
	r.finished = nil
	slices.Sort(out)
	return out
}

func wantFinished(t *testing.T, what string, r *recorder, want ...string) {
	t.Helper()
	if got := r.take(); !slices.Equal(got, want) {
		t.Fatalf("%s: finished\n\t%q\nwant\n\t%q", what, got, want)
	}
}

// observed returns the bundle's store under a queue that tells rec.
func (b *bundle) observed(rec *recorder) *Service {
	return New(Options{Store: b.st, Now: b.clock.now, LeaseTTL: 10 * time.Second, Observer: rec})
}

func (b *bundle) complete(t *testing.T, q *Service, results ...runner.Result) {
	t.Helper()
	errs, err := q.Complete(context.Background(), results)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("result %d: %v", i, e)
		}
	}
}

func result(j runner.Job, code ward.Code) runner.Result {
	return runner.Result{TaskID: j.TaskID, LeaseID: j.LeaseID, Project: j.Project, Retry: j.Retry, Code: code}
}

// TestObserveFinished: each task that ends is told once, with its function,
// status, code, the wait from due to start and the run; a retry is not an
// end.
func TestObserveFinished(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{Retries: ward.Retries{MaxAttempts: 2, BackoffS: 1}})
	rec := &recorder{}
	b.q = b.observed(rec)
	b.submit(t, ward.SubmitRequest{Function: "fn"}, ward.SubmitRequest{Function: "fn", MaxAttempts: 1},
		ward.SubmitRequest{Function: "fn"})
	b.clock.add(3 * time.Second)
	jobs := b.lease(t, 10)
	if len(jobs) != 3 {
		t.Fatalf("leased %d", len(jobs))
	}
	b.clock.add(2 * time.Second)
	b.complete(t, b.q, result(jobs[0], ""), result(jobs[1], ward.CodeExitStatus), result(jobs[2], ward.CodeTrap))
	wantFinished(t, "first runs", rec,
		`p/fn failed "exit_status" wait=3s run=2s`,
		`p/fn succeeded "" wait=3s run=2s`)

	// The retry is due a second after its failure; it waits 4s more.
	b.clock.add(5 * time.Second)
	jobs = b.lease(t, 10)
	if len(jobs) != 1 {
		t.Fatalf("leased %d retries", len(jobs))
	}
	b.clock.add(time.Second)
	b.complete(t, b.q, result(jobs[0], ward.CodeTrap))
	wantFinished(t, "the retry", rec, `p/fn failed "trap" wait=4s run=1s`)
	if n := b.q.runs.size(); n != 0 {
		t.Errorf("%d runs kept after every task ended", n)
	}
}

// TestObserveOtherServer: a task leased through one server and completed
// through another is told by the one completing it, from the store.
func TestObserveOtherServer(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	recA, recB := &recorder{}, &recorder{}
	a, other := b.observed(recA), b.observed(recB)
	b.q = a
	b.submit(t, ward.SubmitRequest{Function: "fn"})
	b.clock.add(2 * time.Second)
	jobs := b.lease(t, 1)
	b.clock.add(7 * time.Second)
	b.complete(t, other, result(jobs[0], ""))
	wantFinished(t, "completing server", recB, `p/fn succeeded "" wait=2s run=7s`)
	wantFinished(t, "leasing server", recA)
}

// TestObserveLeaseExpired: a lease that expires is a platform retry until
// those are used up; then the task fails with lease_expired, told once.
func TestObserveLeaseExpired(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	rec := &recorder{}
	b.q = b.observed(rec)
	b.submit(t, ward.SubmitRequest{Function: "fn"})
	ctx := context.Background()
	for i := 0; i <= ward.PlatformRetries; i++ {
		if jobs := b.lease(t, 1); len(jobs) != 1 {
			t.Fatalf("lease %d: %d jobs", i, len(jobs))
		}
		b.clock.add(11 * time.Second)
		if err := b.q.Reap(ctx); err != nil {
			t.Fatal(err)
		}
		if i < ward.PlatformRetries {
			wantFinished(t, fmt.Sprintf("expiry %d", i), rec)
		}
	}
	wantFinished(t, "last expiry", rec, `p/fn failed "lease_expired" wait=0s run=11s`)
	if n := b.q.runs.size(); n != 0 {
		t.Errorf("%d runs kept", n)
	}
}

// TestObserveCancelled: a cancelled task is told with the time it waited,
// and, if it ran, the time it ran; its flight is dropped.
func TestObserveCancelled(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	rec := &recorder{}
	b.q = b.observed(rec)
	res := b.submit(t, ward.SubmitRequest{Function: "fn"}, ward.SubmitRequest{Function: "fn"})
	ctx := context.Background()
	b.clock.add(time.Second)
	jobs := b.lease(t, 1)
	b.clock.add(4 * time.Second)
	for _, r := range res {
		tr, err := b.st.CancelTask(ctx, &store.CancelParams{Project: "p", ID: r.Task.ID, Now: b.clock.now()})
		if err != nil {
			t.Fatal(err)
		}
		b.q.cancelled(&tr)
	}
	wantFinished(t, "cancelled", rec,
		`p/fn cancelled "cancelled" wait=1s run=4s`, // ran
		`p/fn cancelled "cancelled" wait=5s run=0s`) // never started
	if n := b.q.runs.size(); n != 0 {
		t.Errorf("%d runs kept", n)
	}
	// The runner's late result is stale and tells nothing.
	if errs, err := b.q.Complete(ctx, []runner.Result{result(jobs[0], "")}); err != nil || errs[0] == nil {
		t.Fatalf("late result: %v %v", errs, err)
	}
	wantFinished(t, "late result", rec)
}

// TestObserveHeartbeatAndRelease: a lease the heartbeat finds lost, or the
// runner gives back, leaves no flight; a flight not seen for two lease TTLs
// is forgotten, and its task's end is then read from the store.
func TestObserveHeartbeatAndRelease(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	rec := &recorder{}
	b.q = b.observed(rec)
	ctx := context.Background()
	res := b.submit(t, ward.SubmitRequest{Function: "fn"}, ward.SubmitRequest{Function: "fn"}, ward.SubmitRequest{Function: "fn"})
	jobs := b.lease(t, 3)
	if len(jobs) != 3 || b.q.runs.size() != 3 {
		t.Fatalf("leased %d, %d runs", len(jobs), b.q.runs.size())
	}
	if _, err := b.st.CancelTask(ctx, &store.CancelParams{Project: "p", ID: res[0].Task.ID, Now: b.clock.now()}); err != nil {
		t.Fatal(err)
	}
	refs := make([]runner.LeaseRef, len(jobs))
	for i, j := range jobs {
		refs[i] = runner.LeaseRef{TaskID: j.TaskID, LeaseID: j.LeaseID}
	}
	b.clock.add(time.Second)
	reply, err := b.q.Heartbeat(ctx, "r1", refs)
	if err != nil || len(reply.Lost) != 1 {
		t.Fatalf("heartbeat: %+v %v", reply, err)
	}
	if n := b.q.runs.size(); n != 2 {
		t.Fatalf("%d runs after a lost lease, want 2", n)
	}
	// Heartbeats through another server keep the leases alive but leave
	// this server's flights unseen: past two TTLs they are forgotten.
	other := b.observed(&recorder{})
	for range 3 {
		b.clock.add(9 * time.Second)
		if _, err := other.Heartbeat(ctx, "r1", refs[1:]); err != nil {
			t.Fatal(err)
		}
		if err := b.q.Reap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.q.runs.size(); n != 0 {
		t.Fatalf("%d runs not forgotten", n)
	}
	b.complete(t, b.q, result(jobs[1], ""))
	wantFinished(t, "forgotten flight", rec, `p/fn succeeded "" wait=0s run=28s`)

	if err := b.q.Release(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	wantFinished(t, "release", rec)
}

func TestRunsSweep(t *testing.T) {
	t.Parallel()
	var r runs
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lease := func(id, leaseID string) *store.Lease {
		return &store.Lease{Task: store.TaskRecord{Task: ward.Task{ID: id}}, LeaseID: leaseID}
	}
	r.open(lease("a", "l1"), t0)
	r.open(lease("b", "l2"), t0.Add(time.Second))
	r.touch([]runner.LeaseRef{{TaskID: "a", LeaseID: "other"}}, t0.Add(time.Hour)) // not a's lease
	r.sweep(t0.Add(time.Second))
	if run := r.take("a", ""); run != nil {
		t.Error("a, unseen since before the cut, was kept")
	}
	if run := r.take("b", "l1"); run != nil {
		t.Error("b taken under another lease")
	}
	if run := r.take("b", "l2"); run == nil || run.leaseID != "l2" {
		t.Error("b lost")
	}
}

// size is the number of runs kept.
func (r *runs) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}
