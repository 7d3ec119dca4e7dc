package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// taskTests cover inserting, reading and listing tasks.
var taskTests = []test{
	{"InsertAndGet", testInsertAndGet},
	{"InsertErrors", testInsertErrors},
	{"Idempotency", testIdempotency},
	{"IdempotencyTTL", testIdempotencyTTL},
	{"ListOrderAndPaging", testListPaging},
	{"ListFilters", testListFilters},
	{"ListLimits", testListLimits},
	{"ListErrors", testListErrors},
	{"Bodies", testBodies},
	{"CrossProjectIsolation", testCrossProject},
	{"NextRunAt", testNextRunAt},
	{"Sealed", testSealed},
}

func testInsertAndGet(t *testing.T, e *env) {
	e.project("p")
	nt := e.task("p", "f", func(n *store.NewTask) {
		n.Priority = 2
		n.RunAt = at(time.Minute)
		n.Labels = map[string]string{"env": "test", "team": "a"}
		n.ParentID = "t_parent"
		n.IdempotencyKey = "key-1"
		n.MemoryMB = 128
		n.BackoffS = 9
		n.TimeoutS = 12
		n.MaxAttempts = 5
	})
	plain := e.task("p", "g", func(n *store.NewTask) { n.Payload = nil })
	res := e.insertAt(t0, nt, plain)
	want := store.TaskRecord{
		Task: ward.Task{
			ID: nt.ID, Project: "p", Function: "f", CodeDigest: nt.CodeDigest, Status: ward.StatusQueued,
			Priority: 2, MaxAttempts: 5, TimeoutS: 12, CreatedAt: t0, RunAt: at(time.Minute),
			Labels: map[string]string{"env": "test", "team": "a"}, ParentID: "t_parent", PayloadSize: len(nt.Payload),
		},
		Runtime: ward.RuntimeWasm, SubmittedBy: "tok_1", MemoryMB: 128, BackoffS: 9,
	}
	if res[0].Existing || res[1].Existing {
		t.Fatalf("new tasks reported Existing")
	}
	sameRecord(t, "InsertTasks result", res[0].Task, want)
	sameRecord(t, "GetTask", e.get("p", nt.ID), want)
	wantTime(t, "GetTask.CreatedAt", e.get("p", nt.ID).CreatedAt, t0)

	got := e.get("p", plain.ID)
	sameRecord(t, "GetTask(no payload, no labels)", got, res[1].Task)
	if got.PayloadSize != 0 || got.Labels != nil || got.Error != nil || got.StartedAt != nil || got.Usage != nil || got.ExitCode != nil {
		t.Fatalf("plain task = %s, want zero optional fields", mustJSON(t, got))
	}
	if b := e.body("p", nt.ID, store.BodyPayload); !bytes.Equal(b, nt.Payload) {
		t.Fatalf("payload = %q, want %q", b, nt.Payload)
	}

	_, err := e.s.GetTask(e.ctx, "p", "t_missing")
	wantCode(t, "GetTask(missing)", err, ward.CodeNotFound)
	// The caller's labels map is not retained.
	nt.Labels["env"] = "changed"
	if e.get("p", nt.ID).Labels["env"] != "test" {
		t.Fatalf("stored labels changed with the caller's map")
	}
}

func testInsertErrors(t *testing.T, e *env) {
	e.project("p")
	ok := e.task("p", "f")
	_, err := e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: []store.NewTask{ok, e.task("nope", "f")}, Now: t0})
	wantCode(t, "InsertTasks(missing project)", err, ward.CodeNotFound)
	_, err = e.s.GetTask(e.ctx, "p", ok.ID)
	wantCode(t, "GetTask(task of a failed batch)", err, ward.CodeNotFound)

	for _, prio := range []int{ward.MinPriority - 1, ward.MaxPriority + 1} {
		_, err = e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: []store.NewTask{e.task("p", "f", func(n *store.NewTask) { n.Priority = prio })}, Now: t0})
		wantCode(t, fmt.Sprintf("InsertTasks(priority %d)", prio), err, ward.CodeInvalidArgument)
	}

	e.insert(ok)
	dup := e.task("p", "f", func(n *store.NewTask) { n.ID = ok.ID; n.Function = "other" })
	next := e.task("p", "f")
	_, err = e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: []store.NewTask{next, dup}, Now: at(time.Second)})
	wantCode(t, "InsertTasks(duplicate ID)", err, ward.CodeAlreadyExists)
	if !strings.Contains(err.Error(), ok.ID) {
		t.Fatalf("InsertTasks(duplicate ID) = %v; want the ID named", err)
	}
	if got := e.get("p", ok.ID); got.Function != "f" {
		t.Fatalf("duplicate insert changed the task: %s", mustJSON(t, got))
	}
	_, err = e.s.GetTask(e.ctx, "p", next.ID)
	wantCode(t, "GetTask(task of a failed batch)", err, ward.CodeNotFound)

	// The same new ID twice in one batch.
	twin := e.task("p", "f")
	_, err = e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: []store.NewTask{twin, twin}, Now: at(time.Second)})
	wantCode(t, "InsertTasks(ID twice in the batch)", err, ward.CodeAlreadyExists)
	_, err = e.s.GetTask(e.ctx, "p", twin.ID)
	wantCode(t, "GetTask(twin of a failed batch)", err, ward.CodeNotFound)
	_, err = e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: []store.NewTask{e.task("p", "f", func(n *store.NewTask) { n.ID = "" })}, Now: t0})
	wantCode(t, "InsertTasks(no ID)", err, ward.CodeInvalidArgument)
	if got := e.listIDs(&store.ListTasksParams{Project: "p"}); !slices.Equal(got, []string{ok.ID}) {
		t.Fatalf("tasks after failed inserts = %v, want only %s", got, ok.ID)
	}
}

func testIdempotency(t *testing.T, e *env) {
	e.project("p", "q")
	first := e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" })
	r1 := e.insertAt(t0, first)[0]
	if r1.Existing {
		t.Fatal("first task with a key reported Existing")
	}

	// The same key later: the first task, not inserted.
	again := e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k"; n.Priority = 2 })
	r2 := e.insertAt(at(time.Hour), again)[0]
	if !r2.Existing {
		t.Fatal("repeated key: Existing = false")
	}
	sameRecord(t, "repeated key result", r2.Task, e.get("p", first.ID))
	_, err := e.s.GetTask(e.ctx, "p", again.ID)
	wantCode(t, "GetTask(task with a repeated key)", err, ward.CodeNotFound)

	// The stored record is returned as it is now, e.g. running.
	l := e.leaseOne("r", at(time.Hour))
	r3 := e.insertAt(at(2*time.Hour), e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }))[0]
	if !r3.Existing || r3.Task.ID != first.ID || r3.Task.Status != ward.StatusRunning || l.Task.ID != first.ID {
		t.Fatalf("repeated key while running = %s, want the running first task", mustJSON(t, r3))
	}

	// Keys are per project; a batch repeating a key returns the batch's first.
	a := e.task("q", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" })
	b := e.task("q", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" })
	c := e.task("q", "f", func(n *store.NewTask) { n.IdempotencyKey = "other" })
	d := e.task("q", "f")
	res := e.insertAt(at(time.Hour), a, b, c, d)
	if res[0].Existing || res[2].Existing || res[3].Existing || !res[1].Existing {
		t.Fatalf("batch Existing = %v %v %v %v, want false true false false", res[0].Existing, res[1].Existing, res[2].Existing, res[3].Existing)
	}
	sameRecord(t, "in-batch duplicate", res[1].Task, res[0].Task)
	if res[0].Task.ID != a.ID || res[2].Task.ID != c.ID || res[3].Task.ID != d.ID {
		t.Fatalf("batch IDs = %s %s %s", res[0].Task.ID, res[2].Task.ID, res[3].Task.ID)
	}
	_, err = e.s.GetTask(e.ctx, "q", b.ID)
	wantCode(t, "GetTask(in-batch duplicate)", err, ward.CodeNotFound)
	// An existing key repeated twice in one batch.
	res = e.insertAt(at(3*time.Hour),
		e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }),
		e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }))
	if !res[0].Existing || !res[1].Existing || res[0].Task.ID != first.ID || res[1].Task.ID != first.ID {
		t.Fatalf("existing key twice in a batch = %s", mustJSON(t, res))
	}
}

func testIdempotencyTTL(t *testing.T, e *env) {
	e.project("p")
	first := e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" })
	e.insertAt(t0, first)
	justBefore := t0.Add(ward.IdempotencyTTL - time.Microsecond)
	if r := e.insertAt(justBefore, e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }))[0]; !r.Existing || r.Task.ID != first.ID {
		t.Fatalf("key just inside the TTL: %s, want the first task", mustJSON(t, r))
	}
	late := t0.Add(ward.IdempotencyTTL)
	second := e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" })
	r := e.insertAt(late, second)[0]
	if r.Existing || r.Task.ID != second.ID {
		t.Fatalf("key after the TTL: %s, want a new task", mustJSON(t, r))
	}
	wantTime(t, "new task CreatedAt", r.Task.CreatedAt, late)
	// The key now maps to the new task, for another TTL.
	r = e.insertAt(late.Add(time.Hour), e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }))[0]
	if !r.Existing || r.Task.ID != second.ID {
		t.Fatalf("key after reuse: %s, want the second task", mustJSON(t, r))
	}
	// Both tasks exist.
	e.get("p", first.ID)
	e.get("p", second.ID)
}

// listIDs lists and returns the IDs.
func (e *env) listIDs(p *store.ListTasksParams) []string {
	e.t.Helper()
	recs, err := e.s.ListTasks(e.ctx, p)
	if err != nil {
		e.t.Fatalf("ListTasks(%+v): %v", *p, err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func testListPaging(t *testing.T, e *env) {
	e.project("p")
	var all []string
	for i := range 7 {
		// Later inserts with earlier run_at and higher priority: listing is by
		// insertion order only.
		nt := e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(-time.Duration(i) * time.Second); n.Priority = i % 3 })
		e.insert(nt)
		all = append([]string{nt.ID}, all...)
	}
	if got := e.listIDs(&store.ListTasksParams{Project: "p"}); !slices.Equal(got, all) {
		t.Fatalf("ListTasks = %v, want newest first %v", got, all)
	}
	var paged []string
	cursor := ""
	for range 10 {
		page := e.listIDs(&store.ListTasksParams{Project: "p", Limit: 3, Before: cursor})
		if len(page) > 3 {
			t.Fatalf("page of %d > limit 3", len(page))
		}
		paged = append(paged, page...)
		if len(page) < 3 {
			break
		}
		cursor = page[len(page)-1]
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("paged = %v, want %v", paged, all)
	}
	if got := e.listIDs(&store.ListTasksParams{Project: "p", Before: all[len(all)-1]}); len(got) != 0 {
		t.Fatalf("page after the oldest = %v, want empty", got)
	}
	// The listed records are the full records.
	recs, err := e.s.ListTasks(e.ctx, &store.ListTasksParams{Project: "p", Limit: 1})
	if err != nil || len(recs) != 1 {
		t.Fatalf("ListTasks(limit 1) = %d, %v", len(recs), err)
	}
	sameRecord(t, "listed record", recs[0], e.get("p", all[0]))
}

func testListFilters(t *testing.T, e *env) {
	e.project("p")
	a1, b1, a2, a3 := e.task("p", "a"), e.task("p", "b"), e.task("p", "a"), e.task("p", "a", func(n *store.NewTask) { n.RunAt = at(time.Hour) })
	e.insert(a1, b1, a2, a3)
	l := e.leaseOne("r", t0) // a1
	e.completeOK(succeed(l, t0))
	l = e.leaseOne("r", t0) // b1, left running
	if l.Task.ID != b1.ID {
		t.Fatalf("leased %s, want %s", l.Task.ID, b1.ID)
	}
	for _, tc := range []struct {
		p    store.ListTasksParams
		want []string
	}{
		{store.ListTasksParams{Function: "a"}, []string{a3.ID, a2.ID, a1.ID}},
		{store.ListTasksParams{Function: "b"}, []string{b1.ID}},
		{store.ListTasksParams{Function: "c"}, []string{}},
		{store.ListTasksParams{Status: ward.StatusQueued}, []string{a3.ID, a2.ID}},
		{store.ListTasksParams{Status: ward.StatusRunning}, []string{b1.ID}},
		{store.ListTasksParams{Status: ward.StatusSucceeded}, []string{a1.ID}},
		{store.ListTasksParams{Status: ward.StatusFailed}, []string{}},
		{store.ListTasksParams{Function: "a", Status: ward.StatusQueued}, []string{a3.ID, a2.ID}},
		{store.ListTasksParams{Function: "b", Status: ward.StatusQueued}, []string{}},
		{store.ListTasksParams{Function: "a", Limit: 1, Before: a3.ID}, []string{a2.ID}},
		{store.ListTasksParams{Status: ward.StatusQueued, Before: b1.ID}, []string{}},
		{store.ListTasksParams{Function: "a", Before: b1.ID}, []string{a1.ID}},
	} {
		p := tc.p
		p.Project = "p"
		if got := e.listIDs(&p); !slices.Equal(got, tc.want) {
			t.Errorf("ListTasks(%+v) = %v, want %v", p, got, tc.want)
		}
	}
}

func testListLimits(t *testing.T, e *env) {
	e.project("p")
	n := ward.MaxPageSize + 5
	tasks := make([]store.NewTask, 0, n)
	for range n {
		tasks = append(tasks, e.task("p", "f", func(n *store.NewTask) { n.Payload = nil }))
	}
	e.insert(tasks[:n/2]...)
	e.insert(tasks[n/2:]...)
	for _, tc := range []struct{ limit, want int }{
		{0, ward.DefaultPageSize},
		{1, 1},
		{ward.MaxPageSize, ward.MaxPageSize},
		{ward.MaxPageSize + 1, ward.MaxPageSize},
		{1 << 30, ward.MaxPageSize},
	} {
		got := e.listIDs(&store.ListTasksParams{Project: "p", Limit: tc.limit})
		if len(got) != tc.want {
			t.Errorf("ListTasks(limit %d) returned %d, want %d", tc.limit, len(got), tc.want)
		}
		if len(got) > 0 && got[0] != tasks[n-1].ID {
			t.Errorf("ListTasks(limit %d) starts at %s, want the newest %s", tc.limit, got[0], tasks[n-1].ID)
		}
	}
}

func testListErrors(t *testing.T, e *env) {
	e.project("p", "q")
	qt := e.task("q", "f")
	e.insert(e.task("p", "f"), qt)
	for _, tc := range []struct {
		name string
		p    store.ListTasksParams
		code ward.Code
	}{
		{"unknown cursor", store.ListTasksParams{Project: "p", Before: "t_nope"}, ward.CodeInvalidArgument},
		{"cursor of another project", store.ListTasksParams{Project: "p", Before: qt.ID}, ward.CodeInvalidArgument},
		{"negative limit", store.ListTasksParams{Project: "p", Limit: -1}, ward.CodeInvalidArgument},
		{"unknown status", store.ListTasksParams{Project: "p", Status: "sleeping"}, ward.CodeInvalidArgument},
		{"missing project", store.ListTasksParams{Project: "nope"}, ward.CodeNotFound},
	} {
		_, err := e.s.ListTasks(e.ctx, &tc.p)
		wantCode(t, "ListTasks("+tc.name+")", err, tc.code)
	}
	e.project("empty")
	if got := e.listIDs(&store.ListTasksParams{Project: "empty"}); len(got) != 0 {
		t.Fatalf("ListTasks(empty project) = %v", got)
	}
}

func testBodies(t *testing.T, e *env) {
	e.project("p")
	nt := e.task("p", "f", func(n *store.NewTask) { n.Payload = []byte{0, 1, 2, 0xff} })
	e.insert(nt)
	if b := e.body("p", nt.ID, store.BodyPayload); !bytes.Equal(b, nt.Payload) {
		t.Fatalf("payload = %x, want %x (binary-safe)", b, nt.Payload)
	}
	for _, b := range []store.Body{store.BodyResult, store.BodyLog} {
		if got := e.body("p", nt.ID, b); len(got) != 0 {
			t.Fatalf("%s of a queued task = %q, want none", b, got)
		}
	}
	l := e.leaseOne("r", t0)
	if !bytes.Equal(l.Payload, nt.Payload) {
		t.Fatalf("lease payload = %x, want %x", l.Payload, nt.Payload)
	}
	e.completeOK(succeed(l, at(time.Second)))
	if got := e.body("p", nt.ID, store.BodyResult); string(got) != `{"ok":true}` {
		t.Fatalf("result = %q", got)
	}
	if got := e.body("p", nt.ID, store.BodyLog); string(got) != "done\n" {
		t.Fatalf("log = %q", got)
	}
	_, err := e.s.GetTaskBody(e.ctx, "p", nt.ID, "secrets")
	wantCode(t, "GetTaskBody(unknown body)", err, ward.CodeInvalidArgument)
	_, err = e.s.GetTaskBody(e.ctx, "p", "t_nope", store.BodyPayload)
	wantCode(t, "GetTaskBody(missing task)", err, ward.CodeNotFound)

	empty := e.task("p", "f", func(n *store.NewTask) { n.Payload = nil })
	e.insert(empty)
	if got := e.body("p", empty.ID, store.BodyPayload); len(got) != 0 {
		t.Fatalf("empty payload = %q", got)
	}
	if l := e.leaseOne("r", t0); len(l.Payload) != 0 {
		t.Fatalf("lease of an empty payload = %q", l.Payload)
	}
}

func testCrossProject(t *testing.T, e *env) {
	e.project("p", "q")
	pt := e.task("p", "f")
	e.insert(pt, e.task("q", "f"))
	_, err := e.s.GetTask(e.ctx, "q", pt.ID)
	wantCode(t, "GetTask(other project)", err, ward.CodeNotFound)
	for _, b := range []store.Body{store.BodyPayload, store.BodyResult, store.BodyLog} {
		_, err = e.s.GetTaskBody(e.ctx, "q", pt.ID, b)
		wantCode(t, "GetTaskBody(other project, "+string(b)+")", err, ward.CodeNotFound)
	}
	_, err = e.s.CancelTask(e.ctx, &store.CancelParams{Project: "q", ID: pt.ID, Now: t0})
	wantCode(t, "CancelTask(other project)", err, ward.CodeNotFound)
	if got := e.get("p", pt.ID); got.Status != ward.StatusQueued {
		t.Fatalf("cross-project cancel changed the task: %s", got.Status)
	}
	if got := e.listIDs(&store.ListTasksParams{Project: "q"}); slices.Contains(got, pt.ID) || len(got) != 1 {
		t.Fatalf("ListTasks(q) = %v, want only q's task", got)
	}
	if _, err := e.s.CancelTask(e.ctx, &store.CancelParams{Project: "p", ID: pt.ID, Now: t0}); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.RetryTask(e.ctx, &store.RetryParams{Project: "q", ID: pt.ID, Now: t0})
	wantCode(t, "RetryTask(other project)", err, ward.CodeNotFound)
	if got := e.get("p", pt.ID); got.Status != ward.StatusCancelled {
		t.Fatalf("cross-project retry changed the task: %s", got.Status)
	}
}

func testNextRunAt(t *testing.T, e *env) {
	e.project("p")
	if _, ok, err := e.s.NextRunAt(e.ctx); err != nil || ok {
		t.Fatalf("NextRunAt on an empty store = ok %t, %v; want false", ok, err)
	}
	e.insert(
		e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(time.Hour); n.Priority = 2 }),
		e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(10 * time.Second) }),
		e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(time.Minute); n.Priority = 1 }),
	)
	next, ok, err := e.s.NextRunAt(e.ctx)
	if err != nil || !ok {
		t.Fatalf("NextRunAt = ok %t, %v", ok, err)
	}
	wantTime(t, "NextRunAt", next, at(10*time.Second))
	// Running and finished tasks do not count.
	l := e.leaseOne("r", at(10*time.Second))
	next, _, _ = e.s.NextRunAt(e.ctx)
	wantTime(t, "NextRunAt after leasing the earliest", next, at(time.Minute))
	e.completeOK(succeed(l, at(11*time.Second)))
	next, _, _ = e.s.NextRunAt(e.ctx)
	wantTime(t, "NextRunAt after completing it", next, at(time.Minute))
	// A past-due task is the earliest.
	e.insert(e.task("p", "f", func(n *store.NewTask) { n.RunAt = at(-time.Hour) }))
	next, _, _ = e.s.NextRunAt(e.ctx)
	wantTime(t, "NextRunAt with a past-due task", next, at(-time.Hour))
}

// testSealed checks that a task's Sealed flag is kept and returned on every
// read path.
func testSealed(t *testing.T, e *env) {
	e.project("p")
	sealed := e.task("p", "f", func(n *store.NewTask) { n.Sealed = true; n.IdempotencyKey = "k" })
	plain := e.task("p", "f")
	res := e.insertAt(t0, sealed, plain)
	if !res[0].Task.Sealed || res[1].Task.Sealed {
		t.Fatalf("InsertTasks Sealed = %t, %t; want true, false", res[0].Task.Sealed, res[1].Task.Sealed)
	}
	check := func(what string, want bool) {
		t.Helper()
		if got := e.get("p", sealed.ID); got.Sealed != want {
			t.Fatalf("%s: GetTask(sealed).Sealed = %t, want %t", what, got.Sealed, want)
		}
		if got := e.get("p", plain.ID); got.Sealed {
			t.Fatalf("%s: GetTask(plain).Sealed = true", what)
		}
		recs, err := e.s.ListTasks(e.ctx, &store.ListTasksParams{Project: "p"})
		if err != nil || len(recs) != 2 || recs[1].ID != sealed.ID || recs[1].Sealed != want || recs[0].Sealed {
			t.Fatalf("%s: ListTasks = %s, %v; want only %s sealed", what, mustJSON(t, recs), err, sealed.ID)
		}
	}
	check("queued", true)
	if got := e.body("p", sealed.ID, store.BodyPayload); !bytes.Equal(got, sealed.Payload) {
		t.Fatalf("sealed payload = %q, want %q", got, sealed.Payload)
	}
	// The record of a repeated idempotency key.
	again := e.insertAt(at(time.Second), e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }))[0]
	if !again.Existing || !again.Task.Sealed {
		t.Fatalf("repeated key = %s, want the sealed task", mustJSON(t, again))
	}
	ls := e.lease("r", 2, 1<<20, t0)
	if len(ls) != 2 || ls[0].Task.ID != sealed.ID || !ls[0].Task.Sealed || ls[1].Task.Sealed {
		t.Fatalf("leases = %s, want the sealed task first, sealed", mustJSON(t, ls))
	}
	if !bytes.Equal(ls[0].Payload, sealed.Payload) {
		t.Fatalf("leased sealed payload = %q", ls[0].Payload)
	}
	check("running", true)
	e.completeOK(succeed(ls[0], at(time.Second)), succeed(ls[1], at(time.Second)))
	check("succeeded", true)
	rec, err := e.s.RetryTask(e.ctx, &store.RetryParams{Project: "p", ID: sealed.ID, Now: at(time.Minute)})
	if err != nil || !rec.Sealed {
		t.Fatalf("RetryTask = %s, %v; want sealed", mustJSON(t, rec), err)
	}
	rec, err = e.s.CancelTask(e.ctx, &store.CancelParams{Project: "p", ID: sealed.ID, Now: at(time.Minute)})
	if err != nil || !rec.Sealed {
		t.Fatalf("CancelTask = %s, %v; want sealed", mustJSON(t, rec), err)
	}
	check("cancelled", true)
}
