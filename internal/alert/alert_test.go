package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/sqlite"
)

var t0 = time.Date(2030, time.May, 6, 7, 8, 9, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// fakeRejections is a settable rejection counter.
type fakeRejections struct {
	mu sync.Mutex
	n  map[string]float64
}

func (f *fakeRejections) Rejections(project, function string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[project+"/"+function]
}

func (f *fakeRejections) set(key string, v float64) {
	f.mu.Lock()
	f.n[key] = v
	f.mu.Unlock()
}

// receiver is a webhook endpoint that verifies each delivery's signature
// against the clock and records the notifications, or answers with the
// statuses of answers first.
type receiver struct {
	t      *testing.T
	secret []byte
	clock  *clock
	mu     sync.Mutex
	got    []ward.AlertNotification
	bad    int
	script []int // statuses to answer, in order; then 200
	srv    *httptest.Server
}

func newReceiver(t *testing.T, secret string, c *clock, script ...int) *receiver {
	r := &receiver{t: t, secret: []byte(secret), clock: c, script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := Verify(r.secret, req.Header.Get(ward.SignatureHeader), body, r.clock.Now(), DefaultTolerance); err != nil {
			r.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if len(r.script) > 0 {
			status := r.script[0]
			r.script = r.script[1:]
			w.WriteHeader(status)
			return
		}
		var n ward.AlertNotification
		if err := json.Unmarshal(body, &n); err != nil {
			r.bad++
			return
		}
		r.got = append(r.got, n)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) states() []ward.AlertState {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ward.AlertState
	for _, n := range r.got {
		out = append(out, n.State)
	}
	return out
}

// bundle is one test's store, clock and evaluator.
type bundle struct {
	t   *testing.T
	ctx context.Context
	st  store.Store
	c   *clock
	rej *fakeRejections
	e   *Evaluator
	n   int
}

func newBundle(t *testing.T) *bundle {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ward.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &bundle{t: t, ctx: ctx, st: st, c: &clock{t: t0}, rej: &fakeRejections{n: map[string]float64{}}}
	b.e = New(Options{Store: st, Rejections: b.rej, Now: b.c.Now, Interval: 5 * time.Second, Backoff: time.Millisecond, Timeout: 2 * time.Second})
	if _, err := st.CreateProject(ctx, &store.CreateProjectParams{Name: "p", Now: t0}); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"f", "g"} {
		if _, err := st.PutFunction(ctx, &store.PutFunctionParams{Project: "p", Name: fn, Spec: ward.DefaultSpec(), Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// rule creates a rule.
func (b *bundle) rule(name string, metric ward.AlertMetric, function string, op ward.AlertOp, threshold float64, forD time.Duration, webhook, secret string) {
	b.t.Helper()
	spec := ward.AlertSpec{Metric: metric, Function: function, Op: op, Threshold: threshold, For: forD.String(), Webhook: webhook}
	if _, err := b.st.PutAlert(b.ctx, &store.PutAlertParams{Project: "p", Name: name, Spec: spec, ForMs: forD.Milliseconds(), Secret: []byte(secret), Now: t0}); err != nil {
		b.t.Fatal(err)
	}
}

// submit inserts n tasks of a function at now with run_at now.
func (b *bundle) submit(fn string, n int, now time.Time) []string {
	b.t.Helper()
	var tasks []store.NewTask
	var ids []string
	for range n {
		b.n++
		id := fmt.Sprintf("t_%06d", b.n)
		ids = append(ids, id)
		tasks = append(tasks, store.NewTask{ID: id, Project: "p", Function: fn, CodeDigest: ward.Digest([]byte("c")), RunAt: now,
			TimeoutS: 30, MemoryMB: 16, MaxAttempts: 1, Payload: []byte("{}")})
	}
	if _, err := b.st.InsertTasks(b.ctx, &store.InsertTasksParams{Tasks: tasks, Now: now}); err != nil {
		b.t.Fatal(err)
	}
	return ids
}

// run leases one task at start and finishes it at end.
func (b *bundle) run(start, end time.Time, status ward.Status) {
	b.t.Helper()
	ls, err := b.st.LeaseTasks(b.ctx, &store.LeaseParams{RunnerID: "r", Max: 1, FreeMemoryMB: 1 << 20, TTL: time.Hour, Now: start})
	if err != nil || len(ls) != 1 {
		b.t.Fatalf("lease: %v, %d", err, len(ls))
	}
	if status == ward.StatusRunning {
		return
	}
	c := store.Completion{TaskID: ls[0].Task.ID, LeaseID: ls[0].LeaseID, Project: "p", Status: status, Now: end}
	if status == ward.StatusFailed {
		c.Error = &ward.TaskError{Code: ward.CodeExitStatus, Message: "exit 1"}
	}
	if _, err := b.st.CompleteTasks(b.ctx, &store.CompleteParams{Completions: []store.Completion{c}}); err != nil {
		b.t.Fatal(err)
	}
}

// evaluate evaluates at now and delivers the queued webhooks.
func (b *bundle) evaluate(now time.Time) {
	b.t.Helper()
	b.c.Set(now)
	if err := b.e.Evaluate(b.ctx); err != nil {
		b.t.Fatalf("Evaluate: %v", err)
	}
	for {
		select {
		case d := <-b.e.queue:
			b.e.deliver(b.ctx, d)
		default:
			return
		}
	}
}

func (b *bundle) alert(name string) store.AlertRecord {
	b.t.Helper()
	r, err := b.st.GetAlert(b.ctx, "p", name)
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

func (b *bundle) history(name string) []ward.AlertEvent {
	b.t.Helper()
	evs, err := b.st.ListAlertEvents(b.ctx, &store.ListAlertEventsParams{Project: "p", Name: name})
	if err != nil {
		b.t.Fatal(err)
	}
	return evs
}

func TestTransition(t *testing.T) {
	t.Parallel()
	forD := 10 * time.Second
	for _, c := range []struct {
		cur     ward.AlertState
		since   time.Duration // before now
		holds   bool
		forD    time.Duration
		want    ward.AlertState
		changed bool
	}{
		{ward.AlertOK, time.Hour, false, forD, ward.AlertOK, false},
		{ward.AlertOK, time.Hour, true, forD, ward.AlertPending, true},
		{ward.AlertOK, time.Hour, true, 0, ward.AlertFiring, true},
		{ward.AlertPending, 9 * time.Second, true, forD, ward.AlertPending, false},
		{ward.AlertPending, 10 * time.Second, true, forD, ward.AlertFiring, true},
		{ward.AlertPending, 9 * time.Second, false, forD, ward.AlertOK, true},
		{ward.AlertFiring, time.Hour, true, forD, ward.AlertFiring, false},
		{ward.AlertFiring, time.Second, false, forD, ward.AlertResolved, true},
		{ward.AlertResolved, time.Second, false, forD, ward.AlertOK, true},
		{ward.AlertResolved, time.Second, true, forD, ward.AlertPending, true},
		{"", 0, false, forD, ward.AlertOK, true},
	} {
		now := t0.Add(time.Hour)
		cur := store.AlertStateRecord{State: c.cur, Since: now.Add(-c.since)}
		if c.cur == "" {
			cur = store.AlertStateRecord{}
		}
		u := transition("p", "r", cur, c.holds, c.forD, 7, now)
		changed := u.Event != nil
		if u.State != c.want || changed != c.changed {
			t.Errorf("%s for %v, holds %v: → %s (changed %v), want %s (changed %v)", c.cur, c.since, c.holds, u.State, changed, c.want, c.changed)
		}
		if changed && (!u.Since.Equal(now) || u.Event.State != c.want || u.Event.Value != 7) {
			t.Errorf("%s → %s: update %+v, event %+v", c.cur, u.State, u, u.Event)
		}
		if !changed && c.cur != "" && !u.Since.Equal(cur.Since) {
			t.Errorf("%s unchanged moved since to %v", c.cur, u.Since)
		}
	}
}

// A rule goes pending, fires once its condition held for its for, and
// resolves when it stops; each change reaches the receiver signed.
func TestFiresAndResolves(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	const secret = "test-signing-secret-123"
	rcv := newReceiver(t, secret, b.c)
	b.rule("deep", ward.MetricQueueDepth, "f", ward.OpGT, 2, 10*time.Second, rcv.srv.URL, secret)
	b.submit("f", 3, t0)
	b.submit("g", 5, t0) // another function's tasks do not count

	step := func(at time.Duration, want ward.AlertState) {
		t.Helper()
		b.evaluate(t0.Add(at))
		if got := b.alert("deep"); got.State != want {
			t.Fatalf("at +%v: state %s (value %v), want %s", at, got.State, got.Value, want)
		}
	}
	step(0, ward.AlertPending)
	step(5*time.Second, ward.AlertPending)
	step(10*time.Second, ward.AlertFiring)
	step(15*time.Second, ward.AlertFiring)
	if got := b.alert("deep"); got.Value != 3 || !got.Since.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("firing rule: value %v since %v", got.Value, got.Since)
	}
	b.run(t0.Add(16*time.Second), t0.Add(17*time.Second), ward.StatusSucceeded) // 2 left: not > 2
	step(20*time.Second, ward.AlertResolved)
	step(25*time.Second, ward.AlertOK)
	if got, want := rcv.states(), []ward.AlertState{ward.AlertPending, ward.AlertFiring, ward.AlertResolved}; !slices.Equal(got, want) {
		t.Fatalf("receiver got %v, want %v", got, want)
	}
	if rcv.bad != 0 {
		t.Fatalf("%d deliveries failed verification", rcv.bad)
	}
	n := rcv.got[1]
	if n.Alert != "deep" || n.Project != "p" || n.Function != "f" || n.Metric != ward.MetricQueueDepth || n.Value != 3 || n.Threshold != 2 ||
		!n.At.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("firing notification = %+v", n)
	}
	var states []ward.AlertState
	deliveries := 0
	for _, ev := range b.history("deep") {
		switch ev.Kind {
		case ward.EventState:
			states = append(states, ev.State)
		case ward.EventDelivery:
			deliveries++
			if ev.StatusCode != 200 || ev.Attempt != 1 || ev.Error != "" {
				t.Errorf("delivery %+v", ev)
			}
		}
	}
	if want := []ward.AlertState{ward.AlertOK, ward.AlertResolved, ward.AlertFiring, ward.AlertPending}; !slices.Equal(states, want) {
		t.Fatalf("history states (newest first) %v, want %v", states, want)
	}
	if deliveries != 3 {
		t.Fatalf("history holds %d deliveries, want 3", deliveries)
	}
}

// A condition that stops holding within for never fires, and pending
// starts over when it holds again.
func TestFlappingDoesNotFire(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	b.rule("deep", ward.MetricQueueDepth, "", ward.OpGE, 2, 10*time.Second, "http://127.0.0.1:1/unused", "s")
	b.submit("f", 2, t0)
	for i, want := range []ward.AlertState{ward.AlertPending, ward.AlertPending} {
		b.evaluate(t0.Add(time.Duration(i) * 5 * time.Second))
		if got := b.alert("deep").State; got != want {
			t.Fatalf("step %d: %s, want %s", i, got, want)
		}
	}
	b.run(t0.Add(6*time.Second), t0.Add(7*time.Second), ward.StatusSucceeded)
	b.evaluate(t0.Add(8 * time.Second))
	if got := b.alert("deep").State; got != ward.AlertOK {
		t.Fatalf("after the flap: %s, want ok", got)
	}
	b.submit("f", 1, t0.Add(9*time.Second))
	for _, at := range []time.Duration{9, 14, 18} {
		b.evaluate(t0.Add(at * time.Second))
		if got := b.alert("deep").State; got != ward.AlertPending {
			t.Fatalf("at +%ds: %s, want pending (held only since +9s)", at, got)
		}
	}
	b.evaluate(t0.Add(19 * time.Second))
	if got := b.alert("deep").State; got != ward.AlertFiring {
		t.Fatalf("at +19s: %s, want firing", got)
	}
	for _, ev := range b.history("deep") {
		if ev.Kind == ward.EventState && ev.State == ward.AlertFiring && !ev.At.Equal(t0.Add(19*time.Second)) {
			t.Fatalf("fired before +19s: %+v", ev)
		}
	}
}

// Each metric is computed right on a known store state.
func TestMetrics(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	now := t0.Add(10 * time.Minute)
	// f: 4 tasks in the window: waits 1s, 2s, 3s (finished) and one running;
	// two of the finished ones failed. One more queued and due.
	b.submit("f", 4, now.Add(-50*time.Second))
	b.run(now.Add(-49*time.Second), now.Add(-40*time.Second), ward.StatusFailed)
	b.run(now.Add(-48*time.Second), now.Add(-30*time.Second), ward.StatusSucceeded)
	b.run(now.Add(-47*time.Second), now.Add(-20*time.Second), ward.StatusFailed)
	b.run(now.Add(-46*time.Second), time.Time{}, ward.StatusRunning)
	b.submit("f", 1, now.Add(-10*time.Second))
	// g: 2 tasks before the window, one delayed past now (not due).
	b.submit("g", 2, now.Add(-5*time.Minute))
	if _, err := b.st.InsertTasks(b.ctx, &store.InsertTasksParams{Now: now.Add(-5 * time.Second), Tasks: []store.NewTask{{
		ID: "t_later", Project: "p", Function: "g", CodeDigest: ward.Digest([]byte("c")), RunAt: now.Add(time.Hour), TimeoutS: 30, MemoryMB: 16, MaxAttempts: 1,
	}}}); err != nil {
		t.Fatal(err)
	}
	b.rej.set("p/f", 5)
	b.rej.set("p/", 7)

	cases := []struct {
		metric   ward.AlertMetric
		function string
		want     float64
	}{
		{ward.MetricQueueDepth, "f", 1},
		{ward.MetricQueueDepth, "g", 2},
		{ward.MetricQueueDepth, "", 3},
		{ward.MetricRunning, "f", 1},
		{ward.MetricRunning, "g", 0},
		{ward.MetricWaitP95, "f", 3},
		{ward.MetricWaitP95, "g", 0},
		{ward.MetricFailureRate, "f", 2.0 / 3},
		{ward.MetricFailureRate, "", 2.0 / 3},
		{ward.MetricFailureRate, "g", 0},
		{ward.MetricSubmitRate, "f", 5.0 / 60},
		{ward.MetricSubmitRate, "", 6.0 / 60},
		{ward.MetricLimitRejections, "f", 0}, // the first sample is the baseline
	}
	for i, c := range cases {
		b.rule(fmt.Sprintf("r%d", i), c.metric, c.function, ward.OpGT, 1e9, 5*time.Second, "http://127.0.0.1:1/unused", "s")
	}
	b.evaluate(now)
	for i, c := range cases {
		if got := b.alert(fmt.Sprintf("r%d", i)).Value; math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s (%q) = %v, want %v", c.metric, c.function, got, c.want)
		}
	}
	// Rejections count the increase over the window.
	b.rej.set("p/f", 9)
	b.evaluate(now.Add(30 * time.Second))
	if got := b.alert(fmt.Sprintf("r%d", len(cases)-1)).Value; got != 4 {
		t.Errorf("limit_rejections after 4 more = %v, want 4", got)
	}
	b.rej.set("p/f", 10)
	b.evaluate(now.Add(95 * time.Second)) // the sample at +30s is the baseline now
	if got := b.alert(fmt.Sprintf("r%d", len(cases)-1)).Value; got != 1 {
		t.Errorf("limit_rejections a window later = %v, want 1", got)
	}
}

// fakeCounts serves fixed task counts and counts its reads.
type fakeCounts struct {
	mu     sync.Mutex
	counts []store.TaskCount
	reads  int
}

func (f *fakeCounts) Read(context.Context) ([]store.TaskCount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.counts, nil
}

// queue_depth and running come from Options.Counts, read once per
// evaluation, not from the store.
func TestCountsFromOptions(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	fc := &fakeCounts{counts: []store.TaskCount{
		{Project: "p", Function: "f", Due: 7, Running: 2},
		{Project: "p", Function: "g", Due: 4, Running: 1},
		{Project: "q", Function: "f", Due: 100, Running: 100},
	}}
	b.e = New(Options{Store: b.st, Counts: fc, Now: b.c.Now, Interval: 5 * time.Second})
	b.submit("f", 3, t0) // in the store, but the counts say otherwise
	b.rule("depth", ward.MetricQueueDepth, "f", ward.OpGT, 1e9, 0, "http://127.0.0.1:1/unused", "s")
	b.rule("all", ward.MetricQueueDepth, "", ward.OpGT, 1e9, 0, "http://127.0.0.1:1/unused", "s")
	b.rule("running", ward.MetricRunning, "", ward.OpGT, 1e9, 0, "http://127.0.0.1:1/unused", "s")
	b.evaluate(t0)
	for name, want := range map[string]float64{"depth": 7, "all": 11, "running": 3} {
		if got := b.alert(name).Value; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if fc.reads != 1 {
		t.Errorf("counts read %d times in one evaluation, want 1", fc.reads)
	}
}

func TestP95(t *testing.T) {
	t.Parallel()
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond
	}
	if got := P95(ds); got != 95*time.Millisecond {
		t.Errorf("P95(1..100ms) = %v", got)
	}
	if got := P95([]time.Duration{time.Second}); got != time.Second {
		t.Errorf("P95(one) = %v", got)
	}
	if got := P95(nil); got != 0 {
		t.Errorf("P95(none) = %v", got)
	}
	// 1..100 ms in any order: the q-th percentile is q ms.
	got := Percentiles(ds, 50, 95, 100, 1, 0, 200)
	want := []time.Duration{50, 95, 100, 1, 1, 100}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Errorf("Percentiles(1..100ms)[%d] = %v, want %v", i, got[i], want[i]*time.Millisecond)
		}
	}
	// Three values: the median is the second, p95 the third.
	if got := Percentiles([]time.Duration{30, 10, 20}, 50, 95); got[0] != 20 || got[1] != 30 {
		t.Errorf("Percentiles(10,20,30) p50, p95 = %v, want 20, 30", got)
	}
	if got := Percentiles(nil, 50, 95); len(got) != 2 || got[0] != 0 || got[1] != 0 {
		t.Errorf("Percentiles(none) = %v, want two zeros", got)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Percentiles sorted its argument")
	}
}

// A receiver answering 500 gets the webhook again; both attempts are in
// the history.
func TestDeliveryRetried(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	const secret = "retry-signing-secret-1"
	rcv := newReceiver(t, secret, b.c, http.StatusInternalServerError)
	b.rule("busy", ward.MetricRunning, "", ward.OpGE, 0, 0, rcv.srv.URL, secret)
	b.evaluate(t0) // running 0 >= 0: fires at once (for 0)
	if got := rcv.states(); !slices.Equal(got, []ward.AlertState{ward.AlertFiring}) {
		t.Fatalf("receiver got %v", got)
	}
	evs := b.history("busy")
	if len(evs) != 3 || evs[0].Attempt != 2 || evs[0].StatusCode != 200 || evs[0].Error != "" ||
		evs[1].Attempt != 1 || evs[1].StatusCode != 500 || evs[1].Error == "" || evs[2].Kind != ward.EventState {
		t.Fatalf("history = %+v", evs)
	}
}

// A receiver that never answers does not hold up evaluation: deliveries
// wait in the queue (or are dropped when it is full, which the history
// says), and the evaluator keeps going.
func TestHangingReceiver(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(func() { close(release); srv.Close() })
	b.e = New(Options{Store: b.st, Now: b.c.Now, Interval: 5 * time.Second, Queue: 1, Timeout: time.Hour})
	b.rule("a", ward.MetricRunning, "", ward.OpGE, 0, 0, srv.URL, "s")
	b.rule("b", ward.MetricRunning, "", ward.OpGE, 0, 0, srv.URL, "s")
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	go b.e.deliverLoop(ctx) // one worker, stuck on the first delivery
	b.c.Set(t0)
	if err := b.e.Evaluate(b.ctx); err != nil {
		t.Fatal(err)
	}
	// a's and b's firing: one is taken by the worker or waits in the
	// queue of 1; evaluations go on while the receiver hangs.
	b.rule("c", ward.MetricRunning, "", ward.OpGE, 0, 0, srv.URL, "s")
	b.rule("d", ward.MetricRunning, "", ward.OpGE, 0, 0, srv.URL, "s")
	b.c.Set(t0.Add(5 * time.Second))
	if err := b.e.Evaluate(b.ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		if got := b.alert(name).State; got != ward.AlertFiring {
			t.Fatalf("%s: %s, want firing", name, got)
		}
	}
	dropped := 0
	for _, name := range []string{"a", "b", "c", "d"} {
		for _, ev := range b.history(name) {
			if ev.Kind == ward.EventDelivery && ev.Error == "delivery queue full" {
				dropped++
			}
		}
	}
	if dropped < 1 {
		t.Fatalf("with a hanging receiver and a queue of 1, no delivery of 4 was dropped")
	}
}

// The lock lets one evaluator of two sharing a store move rules.
func TestOneEvaluatorAtATime(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	other := New(Options{Store: b.st, Now: b.c.Now, Interval: 5 * time.Second, Holder: "other"})
	b.rule("busy", ward.MetricRunning, "", ward.OpGE, 0, 0, "http://127.0.0.1:1/unused", "s")
	b.c.Set(t0)
	if err := other.Evaluate(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.evaluate(t0.Add(time.Second)) // other holds the lock: nothing happens
	if n := len(b.history("busy")); n != 1 {
		t.Fatalf("history after two evaluators = %d events, want 1", n)
	}
	// Once other's lock lapses (3 intervals), b takes over.
	b.rule("busy2", ward.MetricRunning, "", ward.OpGE, 0, 0, "http://127.0.0.1:1/unused", "s")
	b.evaluate(t0.Add(16 * time.Second))
	if got := b.alert("busy2").State; got != ward.AlertFiring {
		t.Fatalf("after the lock lapsed: %s", got)
	}
}

// The builtin rule fires on a surge of submissions and tells OnSurge.
func TestSubmitSurge(t *testing.T) {
	t.Parallel()
	b := newBundle(t)
	var mu sync.Mutex
	var told []ward.AlertNotification
	b.e = New(Options{Store: b.st, Now: b.c.Now, Interval: 5 * time.Second, OnSurge: func(_ context.Context, n ward.AlertNotification) {
		mu.Lock()
		told = append(told, n)
		mu.Unlock()
	}})
	now := t0.Add(time.Hour)
	b.submit("f", 225, now.Add(-10*time.Minute)) // baseline: 15 a minute
	b.evaluate(now)
	if st, err := b.st.GetAlertState(b.ctx, "p", ward.BuiltinSubmitSurge); err != nil || st.State != ward.AlertOK {
		t.Fatalf("builtin before a surge = %+v, %v", st, err)
	}
	b.submit("f", 120, now.Add(20*time.Second)) // over the floor, but not 10× 15/min
	b.evaluate(now.Add(40 * time.Second))
	if st, _ := b.st.GetAlertState(b.ctx, "p", ward.BuiltinSubmitSurge); st.State != ward.AlertOK {
		t.Fatalf("builtin at 120/min over 15/min = %s, want ok", st.State)
	}
	b.submit("f", 81, now.Add(50*time.Second)) // 201 in the last minute > 10 × 15
	b.evaluate(now.Add(80 * time.Second))
	st, err := b.st.GetAlertState(b.ctx, "p", ward.BuiltinSubmitSurge)
	if err != nil || st.State != ward.AlertFiring || st.Value != 201 {
		t.Fatalf("builtin after a surge = %+v, %v", st, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 1 || told[0].State != ward.AlertFiring || told[0].Project != "p" || told[0].Value != 201 {
		t.Fatalf("OnSurge told %+v", told)
	}
}

func TestSurging(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		last, base int
		want       bool
	}{{100, 0, false}, {101, 0, true}, {101, 150, true}, {150, 225, false}, {151, 225, true}, {1000, 15000, false}} {
		if got := Surging(c.last, c.base); got != c.want {
			t.Errorf("Surging(%d, %d) = %v, want %v", c.last, c.base, got, c.want)
		}
	}
}
