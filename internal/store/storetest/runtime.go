package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// runtimeTests cover the runtime of tasks: it is kept with each task, and a
// lease or a next-due probe naming runtimes sees only tasks of those.
var runtimeTests = []test{
	{"RuntimeRoundTrip", testRuntimeRoundTrip},
	{"LeaseRuntimes", testLeaseRuntimes},
	{"LeaseRuntimesFIFO", testLeaseRuntimesFIFO},
	{"LeaseRuntimesAdmission", testLeaseRuntimesAdmission},
	{"LeaseRuntimesArguments", testLeaseRuntimesArguments},
	{"NextRunAtRuntimes", testNextRunAtRuntimes},
}

// oci makes a task an oci one.
func oci(n *store.NewTask) { n.Runtime = ward.RuntimeOCI }

// leaseRT leases for runner with a one-minute TTL and a large memory
// budget, of the runtimes given (none = every runtime).
func (e *env) leaseRT(runner string, maxTasks int, now time.Time, runtimes ...ward.Runtime) []store.Lease {
	e.t.Helper()
	ls, err := e.s.LeaseTasks(e.ctx, &store.LeaseParams{RunnerID: runner, Max: maxTasks, FreeMemoryMB: 1 << 20,
		Runtimes: runtimes, TTL: time.Minute, Now: now})
	if err != nil {
		e.t.Fatalf("LeaseTasks(%s, %v): %v", runner, runtimes, err)
	}
	return ls
}

// testRuntimeRoundTrip checks that a task's runtime is kept and returned
// on every read path, and that "" is stored as wasm.
func testRuntimeRoundTrip(t *testing.T, e *env) {
	e.project("p")
	def := e.task("p", "f") // Runtime ""
	wasm := e.task("p", "f", func(n *store.NewTask) { n.Runtime = ward.RuntimeWasm })
	box := e.task("p", "f", oci, func(n *store.NewTask) { n.IdempotencyKey = "k" })
	other := e.task("p", "f", func(n *store.NewTask) { n.Runtime = "other" }) // a runtime this store never heard of
	want := map[string]ward.Runtime{def.ID: ward.RuntimeWasm, wasm.ID: ward.RuntimeWasm, box.ID: ward.RuntimeOCI, other.ID: "other"}
	check := func(what string, recs ...store.TaskRecord) {
		t.Helper()
		for _, r := range recs {
			if w, ok := want[r.ID]; !ok || r.Runtime != w {
				t.Fatalf("%s: task %s has runtime %q, want %q", what, r.ID, r.Runtime, w)
			}
		}
	}
	for _, r := range e.insertAt(t0, def, wasm, box, other) {
		check("InsertTasks", r.Task)
	}
	for id := range want {
		check("GetTask", e.get("p", id))
	}
	recs, err := e.s.ListTasks(e.ctx, &store.ListTasksParams{Project: "p"})
	if err != nil || len(recs) != len(want) {
		t.Fatalf("ListTasks = %d, %v; want %d", len(recs), err, len(want))
	}
	check("ListTasks", recs...)
	// The record of a repeated idempotency key is the first task's, runtime
	// included, whatever the repeat says.
	again := e.insertAt(at(time.Second), e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }))[0]
	if !again.Existing {
		t.Fatalf("repeated key not reported Existing")
	}
	check("InsertTasks(repeated key)", again.Task)
	ls := e.leaseRT("r", 10, t0)
	if len(ls) != len(want) {
		t.Fatalf("leased %d tasks, want %d", len(ls), len(want))
	}
	for _, l := range ls {
		check("LeaseTasks", l.Task)
	}
	e.completeOK(succeed(ls[0], at(time.Second)))
	rec, err := e.s.RetryTask(e.ctx, &store.RetryParams{Project: "p", ID: ls[0].Task.ID, Now: at(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	check("RetryTask", rec)
	rec, err = e.s.CancelTask(e.ctx, &store.CancelParams{Project: "p", ID: box.ID, Now: at(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	check("CancelTask", rec)
}

// testLeaseRuntimes checks that a lease takes only tasks of its runtimes,
// and that a task of another runtime, first in line, does not hide the
// tasks behind it.
func testLeaseRuntimes(t *testing.T, e *env) {
	e.project("p")
	first := e.task("p", "f", oci, func(n *store.NewTask) { n.Priority = 2 }) // first in line
	early := e.task("p", "f", oci, func(n *store.NewTask) { n.RunAt = at(-time.Hour) })
	w1 := e.task("p", "f")
	w2 := e.task("p", "f", func(n *store.NewTask) { n.Runtime = ward.RuntimeWasm; n.Priority = 1 })
	e.insert(first, early, w1, w2)

	// wasm only, one at a time: the oci tasks ahead are passed over.
	if got := ids(e.leaseRT("r", 1, t0, ward.RuntimeWasm)); !slices.Equal(got, []string{w2.ID}) {
		t.Fatalf("wasm lease of 1 = %v, want %v", got, w2.ID)
	}
	if got := ids(e.leaseRT("r", 10, t0, ward.RuntimeWasm)); !slices.Equal(got, []string{w1.ID}) {
		t.Fatalf("second wasm lease = %v, want %v", got, w1.ID)
	}
	if got := e.leaseRT("r", 10, t0, ward.RuntimeWasm); len(got) != 0 {
		t.Fatalf("wasm lease with only oci tasks left = %v, want none", ids(got))
	}
	if got := e.leaseRT("r", 10, t0, "other"); len(got) != 0 {
		t.Fatalf("lease of a runtime no task has = %v, want none", ids(got))
	}
	for _, id := range []string{first.ID, early.ID} {
		if got := e.get("p", id); got.Status != ward.StatusQueued || got.Attempts != 0 {
			t.Fatalf("oci task %s after wasm leases = %s, want queued, untouched", id, mustJSON(t, got))
		}
	}
	// An oci lease takes them, in lease order; a runtime named twice is
	// the same runtime.
	if got := ids(e.leaseRT("r", 10, t0, ward.RuntimeOCI, ward.RuntimeOCI)); !slices.Equal(got, []string{first.ID, early.ID}) {
		t.Fatalf("oci lease = %v, want %v", got, []string{first.ID, early.ID})
	}

	// No runtimes leases every runtime, and so does naming them all.
	a, b := e.task("p", "f", oci, func(n *store.NewTask) { n.Priority = 1 }), e.task("p", "f")
	c, d := e.task("p", "f", oci, func(n *store.NewTask) { n.Priority = 1 }), e.task("p", "f")
	e.insert(a, b, c, d)
	if got := ids(e.leaseRT("r", 2, t0)); !slices.Equal(got, []string{a.ID, c.ID}) {
		t.Fatalf("lease of every runtime = %v, want %v", got, []string{a.ID, c.ID})
	}
	if got := ids(e.leaseRT("r", 10, t0, ward.RuntimeWasm, "other", ward.RuntimeOCI)); !slices.Equal(got, []string{b.ID, d.ID}) {
		t.Fatalf("lease of three runtimes = %v, want %v", got, []string{b.ID, d.ID})
	}
}

// testLeaseRuntimesFIFO checks a runtime's tasks are leased in lease order
// when they are spread among another runtime's, across several scans.
func testLeaseRuntimesFIFO(t *testing.T, e *env) {
	e.project("p")
	var wasm, box []string
	var tasks []store.NewTask
	for i := range 40 {
		nt := e.task("p", "f")
		if i%3 != 0 {
			oci(&nt)
			box = append(box, nt.ID)
		} else {
			wasm = append(wasm, nt.ID)
		}
		tasks = append(tasks, nt)
	}
	e.insert(tasks...)
	var got []string
	for {
		ls := e.leaseRT("r", 3, t0, ward.RuntimeWasm)
		if len(ls) == 0 {
			break
		}
		got = append(got, ids(ls)...)
	}
	if !slices.Equal(got, wasm) {
		t.Fatalf("wasm leases of 3 = %v, want %v", got, wasm)
	}
	if got := ids(e.leaseRT("r", 100, t0, ward.RuntimeOCI)); !slices.Equal(got, box) {
		t.Fatalf("oci lease = %v, want %v", got, box)
	}
}

// testLeaseRuntimesAdmission checks the runtime filter together with
// memory admission and a function at its max_concurrency.
func testLeaseRuntimesAdmission(t *testing.T, e *env) {
	e.project("p")
	e.function("p", "lim", func(s *ward.FunctionSpec) { s.Limits.MaxConcurrency = 1 })
	running := e.task("p", "lim", oci)
	e.insert(running)
	e.leaseOne("hog", t0) // lim is at its limit from now on
	var blocked []store.NewTask
	for range 3 {
		blocked = append(blocked, e.task("p", "lim", oci), e.task("p", "lim"))
	}
	big := e.task("p", "f", func(n *store.NewTask) { n.MemoryMB = 512 })
	bigOCI := e.task("p", "f", oci, func(n *store.NewTask) { n.MemoryMB = 64 })
	small := e.task("p", "f", func(n *store.NewTask) { n.MemoryMB = 64 })
	e.insert(append(blocked, big, bigOCI, small)...)

	ls, err := e.s.LeaseTasks(e.ctx, &store.LeaseParams{RunnerID: "r", Max: 10, FreeMemoryMB: 128,
		Runtimes: []ward.Runtime{ward.RuntimeWasm}, TTL: time.Minute, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(ls); !slices.Equal(got, []string{small.ID}) {
		t.Fatalf("wasm lease with 128 MB free past a blocked function = %v, want %v", got, small.ID)
	}
	ls, err = e.s.LeaseTasks(e.ctx, &store.LeaseParams{RunnerID: "r", Max: 10, FreeMemoryMB: 1024,
		Runtimes: []ward.Runtime{ward.RuntimeOCI}, TTL: time.Minute, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(ls); !slices.Equal(got, []string{bigOCI.ID}) {
		t.Fatalf("oci lease past a blocked function = %v, want %v", got, bigOCI.ID)
	}
}

// testLeaseRuntimesArguments checks the refused runtime lists.
func testLeaseRuntimesArguments(t *testing.T, e *env) {
	e.project("p")
	nt := e.task("p", "f")
	e.insert(nt)
	many := make([]ward.Runtime, store.MaxLeaseRuntimes+1)
	for i := range many {
		many[i] = ward.Runtime(fmt.Sprintf("rt%d", i))
	}
	for _, tc := range []struct {
		name     string
		runtimes []ward.Runtime
	}{
		{"empty runtime", []ward.Runtime{ward.RuntimeWasm, ""}},
		{"too many runtimes", many},
	} {
		_, err := e.s.LeaseTasks(e.ctx, &store.LeaseParams{RunnerID: "r", Max: 5, FreeMemoryMB: 1000, Runtimes: tc.runtimes,
			TTL: time.Minute, Now: t0})
		wantCode(t, "LeaseTasks("+tc.name+")", err, ward.CodeInvalidArgument)
		_, _, err = e.s.NextRunAt(e.ctx, tc.runtimes...)
		wantCode(t, "NextRunAt("+tc.name+")", err, ward.CodeInvalidArgument)
	}
	if got := e.get("p", nt.ID); got.Status != ward.StatusQueued || got.Attempts != 0 {
		t.Fatalf("task after refused leases = %s", mustJSON(t, got))
	}
	// As many as allowed, repeats not counted, is fine.
	most := slices.Concat(many[:store.MaxLeaseRuntimes-1], []ward.Runtime{ward.RuntimeWasm, ward.RuntimeWasm, many[0]})
	if got := ids(e.leaseRT("r", 5, t0, most...)); !slices.Equal(got, []string{nt.ID}) {
		t.Fatalf("lease of %d runtimes = %v, want %v", store.MaxLeaseRuntimes, got, nt.ID)
	}
}

// testNextRunAtRuntimes checks that the next-due probe sees only tasks of
// the runtimes it names.
func testNextRunAtRuntimes(t *testing.T, e *env) {
	e.project("p")
	next := func(runtimes ...ward.Runtime) (time.Time, bool) {
		t.Helper()
		at, ok, err := e.s.NextRunAt(e.ctx, runtimes...)
		if err != nil {
			t.Fatalf("NextRunAt(%v): %v", runtimes, err)
		}
		return at, ok
	}
	if _, ok := next(ward.RuntimeWasm); ok {
		t.Fatalf("NextRunAt(wasm) on an empty store: ok")
	}
	e.insert(
		e.task("p", "f", oci, func(n *store.NewTask) { n.RunAt = at(-time.Hour); n.Priority = 2 }), // due, oci
		e.task("p", "f", oci, func(n *store.NewTask) { n.RunAt = at(-time.Minute) }),               // due, oci
		e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(time.Hour); n.Priority = 1 }),       // later, wasm
		e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(time.Minute) }),                     // sooner, wasm
	)
	for _, tc := range []struct {
		runtimes []ward.Runtime
		want     time.Time
		ok       bool
	}{
		{nil, at(-time.Hour), true},
		{[]ward.Runtime{ward.RuntimeWasm}, at(time.Minute), true},
		{[]ward.Runtime{ward.RuntimeOCI}, at(-time.Hour), true},
		{[]ward.Runtime{ward.RuntimeWasm, ward.RuntimeOCI}, at(-time.Hour), true},
		{[]ward.Runtime{"other", ward.RuntimeWasm, "third"}, at(time.Minute), true},
		{[]ward.Runtime{"other"}, time.Time{}, false},
	} {
		got, ok := next(tc.runtimes...)
		if ok != tc.ok {
			t.Fatalf("NextRunAt(%v) ok = %t, want %t", tc.runtimes, ok, tc.ok)
		}
		if ok {
			wantTime(t, fmt.Sprintf("NextRunAt(%v)", tc.runtimes), got, tc.want)
		}
	}
	// Leasing the oci tasks leaves wasm's next for every runtime.
	if ls := e.leaseRT("r", 10, t0, ward.RuntimeOCI); len(ls) != 2 {
		t.Fatalf("oci lease = %v, want both oci tasks", ids(ls))
	}
	if _, ok := next(ward.RuntimeOCI); ok {
		t.Fatalf("NextRunAt(oci) with no oci task queued: ok")
	}
	got, _ := next()
	wantTime(t, "NextRunAt() after leasing the oci tasks", got, at(time.Minute))
}
