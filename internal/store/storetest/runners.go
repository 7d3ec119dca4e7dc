package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// runnerTests cover registered runners and their join tokens.
var runnerTests = []test{
	{"RunnerRegister", testRunnerRegister},
	{"RunnerReregister", testRunnerReregister},
	{"RunnerArguments", testRunnerArguments},
	{"RunnerNotFound", testRunnerNotFound},
	{"RunnerList", testRunnerList},
	{"RunnerRunning", testRunnerRunning},
	{"RunnerTouch", testRunnerTouch},
	{"RunnerState", testRunnerState},
	{"JoinToken", testJoinToken},
	{"JoinTokenWrongHash", testJoinTokenWrongHash},
	{"JoinTokenExpiry", testJoinTokenExpiry},
	{"JoinTokenUnknown", testJoinTokenUnknown},
	{"JoinTokenDuplicate", testJoinTokenDuplicate},
	{"JoinTokenArguments", testJoinTokenArguments},
	{"JoinTokenConcurrent", testJoinTokenConcurrent},
}

// newRunner returns a runner as it registers, with every field set.
func newRunner(id string) ward.Runner {
	return ward.Runner{
		ID:       id,
		Name:     "host-" + id,
		Version:  "1.2.3",
		Drivers:  []string{"wasm", "oci"},
		Slots:    8,
		MemoryMB: 4096,
		MaxTasks: 1000,
		MaxAgeS:  86400,
		Remote:   true,
	}
}

// register registers a runner at now.
func (e *env) register(r ward.Runner, now time.Time) ward.Runner {
	e.t.Helper()
	got, err := e.s.RegisterRunner(e.ctx, &store.RegisterRunnerParams{Runner: r, Now: now})
	if err != nil {
		e.t.Fatalf("RegisterRunner(%s): %v", r.ID, err)
	}
	return got
}

// getRunner reads a runner.
func (e *env) getRunner(id string) ward.Runner {
	e.t.Helper()
	r, err := e.s.GetRunner(e.ctx, id)
	if err != nil {
		e.t.Fatalf("GetRunner(%s): %v", id, err)
	}
	return r
}

// setState changes a runner's state; the call must succeed.
func (e *env) setState(id string, st ward.RunnerState, now time.Time) ward.Runner {
	e.t.Helper()
	r, err := e.s.SetRunnerState(e.ctx, &store.SetRunnerStateParams{ID: id, State: st, Now: now})
	if err != nil {
		e.t.Fatalf("SetRunnerState(%s, %s): %v", id, st, err)
	}
	return r
}

// wantRunner fails unless got is want with the state, running count and
// times the store sets.
func wantRunner(t *testing.T, what string, got, want ward.Runner, st ward.RunnerState, running int, registered, seen time.Time) {
	t.Helper()
	wantTime(t, what+".RegisteredAt", got.RegisteredAt, registered)
	wantTime(t, what+".LastSeenAt", got.LastSeenAt, seen)
	want.State, want.Running = st, running
	want.RegisteredAt, want.LastSeenAt = got.RegisteredAt, got.LastSeenAt
	if len(want.Drivers) == 0 && len(got.Drivers) == 0 {
		want.Drivers = got.Drivers // nil and empty are the same list
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func testRunnerRegister(t *testing.T, e *env) {
	in := newRunner("r1")
	// The store sets the state, the running count and the times.
	given := in
	given.State, given.Running = ward.RunnerDrained, 5
	given.RegisteredAt, given.LastSeenAt = at(-time.Hour), at(-time.Hour)
	got := e.register(given, t0)
	wantRunner(t, "RegisterRunner", got, in, ward.RunnerActive, 0, t0, t0)
	wantRunner(t, "GetRunner", e.getRunner("r1"), in, ward.RunnerActive, 0, t0, t0)

	// The zero values round-trip too: no drivers, no limits, a local runner.
	bare := ward.Runner{ID: "r2"}
	wantRunner(t, "RegisterRunner(bare)", e.register(bare, at(time.Second)), bare, ward.RunnerActive, 0, at(time.Second), at(time.Second))
	wantRunner(t, "GetRunner(bare)", e.getRunner("r2"), bare, ward.RunnerActive, 0, at(time.Second), at(time.Second))
	// The caller's drivers slice is not kept.
	in.Drivers[0] = "changed"
	if d := e.getRunner("r1").Drivers; !slices.Equal(d, []string{"wasm", "oci"}) {
		t.Fatalf("drivers after the caller changed its slice = %v", d)
	}
}

func testRunnerReregister(t *testing.T, e *env) {
	e.register(newRunner("r1"), t0)
	e.setState("r1", ward.RunnerDraining, at(time.Minute))
	e.setState("r1", ward.RunnerDrained, at(2*time.Minute))

	// A new incarnation: active again, with its own fields and times.
	next := ward.Runner{ID: "r1", Name: "other-host", Version: "1.3.0", Drivers: []string{"wasm"}, Slots: 2, MemoryMB: 512}
	now := at(time.Hour)
	wantRunner(t, "RegisterRunner after drained", e.register(next, now), next, ward.RunnerActive, 0, now, now)
	wantRunner(t, "GetRunner after re-register", e.getRunner("r1"), next, ward.RunnerActive, 0, now, now)

	// A restart without draining replaces the draining incarnation too.
	e.setState("r1", ward.RunnerDraining, at(2*time.Hour))
	again := newRunner("r1")
	wantRunner(t, "RegisterRunner after draining", e.register(again, at(3*time.Hour)), again, ward.RunnerActive, 0, at(3*time.Hour), at(3*time.Hour))
	if rs := e.listRunners(); len(rs) != 1 {
		t.Fatalf("ListRunners after re-registering = %d runners, want 1", len(rs))
	}
}

func testRunnerArguments(t *testing.T, e *env) {
	for _, tc := range []struct {
		field string
		edit  func(*ward.Runner)
	}{
		{"id", func(r *ward.Runner) { r.ID = "" }},
		{"slots", func(r *ward.Runner) { r.Slots = -1 }},
		{"memory_mb", func(r *ward.Runner) { r.MemoryMB = -1 }},
		{"max_tasks", func(r *ward.Runner) { r.MaxTasks = -1 }},
		{"max_age_s", func(r *ward.Runner) { r.MaxAgeS = -1 }},
	} {
		r := newRunner("r1")
		tc.edit(&r)
		_, err := e.s.RegisterRunner(e.ctx, &store.RegisterRunnerParams{Runner: r, Now: t0})
		wantCode(t, "RegisterRunner with a bad "+tc.field, err, ward.CodeInvalidArgument)
	}
	if rs := e.listRunners(); len(rs) != 0 {
		t.Fatalf("refused registrations left runners: %s", mustJSON(t, rs))
	}
	e.register(newRunner("r1"), t0)
	_, err := e.s.SetRunnerState(e.ctx, &store.SetRunnerStateParams{ID: "r1", State: "paused", Now: t0})
	wantCode(t, "SetRunnerState(paused)", err, ward.CodeInvalidArgument)
	if st := e.getRunner("r1").State; st != ward.RunnerActive {
		t.Fatalf("state after a refused change = %s, want active", st)
	}
}

func testRunnerNotFound(t *testing.T, e *env) {
	e.register(newRunner("r1"), t0)
	_, err := e.s.GetRunner(e.ctx, "nobody")
	wantCode(t, "GetRunner(unknown)", err, ward.CodeNotFound)
	if !errors.Is(err, ward.ErrNotFound) {
		t.Fatalf("GetRunner(unknown) = %v, not ErrNotFound", err)
	}
	_, err = e.s.TouchRunner(e.ctx, "nobody", t0)
	wantCode(t, "TouchRunner(unknown)", err, ward.CodeNotFound)
	_, err = e.s.SetRunnerState(e.ctx, &store.SetRunnerStateParams{ID: "nobody", State: ward.RunnerDraining, Now: t0})
	wantCode(t, "SetRunnerState(unknown)", err, ward.CodeNotFound)
	if rs := e.listRunners(); len(rs) != 1 || rs[0].ID != "r1" {
		t.Fatalf("runners after calls on an unknown one = %s", mustJSON(t, rs))
	}
}

// listRunners lists the runners; the list must be a slice, not nil.
func (e *env) listRunners() []ward.Runner {
	e.t.Helper()
	rs, err := e.s.ListRunners(e.ctx)
	if err != nil {
		e.t.Fatalf("ListRunners: %v", err)
	}
	if rs == nil {
		e.t.Fatalf("ListRunners = nil, want a slice")
	}
	return rs
}

// runnerIDs returns the IDs of runners, in order.
func runnerIDs(rs []ward.Runner) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func testRunnerList(t *testing.T, e *env) {
	if rs := e.listRunners(); len(rs) != 0 {
		t.Fatalf("ListRunners on an empty store = %s", mustJSON(t, rs))
	}
	// Byte order: upper case before lower case, "r-2" before "r10".
	for i, id := range []string{"r10", "r2", "R9", "r-2", "r1"} {
		e.register(newRunner(id), at(time.Duration(i)*time.Second))
	}
	rs := e.listRunners()
	if got, want := runnerIDs(rs), []string{"R9", "r-2", "r1", "r10", "r2"}; !slices.Equal(got, want) {
		t.Fatalf("ListRunners order = %v, want %v", got, want)
	}
	for _, r := range rs {
		wantRunner(t, "listed "+r.ID, r, newRunner(r.ID), ward.RunnerActive, 0, r.RegisteredAt, r.RegisteredAt)
		if g := e.getRunner(r.ID); mustJSON(t, g) != mustJSON(t, r) {
			t.Fatalf("listed runner %s differs from GetRunner:\n%s\n%s", r.ID, mustJSON(t, r), mustJSON(t, g))
		}
	}
	wantTime(t, "r-2 registered", rs[1].RegisteredAt, at(3*time.Second))
}

// running returns the Running counts of GetRunner and ListRunners for each
// runner, which must agree.
func (e *env) running(ids ...string) []int {
	e.t.Helper()
	listed := map[string]int{}
	for _, r := range e.listRunners() {
		listed[r.ID] = r.Running
	}
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = e.getRunner(id).Running
		if l, ok := listed[id]; !ok || l != out[i] {
			e.t.Fatalf("runner %s: GetRunner.Running = %d, ListRunners has %d (listed: %v)", id, out[i], l, ok)
		}
	}
	return out
}

func testRunnerRunning(t *testing.T, e *env) {
	e.project("p")
	e.register(newRunner("a"), t0)
	e.register(newRunner("b"), t0)
	e.register(newRunner("idle"), t0)
	var tasks []store.NewTask
	for range 8 {
		tasks = append(tasks, e.task("p", "f"))
	}
	e.insert(tasks...)
	la := e.lease("a", 4, 1<<20, t0)
	lb := e.lease("b", 2, 1<<20, t0)
	e.lease("unregistered", 1, 1<<20, t0) // counts for no registered runner
	if len(la) != 4 || len(lb) != 2 {
		t.Fatalf("leased %d and %d, want 4 and 2", len(la), len(lb))
	}
	check := func(when string, want ...int) {
		t.Helper()
		if got := e.running("a", "b", "idle"); !slices.Equal(got, want) {
			t.Fatalf("%s: Running of a, b, idle = %v, want %v", when, got, want)
		}
	}
	check("after leasing", 4, 2, 0)
	if r, err := e.s.TouchRunner(e.ctx, "a", at(time.Second)); err != nil || r.Running != 4 {
		t.Fatalf("TouchRunner(a) = running %d, %v; want 4", r.Running, err)
	}

	// A success and a retry both end the run; a stale completion changes nothing.
	retry := store.Completion{TaskID: la[1].Task.ID, LeaseID: la[1].LeaseID, Project: "p", Status: ward.StatusQueued,
		RunAt: at(time.Hour), Error: &ward.TaskError{Code: ward.CodeExitStatus, Message: "exit 1"}, Now: at(time.Second)}
	e.completeOK(succeed(la[0], at(time.Second)), retry)
	e.complete(succeed(la[0], at(time.Second)))
	check("after two completions", 2, 2, 0)

	// A cancelled run ends too.
	if _, err := e.s.CancelTask(e.ctx, &store.CancelParams{Project: "p", ID: la[2].Task.ID, Now: at(2 * time.Second)}); err != nil {
		t.Fatalf("CancelTask: %v", err)
	}
	check("after a cancel", 1, 2, 0)

	// Requeueing a runner's leases moves them out of its count only.
	if _, err := e.s.RequeueRunner(e.ctx, &store.RequeueRunnerParams{RunnerID: "b", Now: at(3 * time.Second)}); err != nil {
		t.Fatalf("RequeueRunner(b): %v", err)
	}
	check("after requeueing b", 1, 0, 0)

	// Leases that expire are reaped from the count.
	if _, err := e.s.ExpireLeases(e.ctx, &store.ExpireParams{Now: at(2 * time.Minute), PlatformRetries: 1}); err != nil {
		t.Fatalf("ExpireLeases: %v", err)
	}
	check("after expiry", 0, 0, 0)

	// A new incarnation still sees the leases the old one holds until they end.
	l := e.leaseOne("a", at(3*time.Minute))
	if r := e.register(newRunner("a"), at(4*time.Minute)); r.Running != 1 {
		t.Fatalf("RegisterRunner(a) with a lease held = running %d, want 1", r.Running)
	}
	if r := e.setState("a", ward.RunnerDraining, at(4*time.Minute)); r.Running != 1 {
		t.Fatalf("SetRunnerState(a) with a lease held = running %d, want 1", r.Running)
	}
	e.completeOK(succeed(l, at(5*time.Minute)))
	check("at the end", 0, 0, 0)
}

func testRunnerTouch(t *testing.T, e *env) {
	in := newRunner("r1")
	e.register(in, t0)
	e.register(newRunner("r2"), t0)
	r, err := e.s.TouchRunner(e.ctx, "r1", at(30*time.Second))
	if err != nil {
		t.Fatalf("TouchRunner: %v", err)
	}
	wantRunner(t, "TouchRunner", r, in, ward.RunnerActive, 0, t0, at(30*time.Second))
	wantRunner(t, "GetRunner after touch", e.getRunner("r1"), in, ward.RunnerActive, 0, t0, at(30*time.Second))
	wantTime(t, "untouched runner's LastSeenAt", e.getRunner("r2").LastSeenAt, t0)

	// The state tells a runner it is asked to drain; the state change does
	// not count as the runner being seen.
	e.setState("r1", ward.RunnerDraining, at(time.Minute))
	wantTime(t, "LastSeenAt after SetRunnerState", e.getRunner("r1").LastSeenAt, at(30*time.Second))
	r, err = e.s.TouchRunner(e.ctx, "r1", at(90*time.Second))
	if err != nil {
		t.Fatalf("TouchRunner: %v", err)
	}
	wantRunner(t, "TouchRunner while draining", r, in, ward.RunnerDraining, 0, t0, at(90*time.Second))
}

func testRunnerState(t *testing.T, e *env) {
	in := newRunner("r1")
	e.register(in, t0)
	e.register(newRunner("direct"), t0)
	step := func(st ward.RunnerState, want ward.RunnerState, now time.Time) {
		t.Helper()
		wantRunner(t, "SetRunnerState("+string(st)+")", e.setState("r1", st, now), in, want, 0, t0, t0)
		wantRunner(t, "GetRunner after SetRunnerState("+string(st)+")", e.getRunner("r1"), in, want, 0, t0, t0)
	}
	refuse := func(st, stays ward.RunnerState) {
		t.Helper()
		_, err := e.s.SetRunnerState(e.ctx, &store.SetRunnerStateParams{ID: "r1", State: st, Now: at(time.Hour)})
		wantCode(t, "SetRunnerState("+string(stays)+" → "+string(st)+")", err, ward.CodeInvalidState)
		if got := e.getRunner("r1").State; got != stays {
			t.Fatalf("state after a refused change to %s = %s, want %s", st, got, stays)
		}
	}
	step(ward.RunnerActive, ward.RunnerActive, at(time.Second)) // no-op
	step(ward.RunnerDraining, ward.RunnerDraining, at(2*time.Second))
	step(ward.RunnerDraining, ward.RunnerDraining, at(3*time.Second)) // no-op
	refuse(ward.RunnerActive, ward.RunnerDraining)
	step(ward.RunnerDrained, ward.RunnerDrained, at(4*time.Second))
	step(ward.RunnerDrained, ward.RunnerDrained, at(5*time.Second)) // no-op
	refuse(ward.RunnerDraining, ward.RunnerDrained)
	refuse(ward.RunnerActive, ward.RunnerDrained)

	// Forward moves may skip draining; the other runner is left alone.
	if r := e.setState("direct", ward.RunnerDrained, at(time.Second)); r.State != ward.RunnerDrained {
		t.Fatalf("SetRunnerState(active → drained) = %s", r.State)
	}
	e.register(newRunner("other"), t0)
	if st := e.getRunner("other").State; st != ward.RunnerActive {
		t.Fatalf("an unrelated runner is %s, want active", st)
	}
}

// joinHash is the hash stored for a join token secret.
func joinHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// createJoin records a join token for secret, made at t0, expiring at expires.
func (e *env) createJoin(id, secret string, expires time.Time) {
	e.t.Helper()
	err := e.s.CreateJoinToken(e.ctx, &store.CreateJoinTokenParams{ID: id, Hash: joinHash(secret), CreatedBy: "tok_admin",
		CreatedAt: t0, ExpiresAt: expires})
	if err != nil {
		e.t.Fatalf("CreateJoinToken(%s): %v", id, err)
	}
}

// consume uses a join token with hash at now for runner.
func (e *env) consume(id string, hash []byte, runner string, now time.Time) error {
	return e.s.ConsumeJoinToken(e.ctx, &store.ConsumeJoinTokenParams{ID: id, Hash: hash, RunnerID: runner, Now: now})
}

// wantJoinInvalid fails unless err is the join token refusal.
func wantJoinInvalid(t *testing.T, what string, err error) {
	t.Helper()
	wantCode(t, what, err, ward.CodeJoinTokenInvalid)
	if !errors.Is(err, ward.ErrJoinTokenInvalid) {
		t.Fatalf("%s: %v is not ErrJoinTokenInvalid", what, err)
	}
}

func testJoinToken(t *testing.T, e *env) {
	e.createJoin("jt_1", "secret-1", at(time.Hour))
	e.createJoin("jt_2", "secret-2", at(time.Hour))
	if err := e.consume("jt_1", joinHash("secret-1"), "r1", at(time.Minute)); err != nil {
		t.Fatalf("ConsumeJoinToken: %v", err)
	}
	wantJoinInvalid(t, "second use", e.consume("jt_1", joinHash("secret-1"), "r1", at(2*time.Minute)))
	wantJoinInvalid(t, "second use by another runner", e.consume("jt_1", joinHash("secret-1"), "r2", at(2*time.Minute)))
	// Another token's secret does not open it, and its own is still good.
	wantJoinInvalid(t, "jt_2 with jt_1's secret", e.consume("jt_2", joinHash("secret-1"), "r2", at(2*time.Minute)))
	if err := e.consume("jt_2", joinHash("secret-2"), "r2", at(2*time.Minute)); err != nil {
		t.Fatalf("ConsumeJoinToken(jt_2): %v", err)
	}
}

func testJoinTokenWrongHash(t *testing.T, e *env) {
	e.createJoin("jt_1", "secret", at(time.Hour))
	right := joinHash("secret")
	flipped := slices.Clone(right)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name string
		hash []byte
	}{
		{"other secret", joinHash("guess")},
		{"last bit flipped", flipped},
		{"prefix", right[:16]},
		{"longer", append(slices.Clone(right), 0)},
		{"empty", nil},
	} {
		wantJoinInvalid(t, "hash: "+tc.name, e.consume("jt_1", tc.hash, "r1", at(time.Minute)))
	}
	// Wrong guesses do not use the token up.
	if err := e.consume("jt_1", right, "r1", at(time.Minute)); err != nil {
		t.Fatalf("ConsumeJoinToken with the right hash after wrong ones: %v", err)
	}
	wantJoinInvalid(t, "after use", e.consume("jt_1", right, "r1", at(time.Minute)))
}

func testJoinTokenExpiry(t *testing.T, e *env) {
	expires := at(10 * time.Minute)
	e.createJoin("jt_at", "s", expires)
	e.createJoin("jt_after", "s", expires)
	e.createJoin("jt_before", "s", expires)
	wantJoinInvalid(t, "at ExpiresAt", e.consume("jt_at", joinHash("s"), "r1", expires))
	wantJoinInvalid(t, "after ExpiresAt", e.consume("jt_after", joinHash("s"), "r1", expires.Add(time.Hour)))
	if err := e.consume("jt_before", joinHash("s"), "r1", expires.Add(-time.Microsecond)); err != nil {
		t.Fatalf("ConsumeJoinToken a microsecond before expiry: %v", err)
	}
	// A token refused as expired is not used: still refused as expired,
	// still usable at a time before its expiry.
	if err := e.consume("jt_at", joinHash("s"), "r1", t0); err != nil {
		t.Fatalf("ConsumeJoinToken before expiry after a refusal at expiry: %v", err)
	}
}

func testJoinTokenUnknown(t *testing.T, e *env) {
	wantJoinInvalid(t, "empty store", e.consume("jt_1", joinHash("s"), "r1", t0))
	e.createJoin("jt_1", "s", at(time.Hour))
	wantJoinInvalid(t, "unknown ID", e.consume("jt_2", joinHash("s"), "r1", t0))
	wantJoinInvalid(t, "empty ID", e.consume("", joinHash("s"), "r1", t0))
}

func testJoinTokenDuplicate(t *testing.T, e *env) {
	e.createJoin("jt_1", "first", at(time.Hour))
	err := e.s.CreateJoinToken(e.ctx, &store.CreateJoinTokenParams{ID: "jt_1", Hash: joinHash("second"), CreatedBy: "tok_admin",
		CreatedAt: t0, ExpiresAt: at(2 * time.Hour)})
	wantCode(t, "CreateJoinToken(duplicate ID)", err, ward.CodeAlreadyExists)
	// The first token stands, expiry included.
	wantJoinInvalid(t, "the duplicate's secret", e.consume("jt_1", joinHash("second"), "r1", t0))
	wantJoinInvalid(t, "the duplicate's expiry", e.consume("jt_1", joinHash("first"), "r1", at(90*time.Minute)))
	if err := e.consume("jt_1", joinHash("first"), "r1", t0); err != nil {
		t.Fatalf("ConsumeJoinToken(first): %v", err)
	}
	// A used token's ID is still taken.
	err = e.s.CreateJoinToken(e.ctx, &store.CreateJoinTokenParams{ID: "jt_1", Hash: joinHash("third"), CreatedAt: t0, ExpiresAt: at(time.Hour)})
	wantCode(t, "CreateJoinToken(used ID)", err, ward.CodeAlreadyExists)
}

func testJoinTokenArguments(t *testing.T, e *env) {
	err := e.s.CreateJoinToken(e.ctx, &store.CreateJoinTokenParams{ID: "", Hash: joinHash("s"), CreatedAt: t0, ExpiresAt: at(time.Hour)})
	wantCode(t, "CreateJoinToken(no ID)", err, ward.CodeInvalidArgument)
	err = e.s.CreateJoinToken(e.ctx, &store.CreateJoinTokenParams{ID: "jt_1", CreatedAt: t0, ExpiresAt: at(time.Hour)})
	wantCode(t, "CreateJoinToken(no hash)", err, ward.CodeInvalidArgument)
	// Nothing was recorded: the ID is free.
	e.createJoin("jt_1", "s", at(time.Hour))
	wantCode(t, "ConsumeJoinToken(no runner)", e.consume("jt_1", joinHash("s"), "", t0), ward.CodeInvalidArgument)
	if err := e.consume("jt_1", joinHash("s"), "r1", t0); err != nil {
		t.Fatalf("ConsumeJoinToken after a refused call: %v", err)
	}
}

func testJoinTokenConcurrent(t *testing.T, e *env) {
	const tokens, workers = 5, 8
	for i := range tokens {
		e.createJoin(fmt.Sprintf("jt_%d", i), "s", at(time.Hour))
	}
	for i := range tokens {
		id := fmt.Sprintf("jt_%d", i)
		start := make(chan struct{})
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				<-start
				errs[w] = e.consume(id, joinHash("s"), fmt.Sprintf("r%d", w), at(time.Minute))
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for w, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ward.ErrJoinTokenInvalid):
				t.Fatalf("%s: worker %d: %v, want nil or ErrJoinTokenInvalid", id, w, err)
			}
		}
		if ok != 1 {
			t.Fatalf("%s: %d of %d concurrent uses succeeded, want exactly 1", id, ok, workers)
		}
	}
}
