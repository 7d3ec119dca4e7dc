package queue

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

// addFunction deploys function name of project p with spec and the test
// code, straight into the store (so that a spec the API would refuse for
// now, such as an oci one, can be used).
func (b *bundle) addFunction(t *testing.T, name string, spec ward.FunctionSpec) {
	t.Helper()
	ctx := context.Background()
	mustDo(t, func() error {
		_, err := b.st.PutFunction(ctx, &store.PutFunctionParams{Project: "p", Name: name, Spec: spec.WithDefaults(), Now: b.clock.now()})
		return err
	})
	mustDo(t, func() error {
		_, err := b.st.PutCode(ctx, &store.PutCodeParams{Project: "p", Function: name, Digest: testDigest(), Code: testCode, Now: b.clock.now()})
		return err
	})
}

// leaseRT leases for runner r1, waiting up to wait, of runtimes.
func (b *bundle) leaseRT(t *testing.T, wait time.Duration, runtimes ...ward.Runtime) []runner.Job {
	t.Helper()
	jobs, err := b.q.Lease(context.Background(), &runner.LeaseRequest{RunnerID: "r1", Max: 10, FreeMemoryMB: 1 << 20,
		Wait: wait, Runtimes: runtimes})
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// TestSubmitRuntime checks that every kind of submission gives its task
// its function's runtime.
func TestSubmitRuntime(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{}) // fn: no runtime, so wasm
	b.addFunction(t, "box", ward.FunctionSpec{Runtime: ward.RuntimeOCI})
	b.addFunction(t, "mod", ward.FunctionSpec{Runtime: ward.RuntimeWasm})
	ctx := context.Background()
	want := map[string]ward.Runtime{}
	check := func(what string, res []store.InsertResult, fns ...string) {
		t.Helper()
		if len(res) != len(fns) {
			t.Fatalf("%s: %d results for %d tasks", what, len(res), len(fns))
		}
		for i, r := range res {
			w := ward.RuntimeWasm
			if fns[i] == "box" {
				w = ward.RuntimeOCI
			}
			if r.Task.Runtime != w {
				t.Fatalf("%s: task %d (%s) has runtime %q, want %q", what, i, fns[i], r.Task.Runtime, w)
			}
			want[r.Task.ID] = w
		}
	}
	check("single", b.submit(t, ward.SubmitRequest{Function: "box"}), "box")
	check("single", b.submit(t, ward.SubmitRequest{Function: "fn"}), "fn")
	res, err := b.q.Submit(ctx, &SubmitParams{Project: "p", SubmittedBy: "tok", Batch: true, Requests: []ward.SubmitRequest{
		{Function: "fn"}, {Function: "box"}, {Function: "mod"}, {Function: "box"}}})
	if err != nil {
		t.Fatal(err)
	}
	check("batch", res, "fn", "box", "mod", "box")
	payload := json.RawMessage(`{"n":1}`)
	res, err = b.q.Submit(ctx, &SubmitParams{Project: "p", SubmittedBy: "tok", Batch: true, List: "functions", ParentID: "t_parent",
		Requests: []ward.SubmitRequest{{Function: "box", Payload: payload}, {Function: "mod", Payload: payload}}})
	if err != nil {
		t.Fatal(err)
	}
	check("fan-out", res, "box", "mod")
	for id, w := range want {
		if rec, err := b.q.Get(ctx, "p", id); err != nil || rec.Runtime != w {
			t.Fatalf("stored task %s: runtime %q, %v; want %q", id, rec.Runtime, err, w)
		}
	}

	// Invoke: only an oci lease takes the task of an oci function.
	for _, l := range b.leaseRT(t, 0) { // clear the queue
		b.finish(t, l)
	}
	type answer struct {
		rec store.TaskRecord
		err error
	}
	done := make(chan answer, 1)
	go func() {
		rec, _, err := b.q.Invoke(ctx, &InvokeParams{Project: "p", Function: "box", SubmittedBy: "tok", Payload: []byte(`{}`)})
		done <- answer{rec, err}
	}()
	jobs := b.leaseRT(t, time.Minute, ward.RuntimeOCI) // woken by the invoke's submission
	if len(jobs) != 1 || jobs[0].Function != "box" {
		t.Fatalf("oci lease during an invoke = %+v, want the invoked task", jobs)
	}
	if rec, err := b.q.Get(ctx, "p", jobs[0].TaskID); err != nil || rec.Runtime != ward.RuntimeOCI {
		t.Fatalf("invoked task: runtime %q, %v; want oci", rec.Runtime, err)
	}
	b.finish(t, jobs[0])
	if a := <-done; a.err != nil || a.rec.Status != ward.StatusSucceeded || a.rec.Runtime != ward.RuntimeOCI {
		t.Fatalf("invoke = %s, runtime %q, %v", a.rec.Status, a.rec.Runtime, a.err)
	}
}

// finish completes a job successfully.
func (b *bundle) finish(t *testing.T, j runner.Job) {
	t.Helper()
	errs, err := b.q.Complete(context.Background(), []runner.Result{{TaskID: j.TaskID, LeaseID: j.LeaseID, Project: j.Project, Retry: j.Retry}})
	if err != nil || errs[0] != nil {
		t.Fatalf("complete %s: %v, %v", j.TaskID, errs, err)
	}
}

// TestLeaseRuntimes checks that a lease takes only tasks of its runtimes,
// and that a due task of another runtime neither makes a runner's lease
// calls scan the store again and again (the idle gate of its runtimes
// closes) nor closes the gate of the runners that can take it.
func TestLeaseRuntimes(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	b.addFunction(t, "box", ward.FunctionSpec{Runtime: ward.RuntimeOCI})
	cs := &countingStore{Store: b.st}
	b.q = New(Options{Store: cs, Now: b.clock.now, LeaseTTL: 10 * time.Second})
	want := func(step string, got []runner.Job, jobs, scans, probes int) {
		t.Helper()
		if len(got) != jobs || int(cs.leases.Load()) != scans || int(cs.probes.Load()) != probes {
			t.Fatalf("%s: %d jobs after %d scans and %d probes; want %d after %d and %d",
				step, len(got), cs.leases.Load(), cs.probes.Load(), jobs, scans, probes)
		}
	}
	box := b.submit(t, ward.SubmitRequest{Function: "box"})[0].Task

	want("wasm lease, an oci task due", b.leaseRT(t, 0, ward.RuntimeWasm), 0, 1, 1)
	want("wasm lease again", b.leaseRT(t, 0, ward.RuntimeWasm), 0, 1, 1)
	// A long poll waits it out without touching the store.
	want("wasm long poll", b.leaseRT(t, 300*time.Millisecond, ward.RuntimeWasm), 0, 1, 1)
	if rec, err := b.q.Get(context.Background(), "p", box.ID); err != nil || rec.Status != ward.StatusQueued {
		t.Fatalf("oci task after wasm leases: %s, %v", rec.Status, err)
	}
	// The oci runners' gate is their own: nothing was broadcast, and still
	// an oci lease scans and takes the task.
	got := b.leaseRT(t, 0, ward.RuntimeOCI, ward.RuntimeWasm)
	want("oci and wasm lease", got, 1, 2, 2)
	if got[0].TaskID != box.ID {
		t.Fatalf("oci lease took %s, want %s", got[0].TaskID, box.ID)
	}
	// Completing it wakes nobody who could find work: no scan follows.
	b.finish(t, got[0])
	want("wasm lease after the completion", b.leaseRT(t, 0, ward.RuntimeWasm), 0, 2, 2)
	// A submission opens every gate; a lease of every runtime takes both.
	b.submit(t, ward.SubmitRequest{Function: "box"}, ward.SubmitRequest{Function: "fn"})
	want("lease of every runtime", b.leaseRT(t, 0), 2, 3, 3)
	// Repeats and order do not make another set.
	b.submit(t, ward.SubmitRequest{Function: "box"})
	want("wasm lease, another oci task due", b.leaseRT(t, 0, ward.RuntimeWasm, ward.RuntimeWasm), 0, 4, 4)
	want("wasm lease, named once", b.leaseRT(t, 0, ward.RuntimeWasm), 0, 4, 4)
	// A poll interval later the wasm gate looks again.
	b.clock.add(maxIdle)
	want("wasm lease a poll interval later", b.leaseRT(t, 0, ward.RuntimeWasm), 0, 5, 5)
}

// TestLeaseRuntimesArguments checks that a bad runtimes list is refused
// before anything is leased.
func TestLeaseRuntimesArguments(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	b.submit(t, ward.SubmitRequest{Function: "fn"})
	many := make([]ward.Runtime, store.MaxLeaseRuntimes+1)
	for i := range many {
		many[i] = ward.Runtime(string(rune('a' + i)))
	}
	for _, rts := range [][]ward.Runtime{{""}, {ward.RuntimeWasm, ""}, many} {
		_, err := b.q.Lease(context.Background(), &runner.LeaseRequest{RunnerID: "r1", Max: 10, FreeMemoryMB: 1 << 20, Runtimes: rts})
		if ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Fatalf("Lease(runtimes %q) = %v, want invalid_argument", rts, err)
		}
	}
	if jobs := b.leaseRT(t, 0, ward.RuntimeWasm); len(jobs) != 1 {
		t.Fatalf("wasm lease after refused ones = %d jobs, want 1", len(jobs))
	}
}
