package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
)

// snapshot is what top reads of one scrape, for one project, by function.
type snapshot struct {
	depth, running map[string]float64
	finished       map[string]float64 // every terminal status
	failed         map[string]float64
	wait           map[string]histogram
}

// histogram is a cumulative Prometheus histogram: counts[i] observations
// at or below bounds[i].
type histogram struct {
	bounds []float64
	counts []float64
}

// topRow is one function's line.
type topRow struct {
	function        string
	depth, running  float64
	waitP95         float64 // seconds; NaN: nothing finished in the interval
	perSec, failSec float64
}

// parseSnapshot reads the metrics of project from a text-format scrape.
func parseSnapshot(text []byte, project string) (snapshot, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return snapshot{}, fmt.Errorf("reading the metrics: %w", err)
	}
	s := snapshot{depth: map[string]float64{}, running: map[string]float64{}, finished: map[string]float64{},
		failed: map[string]float64{}, wait: map[string]histogram{}}
	each := func(name string, f func(fn string, m *dto.Metric)) {
		fam := families[name]
		if fam == nil {
			return
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["project"] == project {
				f(labels["function"], m)
			}
		}
	}
	each("ward_queue_depth", func(fn string, m *dto.Metric) { s.depth[fn] += m.GetGauge().GetValue() })
	each("ward_tasks_running", func(fn string, m *dto.Metric) { s.running[fn] += m.GetGauge().GetValue() })
	each("ward_tasks_finished_total", func(fn string, m *dto.Metric) {
		v := m.GetCounter().GetValue()
		s.finished[fn] += v
		for _, l := range m.GetLabel() {
			if l.GetName() == "status" && l.GetValue() == string(ward.StatusFailed) {
				s.failed[fn] += v
			}
		}
	})
	each("ward_task_wait_seconds", func(fn string, m *dto.Metric) {
		var h histogram
		for _, b := range m.GetHistogram().GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
			h.counts = append(h.counts, float64(b.GetCumulativeCount()))
		}
		s.wait[fn] = h
	})
	return s, nil
}

// topRows compares two snapshots taken d apart: queue depth and running as
// of cur, the rest over the interval.
func topRows(prev, cur snapshot, d time.Duration) []topRow {
	names := map[string]bool{}
	for _, m := range []map[string]float64{cur.depth, cur.running, cur.finished} {
		for fn := range m {
			names[fn] = true
		}
	}
	secs := max(d.Seconds(), 1e-9)
	var rows []topRow
	for fn := range names {
		rows = append(rows, topRow{
			function: fn,
			depth:    cur.depth[fn],
			running:  cur.running[fn],
			waitP95:  quantile(0.95, prev.wait[fn], cur.wait[fn]),
			perSec:   max(0, cur.finished[fn]-prev.finished[fn]) / secs,
			failSec:  max(0, cur.failed[fn]-prev.failed[fn]) / secs,
		})
	}
	slices.SortFunc(rows, func(a, b topRow) int {
		if a.depth != b.depth {
			return int(math.Copysign(1, b.depth-a.depth))
		}
		if a.function < b.function {
			return -1
		}
		return 1
	})
	return rows
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

// writeTop writes one frame.
func writeTop(w io.Writer, project string, rows []topRow, at time.Time) error {
	fmt.Fprintf(w, "ward top — project %s — %s\n\n", project, at.Format(time.TimeOnly))
	t := newTable(w)
	t.row("FUNCTION", "QUEUED", "RUNNING", "WAIT_P95", "DONE/S", "FAILED/S")
	for _, r := range rows {
		wait := "-"
		if !math.IsNaN(r.waitP95) {
			wait = (time.Duration(r.waitP95 * float64(time.Second))).Round(time.Millisecond).String()
		}
		t.row(safe(r.function), strconv.FormatFloat(r.depth, 'f', 0, 64), strconv.FormatFloat(r.running, 'f', 0, 64),
			wait, strconv.FormatFloat(r.perSec, 'f', 1, 64), strconv.FormatFloat(r.failSec, 'f', 1, 64))
	}
	if len(rows) == 0 {
		t.row("(no functions)", "", "", "", "", "")
	}
	return t.flush()
}

func newTopCmd(g *globals) *cobra.Command {
	var interval time.Duration
	var once bool
	cmd := &cobra.Command{
		Use:   "top [--interval 1s] [--once]",
		Short: "A live view per function: queued, running, wait p95, throughput, failures (admin)",
		Long: `Show, for each function of the project, the tasks queued (due) and running
now, and over the last interval the 95th percentile of the queue wait, the
tasks finished per second and those failed per second, refreshed every
--interval until interrupted. It reads the server's Prometheus metrics
(GET /metrics), which need an admin token; on a cluster the counts of
finished tasks and waits are the answering server's own. --once prints one
frame, measured over one interval, and exits.`,
		Example: `  ward top
  ward --project shop top --interval 5s
  ward top --once`,
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
			scrape := func() (snapshot, error) {
				text, err := c.Metrics(ctx)
				if err != nil {
					return snapshot{}, err
				}
				return parseSnapshot(text, g.cfg.Project)
			}
			prev, err := scrape()
			if err != nil {
				return err
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				cur, err := scrape()
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				if g.stderrTTY && !once {
					fmt.Fprint(g.stdout, "\x1b[H\x1b[2J") // home, clear
				}
				// Rates are over the ticker's interval.
				if err := writeTop(g.stdout, g.cfg.Project, topRows(prev, cur, interval), g.now()); err != nil {
					return err
				}
				if once {
					return nil
				}
				if !g.stderrTTY {
					fmt.Fprintln(g.stdout)
				}
				prev = cur
			}
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between refreshes")
	cmd.Flags().BoolVar(&once, "once", false, "print one frame and exit")
	return cmd
}
