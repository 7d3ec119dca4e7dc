// Package alert evaluates alert rules and delivers their webhooks. Every
// interval the Evaluator computes each rule's metric for its project (and
// function) from the store (the task counts through the cache the metrics
// share) and the in-process limit counters, moves the rule along ok →
// pending → firing → resolved → ok, records the state in the store, and
// queues a signed webhook for each change, delivered with retries by a
// few background workers so that a slow or failing receiver never holds
// up evaluation or the server. A store lock lets one server of a cluster
// evaluate at a time. Each project also has a builtin rule,
// ward.BuiltinSubmitSurge, that logs and audits a sudden jump in
// submissions.
package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/telemetry"
)

// Defaults.
const (
	DefaultInterval    = 5 * time.Second
	DefaultTimeout     = 5 * time.Second // one webhook attempt
	DefaultAttempts    = 5               // attempts per webhook
	DefaultBackoff     = time.Second     // before the second attempt; doubles each time
	DefaultQueue       = 256             // webhooks waiting for a worker
	DefaultWorkers     = 4
	DefaultWindowLimit = 10_000 // tasks read per window figure
	// LockName is the store lock the evaluating server holds.
	LockName = "alerts"
)

// The builtin submit-surge rule: the last minute's submissions over
// SurgeFactor times the per-minute average of the SurgeBaseline before it,
// and over SurgeFloor.
const (
	SurgeFactor   = 10
	SurgeFloor    = 100
	SurgeBaseline = 15 * time.Minute
)

// Rejections reads the limit rejections counted in this process;
// *telemetry.Metrics implements it.
type Rejections interface {
	Rejections(project, function string) float64
}

// TaskCounts reads the task counts of every function of every project,
// shared among its callers; *telemetry.Counts implements it.
type TaskCounts interface {
	Read(ctx context.Context) ([]store.TaskCount, error)
}

// Options configure an Evaluator. Store is required.
type Options struct {
	Store      store.Store
	Rejections Rejections // nil: limit_rejections is always 0
	// Counts reads the task counts of queue_depth and running; give it the
	// metrics' (telemetry.Metrics.Counts) so that both share one read.
	// nil: a cache of Store's own, read at most once a second.
	Counts TaskCounts
	// OnSurge is told of each state change of a project's builtin
	// submit-surge rule (the server audits it); it may be nil.
	OnSurge  func(ctx context.Context, n ward.AlertNotification)
	Logger   *slog.Logger
	Now      func() time.Time
	Interval time.Duration // 0 = DefaultInterval
	// Client sends webhooks; nil means one with Timeout that follows no
	// redirects.
	Client   *http.Client
	Timeout  time.Duration // 0 = DefaultTimeout
	Attempts int           // 0 = DefaultAttempts
	Backoff  time.Duration // 0 = DefaultBackoff
	Queue    int           // 0 = DefaultQueue
	Workers  int           // 0 = DefaultWorkers
	Holder   string        // this server's name for the lock; "" = random
}

// Evaluator evaluates rules and sends their webhooks.
type Evaluator struct {
	st       store.Store
	rej      Rejections
	counts   TaskCounts
	onSurge  func(ctx context.Context, n ward.AlertNotification)
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	holder   string

	client   *http.Client
	attempts int
	backoff  time.Duration
	workers  int
	queue    chan delivery

	mu      sync.Mutex
	samples map[string][]sample               // rejection counter samples by project/function
	surge   map[string]store.AlertStateRecord // builtin states by project, once read
}

// sample is a counter's value at a time.
type sample struct {
	at time.Time
	v  float64
}

// New returns an Evaluator; Run starts it.
func New(opts Options) *Evaluator {
	if opts.Store == nil {
		panic("alert: New needs a Store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Counts == nil {
		opts.Counts = telemetry.NewCounts(telemetry.Options{Counts: opts.Store, Logger: opts.Logger, Now: opts.Now})
	}
	e := &Evaluator{
		st: opts.Store, rej: opts.Rejections, counts: opts.Counts, onSurge: opts.OnSurge, log: opts.Logger, now: opts.Now,
		interval: cmp(opts.Interval, DefaultInterval), holder: opts.Holder,
		client: opts.Client, attempts: cmp(opts.Attempts, DefaultAttempts), backoff: cmp(opts.Backoff, DefaultBackoff),
		workers: cmp(opts.Workers, DefaultWorkers), queue: make(chan delivery, cmp(opts.Queue, DefaultQueue)),
		samples: map[string][]sample{}, surge: map[string]store.AlertStateRecord{},
	}
	if e.holder == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		e.holder = "server-" + hex.EncodeToString(b)
	}
	if e.client == nil {
		e.client = &http.Client{
			Timeout:       cmp(opts.Timeout, DefaultTimeout),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return e
}

// cmp returns v, or def when v is not positive.
func cmp[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Interval is the time between evaluations, the shortest a rule's for.
func (e *Evaluator) Interval() time.Duration { return e.interval }

// Run evaluates every interval and delivers webhooks until ctx ends; the
// workers stop with it, dropping deliveries not yet made.
func (e *Evaluator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range e.workers {
		wg.Go(func() { e.deliverLoop(ctx) })
	}
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("alert evaluation", "err", err)
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
	}
}

// Evaluate runs one evaluation of every rule, if this server holds the
// evaluation lock; webhooks for the changes are queued for the workers.
func (e *Evaluator) Evaluate(ctx context.Context) error {
	now := e.now()
	held, err := e.st.AcquireLock(ctx, &store.AcquireLockParams{Name: LockName, Holder: e.holder, TTL: 3 * e.interval, Now: now})
	if err != nil {
		return err
	}
	if !held {
		e.mu.Lock()
		clear(e.surge) // another server moves them meanwhile
		e.mu.Unlock()
		return nil
	}
	rules, err := e.st.ListAlerts(ctx, "")
	if err != nil {
		return err
	}
	var counts []store.TaskCount
	if slices.ContainsFunc(rules, func(r store.AlertRecord) bool {
		return r.Metric == ward.MetricQueueDepth || r.Metric == ward.MetricRunning
	}) {
		if counts, err = e.counts.Read(ctx); err != nil {
			return err
		}
	}
	var updates []store.AlertStateUpdate
	var sends []delivery
	for i := range rules {
		r := &rules[i]
		v, err := e.metric(ctx, r, counts, now)
		if err != nil {
			e.log.Warn("alert metric", "project", r.Project, "alert", r.Name, "err", err)
			continue
		}
		cur := store.AlertStateRecord{State: r.State}
		if r.Since != nil {
			cur.Since = *r.Since
		}
		u := transition(r.Project, r.Name, cur, r.Op.Holds(v, r.Threshold), r.For(), v, now)
		updates = append(updates, u)
		if u.Event != nil && notifies(cur.State, u.State) {
			sends = append(sends, delivery{rule: *r, n: notification(&r.Alert, u.State, v, now)})
		}
	}
	surges, err := e.evaluateSurge(ctx, now)
	if err != nil {
		e.log.Warn("alert builtin evaluation", "err", err)
	}
	updates = append(updates, surges...)
	if err := e.st.SetAlertStates(ctx, &store.SetAlertStatesParams{States: updates}); err != nil {
		return err
	}
	e.mu.Lock()
	for _, u := range surges {
		e.surge[u.Project] = store.AlertStateRecord{State: u.State, Value: u.Value, Since: u.Since, EvaluatedAt: u.EvaluatedAt, Found: true}
	}
	e.mu.Unlock()
	for _, u := range surges {
		if u.Event != nil {
			e.surgeChanged(ctx, u)
		}
	}
	for _, d := range sends {
		e.enqueue(ctx, d)
	}
	return nil
}

// transition moves a rule's state for one evaluation: whether its
// condition holds now, its for, and the metric's value. It returns the
// update to record, with an event when the state changed.
func transition(project, name string, cur store.AlertStateRecord, holds bool, forD time.Duration, v float64, now time.Time) store.AlertStateUpdate {
	next, since := cur.State, cur.Since
	switch cur.State {
	case ward.AlertPending:
		switch {
		case !holds:
			next = ward.AlertOK
		case now.Sub(cur.Since) >= forD:
			next = ward.AlertFiring
		}
	case ward.AlertFiring:
		if !holds {
			next = ward.AlertResolved
		}
	default: // ok, resolved, or never evaluated
		switch {
		case holds && forD <= 0:
			next = ward.AlertFiring
		case holds:
			next = ward.AlertPending
		default:
			next = ward.AlertOK
		}
	}
	if next != cur.State || since.IsZero() {
		since = now
	}
	u := store.AlertStateUpdate{Project: project, Name: name, State: next, Since: since, Value: v, EvaluatedAt: now}
	if next != cur.State {
		u.Event = &ward.AlertEvent{At: now, Kind: ward.EventState, State: next, Value: v}
	}
	return u
}

// notifies reports whether a change from one state to another sends a
// webhook: every change but resolved → ok (resolved already said it is
// over) and the first evaluation's ok.
func notifies(from, to ward.AlertState) bool {
	if to == ward.AlertOK {
		return from == ward.AlertPending
	}
	return true
}

func notification(a *ward.Alert, state ward.AlertState, v float64, now time.Time) ward.AlertNotification {
	return ward.AlertNotification{Alert: a.Name, Project: a.Project, Function: a.Function, Metric: a.Metric, Op: a.Op,
		Value: v, Threshold: a.Threshold, State: state, At: now.UTC()}
}

// metric computes a rule's metric at now.
func (e *Evaluator) metric(ctx context.Context, r *store.AlertRecord, counts []store.TaskCount, now time.Time) (float64, error) {
	switch r.Metric {
	case ward.MetricQueueDepth, ward.MetricRunning:
		var n int
		for _, c := range counts {
			if c.Project != r.Project || (r.Function != "" && c.Function != r.Function) {
				continue
			}
			if r.Metric == ward.MetricQueueDepth {
				n += c.Due
			} else {
				n += c.Running
			}
		}
		return float64(n), nil
	case ward.MetricLimitRejections:
		return e.rejections(r.Project, r.Function, now), nil
	}
	w, err := store.Window(ctx, e.st, &store.TaskWindowParams{Project: r.Project, Function: r.Function,
		Since: now.Add(-ward.AlertWindow), Until: now, Limit: DefaultWindowLimit, SubmittedOnly: r.Metric == ward.MetricSubmitRate})
	if err != nil {
		return 0, err
	}
	return windowMetric(r.Metric, w), nil
}

// windowMetric computes a window figure.
func windowMetric(m ward.AlertMetric, w store.TaskWindow) float64 {
	switch m {
	case ward.MetricSubmitRate:
		return float64(w.Submitted) / ward.AlertWindow.Seconds()
	case ward.MetricFailureRate:
		if w.Finished == 0 {
			return 0
		}
		return float64(w.Failed) / float64(w.Finished)
	case ward.MetricWaitP95:
		return P95(w.Waits).Seconds()
	}
	return 0
}

// P95 is the 95th percentile of ds (nearest rank), 0 for none.
func P95(ds []time.Duration) time.Duration { return Percentiles(ds, 95)[0] }

// Percentiles returns the qs-th percentiles of ds by nearest rank (the
// q-th is the smallest value with at least q percent of ds at or below
// it), each q clamped to 1–100, sorting a copy of ds once; zeros for none.
// Both the alert rules' wait_p95 and the API's project stats use it.
func Percentiles(ds []time.Duration, qs ...int) []time.Duration {
	out := make([]time.Duration, len(qs))
	if len(ds) == 0 {
		return out
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	for i, q := range qs {
		q = min(max(q, 1), 100)
		rank := (q*len(s) + 99) / 100 // ceil(q/100 · n), 1-based
		out[i] = s[rank-1]
	}
	return out
}

// rejections returns the increase of a rejection counter over the last
// window, from the samples taken at each evaluation (the oldest sample
// within the window is the baseline; the first evaluation counts 0).
func (e *Evaluator) rejections(project, function string, now time.Time) float64 {
	if e.rej == nil {
		return 0
	}
	v := e.rej.Rejections(project, function)
	key := project + "/" + function
	e.mu.Lock()
	defer e.mu.Unlock()
	ss := append(e.samples[key], sample{at: now, v: v})
	// Keep the newest sample at or before the window's start as baseline.
	cut := 0
	for i, s := range ss {
		if !s.at.After(now.Add(-ward.AlertWindow)) {
			cut = i
		}
	}
	ss = ss[cut:]
	e.samples[key] = ss
	return max(0, v-ss[0].v)
}
