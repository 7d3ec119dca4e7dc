package api

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

// statsLoad puts a known load on project alpha, on a clock that starts at
// t0 and moves only when told:
//
//	t0     3 resize submitted
//	t0+2s  the 3 leased (wait 2s); 1 fails, 2 succeed; 2 resize and 1 mail submitted
//	t0+6s  those 3 leased (wait 4s) and succeed; 2 resize submitted
//	t0+7s  those 2 leased, left running; 3 resize submitted (queued) and 1 delayed by an hour
//	t0+8s  now
//
// and one task of project beta, queued, which alpha's figures never show.
func statsLoad(t *testing.T, e *testEnv) (t0 time.Time) {
	t.Helper()
	e.function("alpha", "resize", ward.DefaultSpec())
	e.function("alpha", "mail", ward.DefaultSpec())
	e.function("alpha", "idle", ward.DefaultSpec())
	e.function("beta", "resize", ward.DefaultSpec())
	t0 = e.clock.Now()
	lease := func(want int) []runner.Job {
		t.Helper()
		jobs, err := e.q.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "test-runner", Max: 100, FreeMemoryMB: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != want {
			t.Fatalf("leased %d tasks, want %d", len(jobs), want)
		}
		return jobs
	}
	submit := func(fn string, n int, delay int) {
		for range n {
			e.submit("alpha", e.admin, ward.SubmitRequest{Function: fn, DelayS: delay})
		}
	}

	first := e.submit("alpha", e.admin, ward.SubmitRequest{Function: "resize"})
	submit("resize", 2, 0)
	e.clock.Advance(2 * time.Second)
	e.complete(lease(3), func(j runner.Job) runner.Result {
		if j.TaskID == first.ID {
			return fail(ward.CodeExitStatus)(j)
		}
		return echo(j)
	})
	if rec, err := e.st.GetTask(e.ctx, "alpha", first.ID); err != nil || rec.Status != ward.StatusFailed {
		t.Fatalf("the failed task: %+v %v", rec.Task, err)
	}
	submit("resize", 2, 0)
	submit("mail", 1, 0)
	e.clock.Advance(4 * time.Second)
	e.complete(lease(3), echo)
	submit("resize", 2, 0)
	e.clock.Advance(time.Second)
	lease(2)
	submit("resize", 3, 0)
	submit("resize", 1, 3600)
	e.submit("beta", e.admin, ward.SubmitRequest{Function: "resize"})
	e.clock.Advance(time.Second)
	return t0
}

func (e *testEnv) stats(t *testing.T, token, query string) ward.Stats {
	t.Helper()
	var st ward.Stats
	e.do("GET", "/v1/projects/alpha/stats"+query, token, nil).wantStatus(t, http.StatusOK).decode(t, &st)
	return st
}

// ms is a wait for a want row.
func ms(v float64) *float64 { return &v }

// wantRow compares a row with want, the waits by value.
func wantRow(t *testing.T, what string, got, want ward.FunctionStats) {
	t.Helper()
	str := func(p *float64) string {
		if p == nil {
			return "none"
		}
		return fmt.Sprint(*p)
	}
	if got.Function != want.Function || got.Queued != want.Queued || got.Delayed != want.Delayed || got.Running != want.Running ||
		got.Submitted != want.Submitted || got.Finished != want.Finished || got.Failed != want.Failed ||
		str(got.WaitP50Ms) != str(want.WaitP50Ms) || str(got.WaitP95Ms) != str(want.WaitP95Ms) || got.Capped != want.Capped {
		t.Errorf("%s = %+v (waits %s, %s), want %+v (waits %s, %s)", what, got, str(got.WaitP50Ms), str(got.WaitP95Ms),
			want, str(want.WaitP50Ms), str(want.WaitP95Ms))
	}
}

// TestStats checks every figure against the known load, over the default
// window and a shorter one, for the project and for one function.
func TestStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	statsLoad(t, e)
	viewer := e.token(ward.RoleViewer, "alpha")

	st := e.stats(t, viewer, "")
	if st.WindowS != 60 || !st.At.Equal(e.clock.Now()) || st.Truncated {
		t.Errorf("window %v, at %v (now %v), truncated %v", st.WindowS, st.At, e.clock.Now(), st.Truncated)
	}
	if len(st.Functions) != 3 {
		t.Fatalf("functions = %+v, want idle, mail, resize", st.Functions)
	}
	wantRow(t, "idle", st.Functions[0], ward.FunctionStats{Function: "idle"})
	wantRow(t, "mail", st.Functions[1], ward.FunctionStats{Function: "mail", Submitted: 1, Finished: 1, WaitP50Ms: ms(4000), WaitP95Ms: ms(4000)})
	// Waits 2, 2, 2, 4, 4 s: the median is the third, p95 the fifth.
	wantRow(t, "resize", st.Functions[2], ward.FunctionStats{Function: "resize", Queued: 3, Delayed: 1, Running: 2,
		Submitted: 11, Finished: 5, Failed: 1, WaitP50Ms: ms(2000), WaitP95Ms: ms(4000)})
	wantRow(t, "total", st.Total, ward.FunctionStats{Queued: 3, Delayed: 1, Running: 2,
		Submitted: 12, Finished: 6, Failed: 1, WaitP50Ms: ms(2000), WaitP95Ms: ms(4000)})

	// [t0+3s, t0+8s): the tasks submitted at t0+6s and t0+7s, those
	// finished at t0+6s.
	st = e.stats(t, viewer, "?window=5s")
	if st.WindowS != 5 || len(st.Functions) != 3 {
		t.Fatalf("window 5s: %+v", st)
	}
	wantRow(t, "resize over 5s", st.Functions[2], ward.FunctionStats{Function: "resize", Queued: 3, Delayed: 1, Running: 2,
		Submitted: 6, Finished: 2, WaitP50Ms: ms(4000), WaitP95Ms: ms(4000)})
	wantRow(t, "total over 5s", st.Total, ward.FunctionStats{Queued: 3, Delayed: 1, Running: 2,
		Submitted: 6, Finished: 3, WaitP50Ms: ms(4000), WaitP95Ms: ms(4000)})

	// One function; the total is still the project's.
	st = e.stats(t, viewer, "?function=mail&window=1h")
	if st.WindowS != 3600 || len(st.Functions) != 1 {
		t.Fatalf("function=mail: %+v", st)
	}
	wantRow(t, "mail alone", st.Functions[0], ward.FunctionStats{Function: "mail", Submitted: 1, Finished: 1, WaitP50Ms: ms(4000), WaitP95Ms: ms(4000)})
	if st.Total.Submitted != 12 || st.Total.Queued != 3 {
		t.Errorf("total with function=mail = %+v, want the project's", st.Total)
	}

	// The project roles with metrics:read read them; a submitter, which
	// sees only its own tasks, does not. Beta's task was never in alpha's.
	for _, role := range []ward.Role{ward.RoleOwner, ward.RoleDeveloper} {
		if got := e.stats(t, e.token(role, "alpha"), ""); got.Total.Queued != 3 || got.Total.Submitted != 12 {
			t.Errorf("%s reads total %+v", role, got.Total)
		}
	}
	e.do("GET", "/v1/projects/alpha/stats", e.token(ward.RoleSubmitter, "alpha"), nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	var beta ward.Stats
	e.do("GET", "/v1/projects/beta/stats", e.token(ward.RoleViewer, "beta"), nil).wantStatus(t, http.StatusOK).decode(t, &beta)
	if len(beta.Functions) != 1 || beta.Total.Queued != 1 || beta.Total.Submitted != 1 || beta.Total.Running != 0 {
		t.Errorf("beta = %+v", beta)
	}
}

// TestStatsCountsCached: the counts now are read at most once a second
// (by the server's clock); the window figures are read each time.
func TestStatsCountsCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	e.submit("alpha", e.admin, ward.SubmitRequest{Function: "f"})
	e.clock.Advance(time.Second)
	if st := e.stats(t, e.admin, ""); st.Total.Queued != 1 || st.Total.Submitted != 1 {
		t.Fatalf("first read: %+v", st.Total)
	}
	e.submit("alpha", e.admin, ward.SubmitRequest{Function: "f"})
	e.clock.Advance(time.Millisecond)
	if st := e.stats(t, e.admin, ""); st.Total.Queued != 1 || st.Total.Submitted != 2 {
		t.Errorf("within the second: %+v, want the cached queued 1 and the window's 2 submitted", st.Total)
	}
	e.clock.Advance(time.Minute)
	if st := e.stats(t, e.admin, "?window=1h"); st.Total.Queued != 2 {
		t.Errorf("a minute later: %+v, want 2 queued", st.Total)
	}
}

func TestStatsBadQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	e.function("beta", "only-beta", ward.DefaultSpec())
	viewer := e.token(ward.RoleViewer, "alpha")
	for _, q := range []string{"window=0s", "window=999ms", "window=61m", "window=-1m", "window=60", "window=abc", "window="} {
		t.Run(q, func(t *testing.T) {
			e.do("GET", "/v1/projects/alpha/stats?"+q, viewer, nil).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "window")
		})
	}
	for _, q := range []string{"function=", "function=Bad", "function=-x", "function=a%2Fb"} {
		t.Run(q, func(t *testing.T) {
			e.do("GET", "/v1/projects/alpha/stats?"+q, viewer, nil).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "function")
		})
	}
	// A function alpha lacks, beta's included: not found.
	for _, fn := range []string{"nope", "only-beta"} {
		e.do("GET", "/v1/projects/alpha/stats?function="+fn, viewer, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	}
	// A function made after the counts were read has zeros.
	if st := e.stats(t, viewer, ""); len(st.Functions) != 1 {
		t.Fatalf("functions = %+v", st.Functions)
	}
	e.function("alpha", "new", ward.DefaultSpec())
	if st := e.stats(t, viewer, "?function=new"); len(st.Functions) != 1 || st.Functions[0].Function != "new" || st.Functions[0].Queued != 0 {
		t.Errorf("function=new = %+v", st.Functions)
	}
	// Bounds are accepted.
	for _, w := range []string{"1s", "1h", "90s"} {
		if st := e.stats(t, viewer, "?window="+w); st.WindowS <= 0 {
			t.Errorf("window=%s: %+v", w, st)
		}
	}
	// Another project's token: 404, whatever the query.
	e.do("GET", "/v1/projects/alpha/stats?function=f", e.token(ward.RoleViewer, "beta"), nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("GET", "/v1/projects/alpha/stats?window=bad", e.token(ward.RoleViewer, "beta"), nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("GET", "/v1/projects/beta/stats?function=f", e.token(ward.RoleViewer, "beta"), nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
}

// TestStatsTruncated: past ward.MaxStatsFunctions functions the busiest
// are listed, by name, and the total still counts every function.
func TestStatsTruncated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range ward.MaxStatsFunctions + 5 {
		if _, err := e.st.PutFunction(e.ctx, &store.PutFunctionParams{Project: "alpha", Name: fmt.Sprintf("f%03d", i),
			Spec: ward.DefaultSpec(), Now: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	e.function("alpha", "zz-busy", ward.DefaultSpec())
	e.submit("alpha", e.admin, ward.SubmitRequest{Function: "zz-busy"})
	e.clock.Advance(time.Second)
	st := e.stats(t, e.admin, "")
	if !st.Truncated || len(st.Functions) != ward.MaxStatsFunctions {
		t.Fatalf("truncated %v, %d rows; want %d", st.Truncated, len(st.Functions), ward.MaxStatsFunctions)
	}
	last := st.Functions[len(st.Functions)-1]
	if last.Function != "zz-busy" || last.Queued != 1 || last.Submitted != 1 {
		t.Errorf("last row = %+v, want the busy function", last)
	}
	if st.Functions[0].Function != "f000" || st.Functions[len(st.Functions)-2].Function != fmt.Sprintf("f%03d", ward.MaxStatsFunctions-2) {
		t.Errorf("rows from %s to %s, want the idle ones by name", st.Functions[0].Function, st.Functions[len(st.Functions)-2].Function)
	}
	if st.Total.Queued != 1 || st.Total.Submitted != 1 {
		t.Errorf("total = %+v", st.Total)
	}
}

// TestWindowFigures: the waits become milliseconds to the microsecond;
// a window without finished runs has no waits; a capped read says so.
func TestWindowFigures(t *testing.T) {
	t.Parallel()
	var fs ward.FunctionStats
	windowFigures(&fs, store.TaskWindow{Submitted: 3, Finished: 2, Failed: 1,
		Waits: []time.Duration{1500 * time.Microsecond, 3 * time.Millisecond}}, false)
	if fs.Capped || *fs.WaitP50Ms != 1.5 || *fs.WaitP95Ms != 3 || fs.Submitted != 3 || fs.Finished != 2 || fs.Failed != 1 {
		t.Errorf("figures = %+v", fs)
	}
	fs = ward.FunctionStats{}
	windowFigures(&fs, store.TaskWindow{Submitted: 10}, true)
	if !fs.Capped || fs.WaitP50Ms != nil || fs.Submitted != 10 {
		t.Errorf("a capped read without waits: %+v", fs)
	}
}
