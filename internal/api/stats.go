package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/alert"
	"github.com/wardhq/ward/internal/store"
)

// TaskCounts reads the task counts of every function of every project,
// shared among its callers; *telemetry.Counts, which the metrics' gauges
// read too, implements it with at most one store read per second.
type TaskCounts interface {
	Read(ctx context.Context) ([]store.TaskCount, error)
}

// statsLimit caps the tasks one stats request reads: the newest
// statsLimit created in the window and the newest statsLimit finished in
// it, in one pass over the project's window (store.TaskWindows). Figures
// of a window with more are marked capped.
const statsLimit = 100_000

// stats answers GET /v1/projects/{p}/stats: the project's tasks queued,
// delayed and running now, and submitted, finished, failed and their
// queue waits over ?window=, by function (?function= for one) and in
// total. The figures are the shared store's, the same on every server.
func (s *Server) stats(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	window := ward.DefaultStatsWindow
	if q.Has("window") {
		var err error
		if window, err = ward.ParseStatsWindow(q.Get("window")); err != nil {
			return err
		}
	}
	fn := q.Get("function")
	if q.Has("function") && !ward.ValidName(fn) {
		return ward.FieldError("function", "must be a function name (1-63 lowercase letters, digits or '-')")
	}
	counts, err := s.counts.Read(r.Context())
	if err != nil {
		return err
	}
	now := s.now().UTC()
	out := ward.Stats{WindowS: window.Seconds(), At: now, Total: ward.FunctionStats{}}
	var rows []store.TaskCount
	for _, tc := range counts {
		if tc.Project != c.project {
			continue
		}
		addCounts(&out.Total, tc)
		if fn == "" || tc.Function == fn {
			rows = append(rows, tc)
		}
	}
	if fn != "" && len(rows) == 0 {
		// Not in the counts: a function made since they were read has
		// none; one that does not exist is not found.
		if _, err := s.st.GetFunction(r.Context(), c.project, fn); err != nil {
			return err
		}
		rows = append(rows, store.TaskCount{Project: c.project, Function: fn})
	}
	if len(rows) > ward.MaxStatsFunctions {
		rows, out.Truncated = busiest(rows, ward.MaxStatsFunctions), true
	}
	slices.SortFunc(rows, byFunction)

	ws, err := s.st.TaskWindows(r.Context(), &store.TaskWindowParams{
		Project: c.project, Since: now.Add(-window), Until: now, Limit: statsLimit})
	if err != nil {
		return err
	}
	all := store.SumWindows(ws)
	byFn := make(map[string]store.TaskWindow, len(ws))
	for _, fw := range ws {
		byFn[fw.Function] = fw.TaskWindow
	}
	capped := all.Submitted >= statsLimit || all.Finished >= statsLimit
	windowFigures(&out.Total, all, capped)
	out.Functions = make([]ward.FunctionStats, len(rows))
	for i, tc := range rows {
		fs := &out.Functions[i]
		fs.Function = tc.Function
		addCounts(fs, tc)
		windowFigures(fs, byFn[tc.Function], capped)
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// addCounts adds a function's counts now to fs.
func addCounts(fs *ward.FunctionStats, tc store.TaskCount) {
	fs.Queued += tc.Due
	fs.Delayed += tc.Delayed
	fs.Running += tc.Running
}

// windowFigures sets fs's figures over the window from tw; capped says
// the read stopped at its limit.
func windowFigures(fs *ward.FunctionStats, tw store.TaskWindow, capped bool) {
	fs.Submitted, fs.Finished, fs.Failed = tw.Submitted, tw.Finished, tw.Failed
	fs.Capped = capped
	if len(tw.Waits) == 0 {
		return
	}
	p := alert.Percentiles(tw.Waits, 50, 95)
	fs.WaitP50Ms, fs.WaitP95Ms = millis(p[0]), millis(p[1])
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) *float64 {
	ms := float64(d.Microseconds()) / 1000
	return &ms
}

// busiest returns the n functions of rows with the most tasks queued,
// delayed and running (by name among equals). It reorders rows.
func busiest(rows []store.TaskCount, n int) []store.TaskCount {
	load := func(tc store.TaskCount) int { return tc.Due + tc.Delayed + tc.Running }
	slices.SortFunc(rows, func(a, b store.TaskCount) int {
		if la, lb := load(a), load(b); la != lb {
			return lb - la
		}
		return byFunction(a, b)
	})
	return rows[:n]
}

// byFunction orders counts by function name (bytewise, whatever order the
// store's collation gave them).
func byFunction(a, b store.TaskCount) int { return strings.Compare(a.Function, b.Function) }
