package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
)

// snapshot is what top reads of one scrape of GET /metrics, by project
// and function.
type snapshot struct {
	depth, running map[fnKey]float64
	finished       map[fnKey]float64 // every terminal status
	failed         map[fnKey]float64
	wait           map[fnKey]histogram
}

// fnKey names a function of a project.
type fnKey struct{ project, function string }

// histogram is a cumulative Prometheus histogram: counts[i] observations
// at or below bounds[i].
type histogram struct {
	bounds []float64
	counts []float64
}

// topRow is one function's line.
type topRow struct {
	project, function string
	depth, running    float64
	waitP95           float64 // seconds; NaN: nothing that ran finished in the window
	perSec, failSec   float64
}

// statsRows are the lines of a project's stats: queued and running now,
// the rest over the stats' window.
func statsRows(st ward.Stats) []topRow {
	secs := max(st.WindowS, 1e-9)
	rows := make([]topRow, 0, len(st.Functions))
	for _, fs := range st.Functions {
		wait := math.NaN()
		if fs.WaitP95Ms != nil {
			wait = *fs.WaitP95Ms / 1000
		}
		rows = append(rows, topRow{function: fs.Function, depth: float64(fs.Queued), running: float64(fs.Running),
			waitP95: wait, perSec: float64(fs.Finished) / secs, failSec: float64(fs.Failed) / secs})
	}
	sortRows(rows)
	return rows
}

// statsWindow is the stats window of a refresh interval: the interval,
// within the window's bounds.
func statsWindow(interval time.Duration) time.Duration {
	return min(max(interval, ward.MinStatsWindow), ward.MaxStatsWindow)
}

// parseSnapshot reads the metrics of every project from a text-format
// scrape.
func parseSnapshot(text []byte) (snapshot, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return snapshot{}, fmt.Errorf("reading the metrics: %w", err)
	}
	s := snapshot{depth: map[fnKey]float64{}, running: map[fnKey]float64{}, finished: map[fnKey]float64{},
		failed: map[fnKey]float64{}, wait: map[fnKey]histogram{}}
	each := func(name string, f func(k fnKey, m *dto.Metric)) {
		fam := families[name]
		if fam == nil {
			return
		}
		for _, m := range fam.GetMetric() {
			var k fnKey
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "project":
					k.project = l.GetValue()
				case "function":
					k.function = l.GetValue()
				}
			}
			f(k, m)
		}
	}
	each("ward_queue_depth", func(k fnKey, m *dto.Metric) { s.depth[k] += m.GetGauge().GetValue() })
	each("ward_tasks_running", func(k fnKey, m *dto.Metric) { s.running[k] += m.GetGauge().GetValue() })
	each("ward_tasks_finished_total", func(k fnKey, m *dto.Metric) {
		v := m.GetCounter().GetValue()
		s.finished[k] += v
		for _, l := range m.GetLabel() {
			if l.GetName() == "status" && l.GetValue() == string(ward.StatusFailed) {
				s.failed[k] += v
			}
		}
	})
	each("ward_task_wait_seconds", func(k fnKey, m *dto.Metric) {
		var h histogram
		for _, b := range m.GetHistogram().GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
			h.counts = append(h.counts, float64(b.GetCumulativeCount()))
		}
		s.wait[k] = h
	})
	return s, nil
}

// topRows compares two scrapes taken d apart: queue depth and running as
// of cur, the rest over the interval.
func topRows(prev, cur snapshot, d time.Duration) []topRow {
	names := map[fnKey]bool{}
	for _, m := range []map[fnKey]float64{cur.depth, cur.running, cur.finished} {
		for k := range m {
			names[k] = true
		}
	}
	secs := max(d.Seconds(), 1e-9)
	var rows []topRow
	for k := range names {
		rows = append(rows, topRow{
			project:  k.project,
			function: k.function,
			depth:    cur.depth[k],
			running:  cur.running[k],
			waitP95:  quantile(0.95, prev.wait[k], cur.wait[k]),
			perSec:   max(0, cur.finished[k]-prev.finished[k]) / secs,
			failSec:  max(0, cur.failed[k]-prev.failed[k]) / secs,
		})
	}
	sortRows(rows)
	return rows
}

// sortRows orders rows by queue depth, deepest first, then by project and
// function.
func sortRows(rows []topRow) {
	slices.SortFunc(rows, func(a, b topRow) int {
		if a.depth != b.depth {
			return int(math.Copysign(1, b.depth-a.depth))
		}
		if c := strings.Compare(a.project, b.project); c != 0 {
			return c
		}
		return strings.Compare(a.function, b.function)
	})
}

// quantile estimates the q-quantile of the observations made between two
// scrapes of a histogram, interpolating linearly within a bucket as
// Prometheus's histogram_quantile does; NaN when there were none.
func quantile(q float64, prev, cur histogram) float64 {
	if len(cur.counts) == 0 {
		return math.NaN()
	}
	delta := make([]float64, len(cur.counts))
	for i := range cur.counts {
		delta[i] = cur.counts[i]
		if i < len(prev.counts) && prev.bounds[i] == cur.bounds[i] {
			delta[i] -= prev.counts[i]
		}
	}
	total := delta[len(delta)-1]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, c := range delta {
		if c >= rank {
			upper := cur.bounds[i]
			if math.IsInf(upper, 1) {
				return lower // beyond the last finite bucket: its bound
			}
			if c == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(c-below)
		}
		lower, below = cur.bounds[i], c
	}
	return lower
}

// writeTop writes one frame; title names what it shows, and a PROJECT
// column is shown when it spans projects.
func writeTop(w io.Writer, title string, perProject bool, rows []topRow, note string, at time.Time) error {
	fmt.Fprintf(w, "ward top — %s — %s\n\n", safe(title), at.Format(time.TimeOnly))
	t := newTable(w)
	head := []string{"FUNCTION", "QUEUED", "RUNNING", "WAIT_P95", "DONE/S", "FAILED/S"}
	if perProject {
		head = append([]string{"PROJECT"}, head...)
	}
	t.row(head...)
	for _, r := range rows {
		wait := "-"
		if !math.IsNaN(r.waitP95) {
			wait = (time.Duration(r.waitP95 * float64(time.Second))).Round(time.Millisecond).String()
		}
		cells := []string{r.function, strconv.FormatFloat(r.depth, 'f', 0, 64), strconv.FormatFloat(r.running, 'f', 0, 64),
			wait, strconv.FormatFloat(r.perSec, 'f', 1, 64), strconv.FormatFloat(r.failSec, 'f', 1, 64)}
		if perProject {
			cells = append([]string{r.project}, cells...)
		}
		t.row(cells...)
	}
	if len(rows) == 0 {
		t.row("(no functions)")
	}
	if err := t.flush(); err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(w, note)
	}
	return nil
}

// topView is one way of reading top's frames.
type topView interface {
	// frame reads the figures, returning the rows and a note to print
	// under them; ok false means the frame has nothing to show yet.
	frame(ctx context.Context) (rows []topRow, note string, ok bool, err error)
}

// statsView reads a project's stats (GET /v1/projects/{p}/stats).
type statsView struct {
	c       *client.Client
	project string
	window  time.Duration
}

func (v *statsView) frame(ctx context.Context) ([]topRow, string, bool, error) {
	st, err := v.c.Stats(ctx, v.project, client.StatsOptions{Window: v.window})
	if err != nil {
		return nil, "", false, err
	}
	note := ""
	if st.Truncated {
		note = fmt.Sprintf("(the %d functions with the most tasks queued and running; more are not shown)", len(st.Functions))
	}
	return statsRows(st), note, true, nil
}

// metricsView reads every project's figures from GET /metrics, rates over
// the time between two scrapes.
type metricsView struct {
	c        *client.Client
	interval time.Duration
	prev     *snapshot
}

func (v *metricsView) frame(ctx context.Context) ([]topRow, string, bool, error) {
	text, err := v.c.Metrics(ctx)
	if err != nil {
		return nil, "", false, err
	}
	cur, err := parseSnapshot(text)
	if err != nil {
		return nil, "", false, err
	}
	prev := v.prev
	v.prev = &cur
	if prev == nil {
		return nil, "", false, nil // rates need a second scrape
	}
	// Rates are over the ticker's interval.
	return topRows(*prev, cur, v.interval), "", true, nil
}

// scrapeRefused reports whether a failed scrape of GET /metrics means the
// token may not read every project's figures (not an admin's) or the
// server serves none: top then shows one project's stats.
func scrapeRefused(err error) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && (ae.Code == ward.CodeForbidden || ae.Code == ward.CodeNotFound)
}

func newTopCmd(g *globals) *cobra.Command {
	var interval time.Duration
	var once bool
	cmd := &cobra.Command{
		Use:   "top [--interval 1s] [--once]",
		Short: "A live view per function: queued, running, wait p95, throughput, failures",
		Long: `Show, for each function of the project, the tasks queued (due) and running
now, and over the last interval the 95th percentile of the queue wait, the
tasks finished per second and those failed per second, refreshed every
--interval until interrupted.

With a project (--project or WARD_PROJECT) it reads the project's stats
(GET /v1/projects/{p}/stats, any token of the project with metrics:read:
owner, developer, viewer; or admin) over a window of --interval (at least
1s, at most 1h). These come from the store the cluster shares: every
server shows the same, the whole cluster's. Without a project and with an
admin token it shows every project, from the answering server's metrics
(GET /metrics): the finished tasks and waits are that server's own, over
the time between two scrapes. Without a project and another token it shows
the default project's stats.

--once prints one frame and exits (with the metrics, after one interval).`,
		Example: `  ward --project shop top
  WARD_PROJECT=shop ward top --interval 5s
  ward top --once            # every project, with an admin token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 100*time.Millisecond {
				return usagef("--interval must be at least 100ms")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var view topView = &statsView{c: c, project: g.cfg.Project, window: statsWindow(interval)}
			title, perProject, primed := "project "+g.cfg.Project, false, false
			if !g.cfg.ProjectSet {
				mv := &metricsView{c: c, interval: interval}
				if _, _, _, err := mv.frame(ctx); err == nil {
					view, title, perProject, primed = mv, "all projects", true, true
				} else if !scrapeRefused(err) {
					return err
				}
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			// The stats show a frame at once; the metrics' rates need a
			// second scrape an interval after the first.
			for first := true; ; first = false {
				if !first || primed {
					select {
					case <-ctx.Done():
						return nil
					case <-t.C:
					}
				}
				rows, note, ok, err := view.frame(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				if !ok {
					continue
				}
				if g.stderrTTY && !once {
					fmt.Fprint(g.stdout, "\x1b[H\x1b[2J") // home, clear
				}
				if err := writeTop(g.stdout, title, perProject, rows, note, g.now()); err != nil {
					return err
				}
				if once {
					return nil
				}
				if !g.stderrTTY {
					fmt.Fprintln(g.stdout)
				}
			}
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between refreshes, and the window of the figures over time")
	cmd.Flags().BoolVar(&once, "once", false, "print one frame and exit")
	return cmd
}
