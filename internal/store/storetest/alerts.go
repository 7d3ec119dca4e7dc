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

// alertTests cover alert rules, their state and history, the task figures
// over a window they read, and the evaluation lock.
var alertTests = []test{
	{"AlertRules", testAlertRules},
	{"AlertStates", testAlertStates},
	{"AlertHistoryBounded", testAlertHistoryBounded},
	{"TaskWindow", testTaskWindow},
	{"AcquireLock", testAcquireLock},
}

func alertSpec(metric ward.AlertMetric, threshold float64) ward.AlertSpec {
	return ward.AlertSpec{Metric: metric, Op: ward.OpGT, Threshold: threshold, For: "1m0s", Webhook: "https://example.test/hook"}
}

func (e *env) putAlert(project, name string, spec ward.AlertSpec, secret []byte, keep bool, now time.Time) store.PutAlertResult {
	e.t.Helper()
	res, err := e.s.PutAlert(e.ctx, &store.PutAlertParams{Project: project, Name: name, Spec: spec, ForMs: 60000, Secret: secret, KeepSecret: keep, Now: now})
	if err != nil {
		e.t.Fatalf("PutAlert(%s/%s): %v", project, name, err)
	}
	return res
}

func testAlertRules(t *testing.T, e *env) {
	e.project("p", "q")
	spec := alertSpec(ward.MetricQueueDepth, 10)
	spec.Function = "f"
	res := e.putAlert("p", "deep", spec, []byte("first-secret-000"), true, t0)
	if !res.Created || res.Alert.Name != "deep" || res.Alert.Project != "p" || res.Alert.AlertSpec != spec || res.Alert.State != ward.AlertOK {
		t.Fatalf("PutAlert (create) = %+v", res)
	}
	wantTime(t, "CreatedAt", res.Alert.CreatedAt, t0)
	if res.Alert.Since != nil || res.Alert.EvaluatedAt != nil {
		t.Fatalf("a new rule has a state time: %+v", res.Alert)
	}
	// KeepSecret on update keeps the first secret; the spec changes.
	spec2 := alertSpec(ward.MetricFailureRate, 0.5)
	res = e.putAlert("p", "deep", spec2, []byte("second-secret-00"), true, at(time.Minute))
	if res.Created || res.Alert.AlertSpec != spec2 {
		t.Fatalf("PutAlert (update) = %+v", res)
	}
	wantTime(t, "CreatedAt (kept)", res.Alert.CreatedAt, t0)
	wantTime(t, "UpdatedAt", res.Alert.UpdatedAt, at(time.Minute))
	got, err := e.s.GetAlert(e.ctx, "p", "deep")
	if err != nil || !bytes.Equal(got.Secret, []byte("first-secret-000")) || got.ForMs != 60000 || got.For() != time.Minute {
		t.Fatalf("GetAlert after a kept secret = %+v, %v", got, err)
	}
	// Without KeepSecret the secret is replaced.
	e.putAlert("p", "deep", spec2, []byte("third-secret-000"), false, at(time.Minute))
	if got, err = e.s.GetAlert(e.ctx, "p", "deep"); err != nil || !bytes.Equal(got.Secret, []byte("third-secret-000")) {
		t.Fatalf("GetAlert after a new secret = %+v, %v", got, err)
	}
	e.putAlert("p", "alpha", alertSpec(ward.MetricRunning, 1), []byte("s"), true, t0)
	e.putAlert("q", "deep", alertSpec(ward.MetricRunning, 1), []byte("s"), true, t0)
	names := func(recs []store.AlertRecord) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.Project+"/"+r.Name)
		}
		return out
	}
	if l, err := e.s.ListAlerts(e.ctx, "p"); err != nil || !slices.Equal(names(l), []string{"p/alpha", "p/deep"}) {
		t.Fatalf("ListAlerts(p) = %v, %v", names(l), err)
	}
	if l, err := e.s.ListAlerts(e.ctx, ""); err != nil || !slices.Equal(names(l), []string{"p/alpha", "p/deep", "q/deep"}) {
		t.Fatalf("ListAlerts(all) = %v, %v", names(l), err)
	}
	if l, err := e.s.ListAlerts(e.ctx, "nope"); err != nil || len(l) != 0 || l == nil {
		t.Fatalf("ListAlerts(missing) = %#v, %v; want an empty list", l, err)
	}
	if n, err := e.s.CountAlerts(e.ctx, "p"); err != nil || n != 2 {
		t.Fatalf("CountAlerts(p) = %d, %v", n, err)
	}
	if _, err := e.s.PutAlert(e.ctx, &store.PutAlertParams{Project: "nope", Name: "x", Spec: spec, Secret: []byte("s"), Now: t0}); ward.CodeOf(err) != ward.CodeNotFound {
		t.Fatalf("PutAlert(missing project): %v, want not_found", err)
	}
	if _, err := e.s.PutAlert(e.ctx, &store.PutAlertParams{Project: "p", Name: "x", Spec: spec, Now: t0}); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Fatalf("PutAlert(no secret): %v, want invalid_argument", err)
	}
	if err := e.s.DeleteAlert(e.ctx, "p", "deep"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.GetAlert(e.ctx, "p", "deep"); ward.CodeOf(err) != ward.CodeNotFound {
		t.Fatalf("GetAlert(deleted): %v, want not_found", err)
	}
	wantCode(t, "DeleteAlert(deleted)", e.s.DeleteAlert(e.ctx, "p", "deep"), ward.CodeNotFound)
	wantCode(t, "DeleteAlert(other project's)", e.s.DeleteAlert(e.ctx, "p", "nope"), ward.CodeNotFound)
	if _, err := e.s.GetAlert(e.ctx, "q", "deep"); err != nil {
		t.Fatalf("q's rule of the same name: %v", err)
	}
	// Deleting the project removes its rules, states and history.
	e.setStates(store.AlertStateUpdate{Project: "q", Name: "deep", State: ward.AlertFiring, Since: t0, EvaluatedAt: t0,
		Event: &ward.AlertEvent{At: t0, Kind: ward.EventState, State: ward.AlertFiring}})
	if err := e.s.DeleteProject(e.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	e.project("q")
	if l, err := e.s.ListAlerts(e.ctx, "q"); err != nil || len(l) != 0 {
		t.Fatalf("rules of a deleted project: %v, %v", names(l), err)
	}
	if st, err := e.s.GetAlertState(e.ctx, "q", "deep"); err != nil || st.Found {
		t.Fatalf("state of a deleted project's rule: %+v, %v", st, err)
	}
}

func (e *env) setStates(us ...store.AlertStateUpdate) {
	e.t.Helper()
	if err := e.s.SetAlertStates(e.ctx, &store.SetAlertStatesParams{States: us}); err != nil {
		e.t.Fatalf("SetAlertStates: %v", err)
	}
}

func (e *env) events(project, name string, limit int) []ward.AlertEvent {
	e.t.Helper()
	evs, err := e.s.ListAlertEvents(e.ctx, &store.ListAlertEventsParams{Project: project, Name: name, Limit: limit})
	if err != nil {
		e.t.Fatalf("ListAlertEvents: %v", err)
	}
	return evs
}

func testAlertStates(t *testing.T, e *env) {
	e.project("p")
	e.putAlert("p", "r", alertSpec(ward.MetricQueueDepth, 2), []byte("s"), true, t0)
	if st, err := e.s.GetAlertState(e.ctx, "p", "r"); err != nil || st.Found || st.State != ward.AlertOK {
		t.Fatalf("GetAlertState(never set) = %+v, %v", st, err)
	}
	if evs := e.events("p", "r", 0); len(evs) != 0 || evs == nil {
		t.Fatalf("history of a new rule = %#v; want empty", evs)
	}
	pending := ward.AlertEvent{At: at(time.Second), Kind: ward.EventState, State: ward.AlertPending, Value: 3}
	e.setStates(
		store.AlertStateUpdate{Project: "p", Name: "r", State: ward.AlertPending, Since: at(time.Second), Value: 3, EvaluatedAt: at(time.Second), Event: &pending},
		store.AlertStateUpdate{Project: "p", Name: ward.BuiltinSubmitSurge, State: ward.AlertOK, Since: t0, Value: 0.5, EvaluatedAt: at(time.Second)},
		// A rule that does not exist and a project gone: skipped.
		store.AlertStateUpdate{Project: "p", Name: "gone", State: ward.AlertFiring, Since: t0, EvaluatedAt: t0,
			Event: &ward.AlertEvent{At: t0, Kind: ward.EventState, State: ward.AlertFiring}},
		store.AlertStateUpdate{Project: "nope", Name: ward.BuiltinSubmitSurge, State: ward.AlertFiring, Since: t0, EvaluatedAt: t0},
	)
	got, err := e.s.GetAlert(e.ctx, "p", "r")
	if err != nil || got.State != ward.AlertPending || got.Value != 3 || got.Since == nil || got.EvaluatedAt == nil {
		t.Fatalf("GetAlert after an evaluation = %+v, %v", got.Alert, err)
	}
	wantTime(t, "Since", *got.Since, at(time.Second))
	st, err := e.s.GetAlertState(e.ctx, "p", ward.BuiltinSubmitSurge)
	if err != nil || !st.Found || st.State != ward.AlertOK || st.Value != 0.5 {
		t.Fatalf("builtin state = %+v, %v", st, err)
	}
	wantTime(t, "builtin EvaluatedAt", st.EvaluatedAt, at(time.Second))
	for _, name := range []string{"gone"} {
		if st, err := e.s.GetAlertState(e.ctx, "p", name); err != nil || st.Found {
			t.Fatalf("state of a missing rule was kept: %+v, %v", st, err)
		}
		if evs := e.events("p", name, 0); len(evs) != 0 {
			t.Fatalf("history of a missing rule was kept: %+v", evs)
		}
	}
	// A delivery attempt and a second state change: newest first.
	delivery := ward.AlertEvent{At: at(2 * time.Second), Kind: ward.EventDelivery, State: ward.AlertPending, Attempt: 1, StatusCode: 500, Error: "", DurationMs: 12}
	if err := e.s.AddAlertEvent(e.ctx, &store.AddAlertEventParams{Project: "p", Name: "r", Event: delivery}); err != nil {
		t.Fatal(err)
	}
	firing := ward.AlertEvent{At: at(time.Minute), Kind: ward.EventState, State: ward.AlertFiring, Value: 4}
	e.setStates(store.AlertStateUpdate{Project: "p", Name: "r", State: ward.AlertFiring, Since: at(time.Minute), Value: 4, EvaluatedAt: at(time.Minute), Event: &firing})
	evs := e.events("p", "r", 0)
	if len(evs) != 3 || evs[0] != firing || evs[1] != delivery || evs[2] != pending {
		t.Fatalf("history =\n%+v\nwant firing, delivery, pending", evs)
	}
	for i, ev := range evs {
		if ev.At.Location() != time.UTC {
			t.Errorf("event %d time not UTC", i)
		}
	}
	if evs := e.events("p", "r", 2); len(evs) != 2 || evs[0] != firing {
		t.Fatalf("history limit 2 = %+v", evs)
	}
	wantCode(t, "AddAlertEvent(missing rule)",
		e.s.AddAlertEvent(e.ctx, &store.AddAlertEventParams{Project: "p", Name: "gone", Event: delivery}), ward.CodeNotFound)
	// Deleting the rule drops its state and history; a rule made again
	// under the name starts fresh.
	if err := e.s.DeleteAlert(e.ctx, "p", "r"); err != nil {
		t.Fatal(err)
	}
	e.putAlert("p", "r", alertSpec(ward.MetricQueueDepth, 2), []byte("s"), true, t0)
	if got, err := e.s.GetAlert(e.ctx, "p", "r"); err != nil || got.State != ward.AlertOK || got.Since != nil {
		t.Fatalf("a rule made again = %+v, %v", got.Alert, err)
	}
	if evs := e.events("p", "r", 0); len(evs) != 0 {
		t.Fatalf("a rule made again has history %+v", evs)
	}
}

func testAlertHistoryBounded(t *testing.T, e *env) {
	e.project("p")
	e.putAlert("p", "r", alertSpec(ward.MetricQueueDepth, 2), []byte("s"), true, t0)
	e.putAlert("p", "other", alertSpec(ward.MetricQueueDepth, 2), []byte("s"), true, t0)
	n := ward.MaxAlertEvents + 5
	us := make([]store.AlertStateUpdate, 0, n+1)
	for i := range n {
		ev := &ward.AlertEvent{At: at(time.Duration(i) * time.Second), Kind: ward.EventState, State: ward.AlertPending, Value: float64(i)}
		us = append(us, store.AlertStateUpdate{Project: "p", Name: "r", State: ward.AlertPending, Since: t0, EvaluatedAt: ev.At, Event: ev})
	}
	us = append(us, store.AlertStateUpdate{Project: "p", Name: "other", State: ward.AlertOK, Since: t0, EvaluatedAt: t0,
		Event: &ward.AlertEvent{At: t0, Kind: ward.EventState, State: ward.AlertOK}})
	e.setStates(us...)
	evs := e.events("p", "r", ward.MaxAlertEvents+100)
	if len(evs) != ward.MaxAlertEvents {
		t.Fatalf("history holds %d events, want the newest %d", len(evs), ward.MaxAlertEvents)
	}
	if evs[0].Value != float64(n-1) || evs[len(evs)-1].Value != float64(n-ward.MaxAlertEvents) {
		t.Fatalf("history spans values %v..%v, want %d..%d", evs[len(evs)-1].Value, evs[0].Value, n-ward.MaxAlertEvents, n-1)
	}
	if evs := e.events("p", "other", 0); len(evs) != 1 {
		t.Fatalf("another rule's history = %d events, want 1 (trimming is per rule)", len(evs))
	}
}

func testTaskWindow(t *testing.T, e *env) {
	e.project("p", "q")
	for _, fn := range []string{"f", "g"} {
		e.function("p", fn, nil)
	}
	e.function("q", "f", nil)
	runAt := func(d time.Duration) func(*store.NewTask) { return func(n *store.NewTask) { n.RunAt = at(d) } }
	failed := func(l store.Lease, now time.Time) store.Completion {
		return store.Completion{TaskID: l.Task.ID, Project: l.Task.Project, LeaseID: l.LeaseID, Status: ward.StatusFailed,
			Error: &ward.TaskError{Code: ward.CodeExitStatus, Message: "exit 1"}, Now: now}
	}
	// a1 before the window: waits 1s, succeeds at -90s.
	e.insertAt(at(-2*time.Minute), e.task("p", "f", runAt(-2*time.Minute)))
	e.completeOK(succeed(e.leaseOne("r", at(-119*time.Second)), at(-90*time.Second)))
	// b1..b3 in it: waits 2s, 5s and 10s; b1 succeeds, b2 fails, b3 runs on.
	e.insertAt(at(-50*time.Second), e.task("p", "f", runAt(-50*time.Second)), e.task("p", "f", runAt(-50*time.Second)), e.task("p", "f", runAt(-50*time.Second)))
	b1 := e.leaseOne("r", at(-48*time.Second))
	e.completeOK(succeed(b1, at(-40*time.Second)))
	b2 := e.leaseOne("r", at(-45*time.Second))
	e.completeOK(failed(b2, at(-30*time.Second)))
	e.leaseOne("r", at(-40*time.Second))
	// c1 of p/g waits 1s and fails; d1 of q stays queued.
	e.insertAt(at(-20*time.Second), e.task("p", "g", runAt(-20*time.Second)), e.task("q", "f", runAt(-20*time.Second)))
	e.completeOK(failed(e.leaseOne("r", at(-19*time.Second)), at(-10*time.Second)))

	window := func(project, function string, since, until time.Time, limit int) string {
		t.Helper()
		w, err := store.Window(e.ctx, e.s, &store.TaskWindowParams{Project: project, Function: function, Since: since, Until: until, Limit: limit})
		if err != nil {
			t.Fatalf("Window: %v", err)
		}
		return fmt.Sprintf("submitted %d finished %d failed %d waits %v", w.Submitted, w.Finished, w.Failed, w.Waits)
	}
	if w, err := store.Window(e.ctx, e.s, &store.TaskWindowParams{Project: "p", Since: at(-time.Minute), Until: t0, SubmittedOnly: true}); err != nil ||
		w.Submitted != 4 || w.Finished != 0 || w.Waits != nil {
		t.Errorf("Window(submitted only) = %+v, %v", w, err)
	}
	for _, c := range []struct {
		project, function string
		since, until      time.Time
		limit             int
		want              string
	}{
		{"p", "", at(-time.Minute), t0, 0, "submitted 4 finished 3 failed 2 waits [5s 2s 1s]"},
		{"p", "f", at(-time.Minute), t0, 0, "submitted 3 finished 2 failed 1 waits [5s 2s]"},
		{"p", "g", at(-time.Minute), t0, 0, "submitted 1 finished 1 failed 1 waits [1s]"},
		{"p", "", at(-time.Minute), t0, 1, "submitted 1 finished 1 failed 1 waits [1s]"},
		{"p", "", at(-3 * time.Minute), at(-time.Minute), 0, "submitted 1 finished 1 failed 0 waits [1s]"},
		// Since is in the window, Until is not.
		{"p", "", at(-50 * time.Second), at(-20 * time.Second), 0, "submitted 3 finished 2 failed 1 waits [5s 2s]"},
		{"p", "", at(-50 * time.Second), at(-30 * time.Second), 0, "submitted 3 finished 1 failed 0 waits [2s]"},
		{"q", "", at(-time.Minute), t0, 0, "submitted 1 finished 0 failed 0 waits []"},
		{"nope", "", at(-time.Minute), t0, 0, "submitted 0 finished 0 failed 0 waits []"},
	} {
		if got := window(c.project, c.function, c.since, c.until, c.limit); got != c.want {
			t.Errorf("Window(%s/%s, %v..%v, limit %d) = %s, want %s", c.project, c.function, c.since.Sub(t0), c.until.Sub(t0), c.limit, got, c.want)
		}
	}

	// By function: each function's figures are those read with Function
	// set; the limit keeps the newest tasks across functions.
	windows := func(project string, since, until time.Time, limit int, submittedOnly bool) string {
		t.Helper()
		ws, err := e.s.TaskWindows(e.ctx, &store.TaskWindowParams{Project: project, Since: since, Until: until, Limit: limit, SubmittedOnly: submittedOnly})
		if err != nil {
			t.Fatalf("TaskWindows: %v", err)
		}
		var parts []string
		for _, w := range ws {
			parts = append(parts, fmt.Sprintf("%s: submitted %d finished %d failed %d waits %v", w.Function, w.Submitted, w.Finished, w.Failed, w.Waits))
			if !submittedOnly && limit == 0 {
				if one := window(project, w.Function, since, until, 0); one != strings.SplitN(parts[len(parts)-1], ": ", 2)[1] {
					t.Errorf("TaskWindows' %s = %s, with Function set = %s", w.Function, parts[len(parts)-1], one)
				}
			}
		}
		return strings.Join(parts, "; ")
	}
	for _, c := range []struct {
		project       string
		since, until  time.Time
		limit         int
		submittedOnly bool
		want          string
	}{
		{"p", at(-time.Minute), t0, 0, false, "f: submitted 3 finished 2 failed 1 waits [5s 2s]; g: submitted 1 finished 1 failed 1 waits [1s]"},
		{"p", at(-time.Minute), t0, 1, false, "g: submitted 1 finished 1 failed 1 waits [1s]"},
		{"p", at(-time.Minute), t0, 0, true, "f: submitted 3 finished 0 failed 0 waits []; g: submitted 1 finished 0 failed 0 waits []"},
		{"p", at(-3 * time.Minute), at(-time.Minute), 0, false, "f: submitted 1 finished 1 failed 0 waits [1s]"},
		{"q", at(-time.Minute), t0, 0, false, "f: submitted 1 finished 0 failed 0 waits []"},
		{"nope", at(-time.Minute), t0, 0, false, ""},
	} {
		if got := windows(c.project, c.since, c.until, c.limit, c.submittedOnly); got != c.want {
			t.Errorf("TaskWindows(%s, %v..%v, limit %d, submitted only %v) =\n%s\nwant\n%s", c.project, c.since.Sub(t0), c.until.Sub(t0), c.limit, c.submittedOnly, got, c.want)
		}
	}
}

func testAcquireLock(t *testing.T, e *env) {
	acquire := func(holder string, now time.Time) bool {
		t.Helper()
		ok, err := e.s.AcquireLock(e.ctx, &store.AcquireLockParams{Name: "alerts", Holder: holder, TTL: 15 * time.Second, Now: now})
		if err != nil {
			t.Fatalf("AcquireLock(%s): %v", holder, err)
		}
		return ok
	}
	steps := []struct {
		holder string
		at     time.Duration
		want   bool
	}{
		{"a", 0, true},                 // free
		{"b", time.Second, false},      // a holds it
		{"a", 10 * time.Second, true},  // a renews, to 25s
		{"b", 20 * time.Second, false}, // still a's
		{"b", 25 * time.Second, true},  // expired
		{"a", 26 * time.Second, false}, // now b's
	}
	for _, s := range steps {
		if got := acquire(s.holder, at(s.at)); got != s.want {
			t.Fatalf("AcquireLock(%s) at +%v = %v, want %v", s.holder, s.at, got, s.want)
		}
	}
	// Another lock's name is apart.
	if ok, err := e.s.AcquireLock(e.ctx, &store.AcquireLockParams{Name: "other", Holder: "a", TTL: time.Second, Now: at(26 * time.Second)}); err != nil || !ok {
		t.Fatalf("AcquireLock(other) = %v, %v", ok, err)
	}
}
