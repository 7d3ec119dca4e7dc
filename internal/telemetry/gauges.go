package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardhq/ward/internal/store"
)

// Counts reads the store's task counts of every function for the
// metrics' gauges and for other readers of the same figures (the API's
// project stats). One read serves every caller within maxAge of it, or
// within slowFactor times the read's own duration when that is longer (a
// large queue is read less often, so that the reads cost at most a
// twentieth of a CPU); a caller that comes while a read is under way waits
// for that read. It is safe for concurrent use.
type Counts struct {
	src     TaskCounter
	maxAge  time.Duration
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu     sync.Mutex // held while reading
	last   []store.TaskCount
	readAt time.Time
	took   time.Duration // the last read's duration
	failed int           // reads that failed
}

// slowFactor spaces the reads of a slow store: one read of duration d
// serves the callers for slowFactor·d.
const slowFactor = 20

// NewCounts returns a Counts reading opts.Counts, which is required, with
// opts' CountsMaxAge, CountsTimeout, Logger and Now (defaults as in New).
func NewCounts(opts Options) *Counts {
	if opts.Counts == nil {
		panic("telemetry: NewCounts needs Options.Counts")
	}
	opts = opts.withDefaults()
	return &Counts{src: opts.Counts, maxAge: opts.CountsMaxAge, timeout: opts.CountsTimeout, now: opts.Now, log: opts.Logger}
}

// Read returns the counts of every function, in project and function
// order, no older than the cache allows, reading the store if need be. The
// slice is shared: callers must not change it. ctx's cancellation does not
// end a read other callers may be waiting for; the read has its own
// timeout.
func (c *Counts) Read(ctx context.Context) ([]store.TaskCount, error) {
	counts, _, err := c.read(ctx)
	return counts, err
}

// read is Read that also returns how many reads have failed.
func (c *Counts) read(ctx context.Context) ([]store.TaskCount, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	fresh := max(c.maxAge, slowFactor*c.took)
	if !c.readAt.IsZero() && now.Sub(c.readAt) < fresh && !now.Before(c.readAt) {
		return c.last, c.failed, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	start := time.Now()
	counts, err := c.src.TaskCounts(ctx, &store.TaskCountsParams{Now: now})
	c.took = time.Since(start)
	if err != nil {
		c.failed++
		c.log.Warn("metrics: read the task counts", "err", err)
		return nil, c.failed, err
	}
	c.last, c.readAt = counts, now
	return counts, c.failed, nil
}

// countsCollector reports the store's task counts by function, read from
// Counts when scraped.
type countsCollector struct {
	counts *Counts

	due, delayed, running, errors *prometheus.Desc
}

func newCountsCollector(counts *Counts) *countsCollector {
	fn := []string{"project", "function"}
	return &countsCollector{
		counts: counts,
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
	counts, failed, err := c.counts.read(context.Background())
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(failed))
	if err != nil {
		return
	}
	for _, tc := range counts {
		ch <- prometheus.MustNewConstMetric(c.due, prometheus.GaugeValue, float64(tc.Due), tc.Project, tc.Function)
		ch <- prometheus.MustNewConstMetric(c.delayed, prometheus.GaugeValue, float64(tc.Delayed), tc.Project, tc.Function)
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(tc.Running), tc.Project, tc.Function)
	}
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
