package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/wardhq/ward"
)

// StatsOptions narrow Stats.
type StatsOptions struct {
	// Window is the span of the figures over time, from ward.MinStatsWindow
	// to ward.MaxStatsWindow; 0 is the server's default
	// (ward.DefaultStatsWindow).
	Window time.Duration
	// Function reads one function; "" reads every function of the project
	// (at most ward.MaxStatsFunctions).
	Function string
}

type statsView ward.Stats

func (s *statsView) requiredKeys() []string { return []string{"window_s", "at", "functions", "total"} }

func (s *statsView) validate() error {
	if s.WindowS <= 0 {
		return errors.New("stats without a window")
	}
	if err := checkFunctionStats(s.Total); err != nil {
		return fmt.Errorf("total: %w", err)
	}
	for i, fs := range s.Functions {
		if fs.Function == "" {
			return fmt.Errorf("functions[%d]: no function name", i)
		}
		if err := checkFunctionStats(fs); err != nil {
			return fmt.Errorf("functions[%d]: %w", i, err)
		}
	}
	return nil
}

func checkFunctionStats(fs ward.FunctionStats) error {
	if min(fs.Queued, fs.Delayed, fs.Running, fs.Submitted, fs.Finished, fs.Failed) < 0 {
		return errors.New("a negative count")
	}
	if fs.Failed > fs.Finished {
		return errors.New("more failed than finished")
	}
	for _, w := range []*float64{fs.WaitP50Ms, fs.WaitP95Ms} {
		if w != nil && !(*w >= 0) {
			return errors.New("a negative wait")
		}
	}
	return nil
}

// Stats returns a project's tasks by function and in total: queued,
// delayed and running now, and submitted, finished, failed and the queue
// wait's median and 95th percentile over the window. The figures are the
// cluster's (every server answers the same). It needs the metrics:read
// scope (owner, developer, viewer tokens of the project; admin).
func (c *Client) Stats(ctx context.Context, project string, opts StatsOptions) (ward.Stats, error) {
	q := url.Values{}
	if opts.Window != 0 {
		q.Set("window", opts.Window.String())
	}
	if opts.Function != "" {
		q.Set("function", opts.Function)
	}
	var s statsView
	err := c.call(ctx, request{method: http.MethodGet, segs: []string{"v1", "projects", project, "stats"}, query: q}, &s, http.StatusOK)
	return ward.Stats(s), err
}
