package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardhq/ward/internal/store"
)

// countsCollector reports the store's task counts by function, read when
// scraped. One read serves every scrape within maxAge of it, or within
// slowFactor times the read's own duration when that is longer (a large
// queue is read less often, so that the reads cost at most a twentieth of
// a CPU); a scrape that comes while a read is under way waits for that
// read.
type countsCollector struct {
	src     TaskCounter
	maxAge  time.Duration
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger

	due, delayed, running, errors *prometheus.Desc

	mu     sync.Mutex // held while reading
	last   []store.TaskCount
	readAt time.Time
	took   time.Duration // the last read's duration
	failed int           // reads that failed
}

// slowFactor spaces the reads of a slow store: one read of duration d
// serves the scrapes for slowFactor·d.
const slowFactor = 20

func newCountsCollector(opts Options) *countsCollector {
	fn := []string{"project", "function"}
	return &countsCollector{
		src: opts.Counts, maxAge: opts.CountsMaxAge, timeout: opts.CountsTimeout, now: opts.Now, log: opts.Logger,
		due: prometheus.NewDesc("ward_queue_depth",
			"Queued tasks that are due (run_at reached) and wait for a runner. The store's figure: the same on every server.", fn, nil),
		delayed: prometheus.NewDesc("ward_tasks_delayed",
			"Queued tasks whose run_at is still ahead (delayed submissions, retries in backoff).", fn, nil),
		running: prometheus.NewDesc("ward_tasks_running",
			"Tasks running on any runner. The store's figure: the same on every server.", fn, nil),
		errors: prometheus.NewDesc("ward_metrics_store_errors_total",
			"Reads of the task counts that failed; the gauges are left out of that scrape.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.due
	ch <- c.delayed
	ch <- c.running
	ch <- c.errors
}

// Collect implements prometheus.Collector.
func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	counts, failed, ok := c.read()
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(failed))
	if !ok {
		return
	}
	for _, tc := range counts {
		ch <- prometheus.MustNewConstMetric(c.due, prometheus.GaugeValue, float64(tc.Due), tc.Project, tc.Function)
		ch <- prometheus.MustNewConstMetric(c.delayed, prometheus.GaugeValue, float64(tc.Delayed), tc.Project, tc.Function)
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(tc.Running), tc.Project, tc.Function)
	}
}

// read returns counts no older than maxAge, reading the store if need be,
// and how many reads have failed.
func (c *countsCollector) read() ([]store.TaskCount, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	fresh := max(c.maxAge, slowFactor*c.took)
	if !c.readAt.IsZero() && now.Sub(c.readAt) < fresh && !now.Before(c.readAt) {
		return c.last, c.failed, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	counts, err := c.src.TaskCounts(ctx, &store.TaskCountsParams{Now: now})
	c.took = time.Since(start)
	if err != nil {
		c.failed++
		c.log.Warn("metrics: read the task counts", "err", err)
		return nil, c.failed, false
	}
	c.last, c.readAt = counts, now
	return counts, c.failed, true
}

// runnerCollector reports the capacity of the in-process runners.
type runnerCollector struct {
	mu      sync.Mutex
	runners []Runner
}

var (
	runnerBudgetDesc = prometheus.NewDesc("ward_runner_memory_budget_bytes",
		"The memory a runner of this process hands out to tasks by their memory limits.", []string{"runner"}, nil)
	runnerInUseDesc = prometheus.NewDesc("ward_runner_memory_in_use_bytes",
		"The memory limits of the tasks a runner of this process runs.", []string{"runner"}, nil)
	runnerSlotsDesc = prometheus.NewDesc("ward_runner_slots",
		"The most tasks a runner of this process runs at once.", []string{"runner"}, nil)
	runnerFreeDesc = prometheus.NewDesc("ward_runner_free_slots",
		"A runner's slots not running a task.", []string{"runner"}, nil)
)

func (c *runnerCollector) add(r Runner) {
	c.mu.Lock()
	c.runners = append(c.runners, r)
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *runnerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runnerBudgetDesc
	ch <- runnerInUseDesc
	ch <- runnerSlotsDesc
	ch <- runnerFreeDesc
}

// Collect implements prometheus.Collector.
func (c *runnerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	rs := append([]Runner(nil), c.runners...)
	c.mu.Unlock()
	const mib = 1 << 20
	for _, r := range rs {
		st, id := r.Stats(), r.ID()
		ch <- prometheus.MustNewConstMetric(runnerBudgetDesc, prometheus.GaugeValue, float64(st.MemoryBudgetMB)*mib, id)
		ch <- prometheus.MustNewConstMetric(runnerInUseDesc, prometheus.GaugeValue, float64(st.MemoryInUseMB)*mib, id)
		ch <- prometheus.MustNewConstMetric(runnerSlotsDesc, prometheus.GaugeValue, float64(st.Slots), id)
		ch <- prometheus.MustNewConstMetric(runnerFreeDesc, prometheus.GaugeValue, float64(st.FreeSlots), id)
	}
}
