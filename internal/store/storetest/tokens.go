package storetest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// tokenTests cover the tasks' input info and the token vault.
var tokenTests = []test{
	{"InputInfo", testInputInfo},
	{"InputInfoCancelRetry", testInputInfoCancelRetry},
	{"TokenVault", testTokenVault},
	{"TokenVaultIdempotentBatch", testTokenVaultIdempotent},
	{"TokenVaultIsolation", testTokenVaultIsolation},
	{"TokenVaultAtomic", testTokenVaultAtomic},
	{"TokenVaultErrors", testTokenVaultErrors},
	{"GetTokensLimits", testGetTokensLimits},
	{"PurgeTokens", testPurgeTokens},
	{"PurgeTokensErrors", testPurgeTokensErrors},
	{"DeleteProjectTokens", testDeleteProjectTokens},
}

// maxGetTokens is the most tokens one GetTokens call may name.
const maxGetTokens = store.MaxGetTokens

// tv is a token vault entry.
func tv(project, token, value string) store.TokenValue {
	return store.TokenValue{Project: project, Token: token, Value: []byte(value)}
}

// insertTokens inserts tasks with token vault entries at now; it must succeed.
func (e *env) insertTokens(now time.Time, tokens []store.TokenValue, tasks ...store.NewTask) []store.InsertResult {
	e.t.Helper()
	res, err := e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: tasks, Tokens: tokens, Now: now})
	if err != nil {
		e.t.Fatalf("InsertTasks(%d tasks, %d tokens): %v", len(tasks), len(tokens), err)
	}
	if len(res) != len(tasks) {
		e.t.Fatalf("InsertTasks: %d results for %d tasks", len(res), len(tasks))
	}
	return res
}

// getTokens reads a project's tokens and returns the entries found as
// "token=value" in token order, joined by commas.
func (e *env) getTokens(project string, tokens ...string) string {
	e.t.Helper()
	m, err := e.s.GetTokens(e.ctx, project, tokens)
	if err != nil {
		e.t.Fatalf("GetTokens(%s, %v): %v", project, tokens, err)
	}
	if m == nil {
		e.t.Fatalf("GetTokens(%s, %v) = nil, want a map", project, tokens)
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(tokens, k) {
			e.t.Fatalf("GetTokens(%s, %v) returned %q, which was not asked for", project, tokens, k)
		}
		out = append(out, k+"="+string(m[k]))
	}
	return strings.Join(out, ",")
}

// purgeTokens purges tokens and wants n deleted.
func (e *env) purgeTokens(p store.PurgeTokensParams, want int) {
	e.t.Helper()
	n, err := e.s.PurgeTokens(e.ctx, &p)
	if err != nil {
		e.t.Fatalf("PurgeTokens(%+v): %v", p, err)
	}
	if n != want {
		e.t.Fatalf("PurgeTokens(%+v) = %d, want %d", p, n, want)
	}
}

// wantInput fails unless got describes the same payload as want (nil only
// when want is nil; a nil and an empty list are the same).
func wantInput(t *testing.T, what string, got, want *ward.PayloadInfo) {
	t.Helper()
	switch {
	case got == nil && want == nil:
		return
	case got == nil || want == nil:
		t.Fatalf("%s: Input = %s, want %s", what, mustJSON(t, got), mustJSON(t, want))
	case !slices.Equal(got.Fields, want.Fields) || !slices.Equal(got.Tokenized, want.Tokenized) || got.Truncated != want.Truncated:
		t.Fatalf("%s: Input = %s, want %s", what, mustJSON(t, got), mustJSON(t, want))
	}
}

// testInputInfo round-trips a task's input info through every read path,
// and keeps nil nil.
func testInputInfo(t *testing.T, e *env) {
	e.project("p")
	info := &ward.PayloadInfo{Fields: []string{"/order/id", "/customer/email", "/a~1b/0"}, Tokenized: []string{"/customer/email"}, Truncated: true}
	empty := &ward.PayloadInfo{Fields: []string{}} // projection kept nothing
	with := e.task("p", "f", func(n *store.NewTask) {
		n.Input = &ward.PayloadInfo{Fields: slices.Clone(info.Fields), Tokenized: slices.Clone(info.Tokenized), Truncated: true}
		n.IdempotencyKey = "k"
		n.Priority = 2 // leased first
	})
	bare := e.task("p", "f", func(n *store.NewTask) { n.Input = empty; n.Priority = 1 })
	none := e.task("p", "f")
	want := map[string]*ward.PayloadInfo{with.ID: info, bare.ID: empty, none.ID: nil}
	check := func(what string, recs ...store.TaskRecord) {
		t.Helper()
		for _, r := range recs {
			w, ok := want[r.ID]
			if !ok {
				t.Fatalf("%s: unexpected task %s", what, r.ID)
			}
			wantInput(t, what+" "+r.ID, r.Input, w)
		}
	}

	res := e.insertAt(t0, with, bare, none)
	check("InsertTasks", res[0].Task, res[1].Task, res[2].Task)
	// Neither the result nor the stored record shares the caller's lists.
	with.Input.Fields[0], with.Input.Tokenized[0] = "/changed", "/changed"
	check("InsertTasks after the caller changed its lists", res[0].Task)
	check("GetTask", e.get("p", with.ID), e.get("p", bare.ID), e.get("p", none.ID))
	recs, err := e.s.ListTasks(e.ctx, &store.ListTasksParams{Project: "p"})
	if err != nil || len(recs) != 3 {
		t.Fatalf("ListTasks = %d, %v; want 3", len(recs), err)
	}
	check("ListTasks", recs...)

	again := e.insertAt(at(time.Second), e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }))[0]
	if !again.Existing || again.Task.ID != with.ID {
		t.Fatalf("repeated key = %s, want the first task", mustJSON(t, again))
	}
	check("InsertTasks(repeated key)", again.Task)

	ls := e.lease("r", 3, 1<<20, t0)
	if len(ls) != 3 {
		t.Fatalf("leased %d, want 3", len(ls))
	}
	for _, l := range ls {
		check("LeaseTasks", l.Task)
		check("GetTask(running)", e.get("p", l.Task.ID))
	}
	e.completeOK(succeed(ls[0], at(time.Second)), succeed(ls[1], at(time.Second)), succeed(ls[2], at(time.Second)))
	check("GetTask(succeeded)", e.get("p", with.ID), e.get("p", bare.ID), e.get("p", none.ID))
	recs, err = e.s.ListTasks(e.ctx, &store.ListTasksParams{Project: "p", Status: ward.StatusSucceeded})
	if err != nil || len(recs) != 3 {
		t.Fatalf("ListTasks(succeeded) = %d, %v; want 3", len(recs), err)
	}
	check("ListTasks(succeeded)", recs...)
}

// testInputInfoCancelRetry checks the records CancelTask and RetryTask
// return, and a retried task's lease.
func testInputInfoCancelRetry(t *testing.T, e *env) {
	e.project("p")
	info := &ward.PayloadInfo{Fields: []string{"/x"}, Tokenized: []string{"/x"}}
	a := e.task("p", "f", func(n *store.NewTask) { n.Input = info })
	b := e.task("p", "f")
	e.insert(a, b)
	for _, tc := range []struct {
		id   string
		want *ward.PayloadInfo
	}{{a.ID, info}, {b.ID, nil}} {
		rec, err := e.s.CancelTask(e.ctx, &store.CancelParams{Project: "p", ID: tc.id, Now: at(time.Second)})
		if err != nil {
			t.Fatalf("CancelTask(%s): %v", tc.id, err)
		}
		wantInput(t, "CancelTask "+tc.id, rec.Input, tc.want)
		rec, err = e.s.RetryTask(e.ctx, &store.RetryParams{Project: "p", ID: tc.id, Now: at(time.Minute)})
		if err != nil {
			t.Fatalf("RetryTask(%s): %v", tc.id, err)
		}
		wantInput(t, "RetryTask "+tc.id, rec.Input, tc.want)
	}
	ls := e.lease("r", 2, 1<<20, at(time.Minute))
	if len(ls) != 2 || ls[0].Task.ID != a.ID {
		t.Fatalf("leases after retrying = %v, want [%s %s]", ids(ls), a.ID, b.ID)
	}
	wantInput(t, "LeaseTasks(retried)", ls[0].Task.Input, info)
	wantInput(t, "LeaseTasks(retried, no input)", ls[1].Task.Input, nil)
}

// testTokenVault checks upserts: a token written again gets the new value
// and time, the last of a token given twice in a batch wins, and values are
// kept byte for byte (an empty one is still held).
func testTokenVault(t *testing.T, e *env) {
	e.project("p")
	binary := "\x00\xff\x01envelope\x00"
	e.insertTokens(t0, []store.TokenValue{tv("p", "tok_a", "A"), tv("p", "tok_b", "B"), tv("p", "tok_bin", binary),
		{Project: "p", Token: "tok_empty"}}, e.task("p", "f"))
	if got, want := e.getTokens("p", "tok_a", "tok_b", "tok_missing", "tok_bin", "tok_empty"),
		"tok_a=A,tok_b=B,tok_bin="+binary+",tok_empty="; got != want {
		t.Fatalf("GetTokens = %q, want %q", got, want)
	}
	m, err := e.s.GetTokens(e.ctx, "p", []string{"tok_empty", "tok_missing"})
	if v, ok := m["tok_empty"]; err != nil || !ok || len(v) != 0 {
		t.Fatalf("GetTokens(tok_empty) = %q (held %t), %v; want held, empty", v, ok, err)
	}
	if _, ok := m["tok_missing"]; ok {
		t.Fatal("GetTokens holds tok_missing, which was never written")
	}

	// tok_a again, an hour later: the new value, and its update time moves
	// (a purge of entries written before the hour leaves it).
	e.insertTokens(at(time.Hour), []store.TokenValue{tv("p", "tok_a", "A2")}, e.task("p", "f"))
	if got := e.getTokens("p", "tok_a", "tok_b"); got != "tok_a=A2,tok_b=B" {
		t.Fatalf("GetTokens after rewriting tok_a = %q", got)
	}
	e.purgeTokens(store.PurgeTokensParams{Project: "p", UpdatedBefore: at(time.Minute)}, 3)
	if got := e.getTokens("p", "tok_a", "tok_b", "tok_bin", "tok_empty"); got != "tok_a=A2" {
		t.Fatalf("GetTokens after purging entries older than a minute = %q, want only the rewritten tok_a", got)
	}

	// A token given twice in one batch: the last value stays.
	e.insertTokens(at(2*time.Hour), []store.TokenValue{tv("p", "tok_c", "first"), tv("p", "tok_a", "A3"), tv("p", "tok_c", "second")},
		e.task("p", "f"))
	if got := e.getTokens("p", "tok_a", "tok_c"); got != "tok_a=A3,tok_c=second" {
		t.Fatalf("GetTokens after a batch naming tok_c twice = %q", got)
	}
	// Repeated tokens in a read are fine.
	if got := e.getTokens("p", "tok_c", "tok_c", "tok_a"); got != "tok_a=A3,tok_c=second" {
		t.Fatalf("GetTokens(repeated tokens) = %q", got)
	}
	// The store does not keep the caller's value slice.
	tok := tv("p", "tok_d", "orig")
	e.insertTokens(at(3*time.Hour), []store.TokenValue{tok}, e.task("p", "f"))
	copy(tok.Value, "XXXX")
	if got := e.getTokens("p", "tok_d"); got != "tok_d=orig" {
		t.Fatalf("GetTokens after the caller changed its value = %q", got)
	}
	// Nor does the caller get the store's: changing a returned value
	// changes nothing stored.
	m, err = e.s.GetTokens(e.ctx, "p", []string{"tok_d"})
	if err != nil || len(m["tok_d"]) != 4 {
		t.Fatalf("GetTokens(tok_d) = %v, %v", m, err)
	}
	copy(m["tok_d"], "YYYY")
	if got := e.getTokens("p", "tok_d"); got != "tok_d=orig" {
		t.Fatalf("GetTokens after changing a returned value = %q", got)
	}
}

// testTokenVaultIdempotent checks that a batch whose tasks are all
// idempotent repeats still writes its tokens, and that tokens of several
// projects can come in one batch.
func testTokenVaultIdempotent(t *testing.T, e *env) {
	e.project("p", "q")
	first := e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" })
	e.insertTokens(t0, []store.TokenValue{tv("p", "tok_1", "one")}, first)
	res := e.insertTokens(at(time.Second), []store.TokenValue{tv("p", "tok_1", "uno"), tv("p", "tok_2", "two"), tv("q", "tok_3", "three")},
		e.task("p", "f", func(n *store.NewTask) { n.IdempotencyKey = "k" }))
	if !res[0].Existing || res[0].Task.ID != first.ID {
		t.Fatalf("repeated key = %s, want the first task", mustJSON(t, res[0]))
	}
	if got := e.getTokens("p", "tok_1", "tok_2", "tok_3"); got != "tok_1=uno,tok_2=two" {
		t.Fatalf("GetTokens(p) after an all-repeat batch = %q", got)
	}
	if got := e.getTokens("q", "tok_1", "tok_3"); got != "tok_3=three" {
		t.Fatalf("GetTokens(q) after an all-repeat batch = %q", got)
	}
}

// testTokenVaultIsolation checks that a project never reads, purges or
// overwrites another's entries.
func testTokenVaultIsolation(t *testing.T, e *env) {
	e.project("p", "q")
	e.insertTokens(t0, []store.TokenValue{tv("p", "tok_x", "p's x"), tv("p", "tok_p", "p only"), tv("q", "tok_x", "q's x")},
		e.task("p", "f"))
	if got := e.getTokens("p", "tok_x", "tok_p"); got != "tok_p=p only,tok_x=p's x" {
		t.Fatalf("GetTokens(p) = %q", got)
	}
	if got := e.getTokens("q", "tok_x", "tok_p"); got != "tok_x=q's x" {
		t.Fatalf("GetTokens(q) = %q, want q's tok_x only", got)
	}
	// A project that does not exist holds nothing.
	if got := e.getTokens("nope", "tok_x", "tok_p"); got != "" {
		t.Fatalf("GetTokens(missing project) = %q, want nothing", got)
	}
	// Rewriting q's token leaves p's.
	e.insertTokens(at(time.Hour), []store.TokenValue{tv("q", "tok_x", "q's new x")}, e.task("q", "f"))
	if got := e.getTokens("p", "tok_x"); got != "tok_x=p's x" {
		t.Fatalf("GetTokens(p) after rewriting q's tok_x = %q", got)
	}
	// Purging p leaves q's, even older ones.
	e.insertTokens(at(2*time.Hour), []store.TokenValue{tv("q", "tok_old", "old")}, e.task("q", "f"))
	e.purgeTokens(store.PurgeTokensParams{Project: "p", UpdatedBefore: at(10 * time.Hour)}, 2)
	if got := e.getTokens("p", "tok_x", "tok_p"); got != "" {
		t.Fatalf("GetTokens(p) after purging p = %q", got)
	}
	if got := e.getTokens("q", "tok_x", "tok_old"); got != "tok_old=old,tok_x=q's new x" {
		t.Fatalf("GetTokens(q) after purging p = %q", got)
	}
	e.purgeTokens(store.PurgeTokensParams{Project: "nope", UpdatedBefore: at(10 * time.Hour)}, 0)
}

// testTokenVaultAtomic checks that a batch that fails writes none of its
// tokens and leaves earlier values.
func testTokenVaultAtomic(t *testing.T, e *env) {
	e.project("p")
	existing := e.task("p", "f")
	e.insertTokens(t0, []store.TokenValue{tv("p", "tok_kept", "old")}, existing)
	for _, tc := range []struct {
		name  string
		tasks []store.NewTask
		code  ward.Code
	}{
		{"duplicate task ID", []store.NewTask{e.task("p", "f"), e.task("p", "f", func(n *store.NewTask) { n.ID = existing.ID })}, ward.CodeAlreadyExists},
		{"ID twice in the batch", func() []store.NewTask { n := e.task("p", "f"); return []store.NewTask{n, n} }(), ward.CodeAlreadyExists},
		{"task of a missing project", []store.NewTask{e.task("p", "f"), e.task("nope", "f")}, ward.CodeNotFound},
		{"bad priority", []store.NewTask{e.task("p", "f", func(n *store.NewTask) { n.Priority = ward.MaxPriority + 1 })}, ward.CodeInvalidArgument},
	} {
		_, err := e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: tc.tasks, Now: at(time.Hour),
			Tokens: []store.TokenValue{tv("p", "tok_new", "new"), tv("p", "tok_kept", "overwritten")}})
		wantCode(t, "InsertTasks("+tc.name+")", err, tc.code)
		if got := e.getTokens("p", "tok_new", "tok_kept"); got != "tok_kept=old" {
			t.Fatalf("GetTokens after a failed batch (%s) = %q, want only the old tok_kept", tc.name, got)
		}
	}
	// The failed batches did not touch tok_kept's update time either.
	e.purgeTokens(store.PurgeTokensParams{Project: "p", UpdatedBefore: at(time.Second)}, 1)
}

// testTokenVaultErrors checks the bad token entries InsertTasks refuses,
// writing nothing.
func testTokenVaultErrors(t *testing.T, e *env) {
	e.project("p")
	for _, tc := range []struct {
		name   string
		tokens []store.TokenValue
		code   ward.Code
	}{
		{"token of a missing project", []store.TokenValue{tv("p", "tok_1", "v"), tv("nope", "tok_2", "v")}, ward.CodeNotFound},
		{"empty token", []store.TokenValue{tv("p", "tok_1", "v"), tv("p", "", "v")}, ward.CodeInvalidArgument},
	} {
		task := e.task("p", "f")
		_, err := e.s.InsertTasks(e.ctx, &store.InsertTasksParams{Tasks: []store.NewTask{task}, Tokens: tc.tokens, Now: t0})
		wantCode(t, "InsertTasks("+tc.name+")", err, tc.code)
		_, err = e.s.GetTask(e.ctx, "p", task.ID)
		wantCode(t, "GetTask(task of a batch with a "+tc.name+")", err, ward.CodeNotFound)
		if got := e.getTokens("p", "tok_1", "tok_2", ""); got != "" {
			t.Fatalf("GetTokens after a batch with a %s = %q, want nothing", tc.name, got)
		}
	}
}

// testGetTokensLimits checks GetTokens with no tokens and at and over its
// limit.
func testGetTokensLimits(t *testing.T, e *env) {
	e.project("p")
	var many []store.TokenValue
	names := make([]string, maxGetTokens+1)
	for i := range names {
		names[i] = fmt.Sprintf("tok_%04d", i)
		if i%3 == 0 {
			many = append(many, tv("p", names[i], "v"+names[i]))
		}
	}
	e.insertTokens(t0, many, e.task("p", "f"))
	for _, tokens := range [][]string{nil, {}} {
		m, err := e.s.GetTokens(e.ctx, "p", tokens)
		if err != nil || m == nil || len(m) != 0 {
			t.Fatalf("GetTokens(%#v) = %v, %v; want an empty map", tokens, m, err)
		}
	}
	m, err := e.s.GetTokens(e.ctx, "p", names[:maxGetTokens])
	if err != nil {
		t.Fatalf("GetTokens(%d tokens): %v", maxGetTokens, err)
	}
	want := 0
	for i, name := range names[:maxGetTokens] {
		v, ok := m[name]
		if ok != (i%3 == 0) || (ok && string(v) != "v"+name) {
			t.Fatalf("GetTokens(%d tokens)[%s] = %q (held %t)", maxGetTokens, name, v, ok)
		}
		if ok {
			want++
		}
	}
	if len(m) != want {
		t.Fatalf("GetTokens(%d tokens) = %d entries, want %d", maxGetTokens, len(m), want)
	}
	_, err = e.s.GetTokens(e.ctx, "p", names)
	wantCode(t, fmt.Sprintf("GetTokens(%d tokens)", len(names)), err, ward.CodeInvalidArgument)
}

// testPurgeTokens purges by time and limit.
func testPurgeTokens(t *testing.T, e *env) {
	e.project("p", "q")
	for i, name := range []string{"tok_0", "tok_1", "tok_2", "tok_3", "tok_4"} {
		e.insertTokens(at(time.Duration(i)*time.Minute), []store.TokenValue{tv("p", name, name), tv("q", name, name)}, e.task("p", "f"))
	}
	all := []string{"tok_0", "tok_1", "tok_2", "tok_3", "tok_4"}
	held := func() int {
		t.Helper()
		m, err := e.s.GetTokens(e.ctx, "p", all)
		if err != nil {
			t.Fatal(err)
		}
		return len(m)
	}
	// Nothing written before t0.
	e.purgeTokens(store.PurgeTokensParams{Project: "p", UpdatedBefore: t0}, 0)
	// Three written before minute 3 (tok_3, written at minute 3, is not
	// before it); a limit of 2 takes two of them.
	e.purgeTokens(store.PurgeTokensParams{Project: "p", UpdatedBefore: at(3 * time.Minute), Limit: 2}, 2)
	if n := held(); n != 3 {
		t.Fatalf("%d entries held after purging 2 of 5, want 3", n)
	}
	e.purgeTokens(store.PurgeTokensParams{Project: "p", UpdatedBefore: at(3 * time.Minute), Limit: 5}, 1)
	if got := e.getTokens("p", all...); got != "tok_3=tok_3,tok_4=tok_4" {
		t.Fatalf("GetTokens after purging before minute 3 = %q", got)
	}
	e.purgeTokens(store.PurgeTokensParams{Project: "p", UpdatedBefore: at(3 * time.Minute)}, 0)
	// Limit 0 is all.
	e.purgeTokens(store.PurgeTokensParams{Project: "p", UpdatedBefore: at(time.Hour)}, 2)
	if n := held(); n != 0 {
		t.Fatalf("%d entries held after purging all", n)
	}
	// q's entries are all there.
	if m, err := e.s.GetTokens(e.ctx, "q", all); err != nil || len(m) != len(all) {
		t.Fatalf("GetTokens(q) after purging p = %d entries, %v; want %d", len(m), err, len(all))
	}
	// A purged token can be written again.
	e.insertTokens(at(2*time.Hour), []store.TokenValue{tv("p", "tok_0", "again")}, e.task("p", "f"))
	if got := e.getTokens("p", "tok_0"); got != "tok_0=again" {
		t.Fatalf("GetTokens(purged and rewritten tok_0) = %q", got)
	}
}

func testPurgeTokensErrors(t *testing.T, e *env) {
	e.project("p")
	e.insertTokens(t0, []store.TokenValue{tv("p", "tok_1", "v")}, e.task("p", "f"))
	_, err := e.s.PurgeTokens(e.ctx, &store.PurgeTokensParams{Project: "p", UpdatedBefore: at(time.Hour), Limit: -1})
	wantCode(t, "PurgeTokens(negative limit)", err, ward.CodeInvalidArgument)
	if got := e.getTokens("p", "tok_1"); got != "tok_1=v" {
		t.Fatalf("GetTokens after a failed purge = %q", got)
	}
}

// testDeleteProjectTokens checks that deleting a project deletes its vault
// entries, and only its.
func testDeleteProjectTokens(t *testing.T, e *env) {
	e.project("p", "q")
	e.insertTokens(t0, []store.TokenValue{tv("p", "tok_1", "p1"), tv("p", "tok_2", "p2"), tv("q", "tok_1", "q1")}, e.task("p", "f"))
	if err := e.s.DeleteProject(e.ctx, "p"); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	if got := e.getTokens("q", "tok_1", "tok_2"); got != "tok_1=q1" {
		t.Fatalf("GetTokens(q) after deleting p = %q", got)
	}
	// A project created again under the name starts with an empty vault.
	e.project("p")
	if got := e.getTokens("p", "tok_1", "tok_2"); got != "" {
		t.Fatalf("GetTokens(recreated p) = %q, want nothing", got)
	}
	e.purgeTokens(store.PurgeTokensParams{Project: "p", UpdatedBefore: at(time.Hour)}, 0)
}
