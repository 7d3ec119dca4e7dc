// Package telemetry is ward's Prometheus metrics: counters and histograms
// the queue, the API and the runner feed as they work (submissions,
// finished tasks with their wait and run times, limit rejections, API
// requests, sandbox cold starts), and gauges read when scraped (queue
// depth and running tasks from the store, the in-process runners' memory
// and slots). Labels stop at project and function: no task ID, payload or
// token ever becomes a label.
package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/queue"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

// Metrics holds ward's metrics; it is the queue's Observer, the API's
// request observer and the runner's cold-start hook. It is safe for
// concurrent use; its methods are cheap and never block on I/O.
type Metrics struct {
	reg *prometheus.Registry

	submitted  *prometheus.CounterVec   // project, function
	finished   *prometheus.CounterVec   // project, function, status, code
	wait       *prometheus.HistogramVec // project, function
	run        *prometheus.HistogramVec // project, function
	rejections *prometheus.CounterVec   // project, function, limit
	requests   *prometheus.CounterVec   // route, status
	latency    *prometheus.HistogramVec // route
	coldStarts *prometheus.CounterVec   // runtime
	prepare    *prometheus.HistogramVec // runtime

	codes    labelSet        // error codes seen as label values
	rejected rejectionCounts // rejections by project and function, for Rejections
	runners  *runnerCollector
	counts   *Counts // nil without Options.Counts
}

var _ queue.Observer = (*Metrics)(nil)

// TaskCounter reads the task counts of every function; a store.Store is one.
type TaskCounter interface {
	TaskCounts(ctx context.Context, p *store.TaskCountsParams) ([]store.TaskCount, error)
}

// Runner is an in-process runner whose capacity is reported; a
// *runner.Runner is one.
type Runner interface {
	ID() string
	Stats() runner.Stats
}

// Options configure Metrics.
type Options struct {
	// Counts, when set, is read at scrape time for the queue depth, the
	// delayed and the running tasks of every function (through the cache
	// Metrics.Counts returns).
	Counts TaskCounter
	// CountsMaxAge is how long one read of Counts serves scrapes (default
	// 1s): scrapes that come faster, or at once, share a read.
	CountsMaxAge time.Duration
	// CountsTimeout bounds one read of Counts (default 10s).
	CountsTimeout time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// Histogram buckets, in seconds.
var (
	// taskBuckets span a millisecond to an hour: queue waits and run times.
	taskBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
	// requestBuckets span a millisecond to the longest long poll.
	requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// prepareBuckets span a fast compile to a large image's unpacking.
	prepareBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
)

// New returns Metrics registered in a registry of their own, with the Go
// runtime's and the process's collectors.
func New(opts Options) *Metrics {
	opts = opts.withDefaults()
	fn := []string{"project", "function"}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_tasks_submitted_total", Help: "Tasks accepted into the queue.",
		}, fn),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_tasks_finished_total",
			Help: "Tasks that reached a terminal state, by status and error code (\"\" on success).",
		}, []string{"project", "function", "status", "code"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ward_task_wait_seconds",
			Help:    "Time a finished task waited from due (run_at) to the start of its last run.",
			Buckets: taskBuckets,
		}, fn),
		run: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ward_task_run_seconds",
			Help:    "Time the last run of a finished task took, from its lease to its end.",
			Buckets: taskBuckets,
		}, fn),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_limit_rejections_total", Help: "Submissions and invokes refused by a limit, by the limit's code.",
		}, []string{"project", "function", "limit"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_api_requests_total", Help: "API requests by route pattern and HTTP status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ward_api_request_duration_seconds",
			Help:    "API request latency by route pattern.",
			Buckets: requestBuckets,
		}, []string{"route"}),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ward_sandbox_cold_starts_total",
			Help: "Code preparations (compile or unpack) a runner of this process made because its sandbox did not hold the code.",
		}, []string{"runtime"}),
		prepare: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ward_sandbox_prepare_seconds",
			Help:    "Time a cold start's preparation took.",
			Buckets: prepareBuckets,
		}, []string{"runtime"}),
		codes:   labelSet{max: maxCodes},
		runners: &runnerCollector{},
	}
	m.reg.MustRegister(m.submitted, m.finished, m.wait, m.run, m.rejections, m.requests, m.latency,
		m.coldStarts, m.prepare, m.runners,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.Counts != nil {
		m.counts = NewCounts(opts)
		m.reg.MustRegister(newCountsCollector(m.counts))
	}
	return m
}

// withDefaults fills in opts' unset fields.
func (opts Options) withDefaults() Options {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CountsMaxAge <= 0 {
		opts.CountsMaxAge = time.Second
	}
	if opts.CountsTimeout <= 0 {
		opts.CountsTimeout = 10 * time.Second
	}
	return opts
}

// Counts is the cached reader of the task counts the gauges report, to be
// shared with other readers of the same figures so that a server reads
// them at most once per CountsMaxAge; nil without Options.Counts.
func (m *Metrics) Counts() *Counts { return m.counts }

// Handler serves the metrics in the Prometheus text format (or another
// format the scraper asks for).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer is the registry, for tests and for serving elsewhere.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Submitted implements queue.Observer.
func (m *Metrics) Submitted(project, function string, n int) {
	if n > 0 {
		m.submitted.WithLabelValues(project, function).Add(float64(n))
	}
}

// Rejected implements queue.Observer.
func (m *Metrics) Rejected(project, function string, limit ward.Code) {
	m.rejections.WithLabelValues(project, function, m.codes.label(string(limit))).Inc()
	m.rejected.add(project, function)
}

// Finished implements queue.Observer. A task cancelled before it started
// (run 0) is counted but adds nothing to the wait and run histograms:
// those describe the tasks that ran.
func (m *Metrics) Finished(project, function string, status ward.Status, code ward.Code, wait, run time.Duration) {
	m.finished.WithLabelValues(project, function, string(status), m.codes.label(string(code))).Inc()
	if status == ward.StatusCancelled && run == 0 {
		return
	}
	m.wait.WithLabelValues(project, function).Observe(wait.Seconds())
	m.run.WithLabelValues(project, function).Observe(run.Seconds())
}

// Request records one API request: its route pattern ("" for a path no
// route matches), status and duration.
func (m *Metrics) Request(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, statusLabel(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// ColdStart records a code preparation of a runtime that took d; it fits
// runner.Options.OnColdStart.
func (m *Metrics) ColdStart(rt ward.Runtime, d time.Duration) {
	m.coldStarts.WithLabelValues(string(rt)).Inc()
	m.prepare.WithLabelValues(string(rt)).Observe(d.Seconds())
}

// WatchRunner reports an in-process runner's memory budget, memory in use
// and slots at each scrape.
func (m *Metrics) WatchRunner(r Runner) { m.runners.add(r) }

// statusLabel is an HTTP status as a label value, without allocating for
// the common ones.
func statusLabel(status int) string {
	switch status {
	case http.StatusOK:
		return "200"
	case http.StatusCreated:
		return "201"
	case http.StatusAccepted:
		return "202"
	case http.StatusNoContent:
		return "204"
	}
	return strconv.Itoa(status)
}

// maxCodes bounds the distinct error codes used as label values: codes are
// ward's own, a small set, but a remote runner reports its failures' codes
// itself, and a label must not grow without bound.
const maxCodes = 100

// labelSet admits label values of snake_case shape, up to max distinct
// ones; anything else becomes "other".
type labelSet struct {
	max  int64
	n    atomic.Int64
	seen sync.Map // string → struct{}
}

func (s *labelSet) label(v string) string {
	if _, ok := s.seen.Load(v); ok {
		return v
	}
	if !codeShaped(v) || s.n.Load() >= s.max {
		return "other"
	}
	if _, loaded := s.seen.LoadOrStore(v, struct{}{}); !loaded {
		s.n.Add(1)
	}
	return v
}

// codeShaped reports whether v looks like an error code: "" or up to 64
// lowercase letters, digits and underscores.
func codeShaped(v string) bool {
	if len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
