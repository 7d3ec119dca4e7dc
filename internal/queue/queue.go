// Package queue is ward's task queue: it validates and enqueues submissions,
// hands leased tasks to runners, chooses each finished run's next state
// (success, retry with exponential backoff, failure), reaps expired leases,
// and wakes long-polling readers when a task finishes. Persistence and
// atomicity belong to the store; the policy belongs here.
package queue

import (
	"context"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// Options configure a Service.
type Options struct {
	Store  store.Store
	Logger *slog.Logger
	Now    func() time.Time
	// LeaseTTL is how long a lease lives without a heartbeat (default 30s).
	LeaseTTL time.Duration
	// ReapInterval is how often expired leases are reaped (default 1s).
	ReapInterval time.Duration
	// MaxBackoff caps the retry backoff (default 1h).
	MaxBackoff time.Duration
	// ConfigTTL bounds how long a function's merged config is cached (default 2s).
	ConfigTTL time.Duration
	// Tokens mints the tokens of input.tokenize; without it a function that
	// tokenizes refuses submissions.
	Tokens Tokens
	// Notifier, for a store several servers share, carries "work may be
	// available" between them, so their runners need not wait for a poll.
	Notifier store.Notifier
	// Observer is told about submissions, rejections and finished tasks
	// (default: nothing is told).
	Observer Observer
	// Bus, for a store several servers share, carries live logs between
	// them, sealed with Keys; it is used only when both are set.
	Bus  store.Broadcaster
	Keys Sealer
}

// Service is the queue. It is safe for concurrent use.
type Service struct {
	st         store.Store
	log        *slog.Logger
	now        func() time.Time
	leaseTTL   time.Duration
	reapEvery  time.Duration
	maxBackoff time.Duration

	wake    *signal          // work may be available
	idle    idleGate         // no work was due when last looked
	waiters *waiters         // per-task terminal notifications
	env     *cache[funcEnv]  // merged config and secrets per function
	funcs   *cache[deployed] // function records, for submissions
	// projects caches project records (quotas), rates the submit_rate
	// buckets.
	projects *cache[ward.Project]
	rates    *rates

	tokens   Tokens
	notifier store.Notifier
	vaulted  vaultLog // tokens written to the vault today
	obs      Observer
	runs     runs // the runs this server leased: live logs, and what the Observer is told of their end

	bus     store.Broadcaster // nil: live logs stay on the server that leased the run
	keys    Sealer
	busID   string  // this server on the bus
	watches watches // runs leased elsewhere that followers here follow
}

// New returns a Service over st.
func New(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 30 * time.Second
	}
	if opts.ReapInterval <= 0 {
		opts.ReapInterval = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Hour
	}
	if opts.ConfigTTL <= 0 {
		opts.ConfigTTL = 2 * time.Second
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	s := &Service{
		st:         opts.Store,
		log:        opts.Logger,
		now:        opts.Now,
		leaseTTL:   opts.LeaseTTL,
		reapEvery:  opts.ReapInterval,
		maxBackoff: opts.MaxBackoff,
		wake:       newSignal(),
		waiters:    newWaiters(),
		tokens:     opts.Tokens,
		notifier:   opts.Notifier,
		obs:        opts.Observer,
	}
	if opts.Bus != nil && opts.Keys != nil {
		s.bus, s.keys, s.busID = opts.Bus, opts.Keys, newBusID()
	}
	s.env = newCache(opts.ConfigTTL, opts.Now, s.loadEnv)
	s.funcs = newCache(time.Second, opts.Now, s.loadFunction)
	s.projects = newCache(time.Second, opts.Now, s.loadProject)
	s.rates = newRates()
	return s
}

// Run reaps expired leases, and, when the store is shared, listens for
// work made available by other servers and for live logs on the bus,
// until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.reapEvery)
	defer t.Stop()
	if s.notifier != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			_ = s.notifier.Listen(ctx, s.wake.broadcast)
		}()
	}
	if s.bus != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			_ = s.bus.Subscribe(ctx, func(msg []byte) { s.onBus(ctx, msg) })
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Reap(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("reap expired leases", "err", err)
			}
		}
	}
}

// Reap expires leases whose runner stopped heartbeating: their tasks return
// to the queue (a platform retry) or fail with lease_expired.
func (s *Service) Reap(ctx context.Context) error {
	now := s.now()
	ids, err := s.st.ExpireLeases(ctx, &store.ExpireParams{Now: now, PlatformRetries: ward.PlatformRetries})
	if err != nil {
		return err
	}
	s.reaped(ids, now)
	if len(ids) > 0 {
		s.log.Warn("leases expired", "tasks", len(ids))
		for _, id := range ids {
			s.waiters.notify(id)
		}
		s.workAvailable(ctx)
	}
	return nil
}

// ReapOrphans returns every running task to the queue as a platform retry
// (or fails it once its platform retries are used up), live lease or not.
// Only for a store no live runner uses: `ward dev` calls it at start, since
// any lease it finds belongs to a process that died.
func (s *Service) ReapOrphans(ctx context.Context) (int, error) {
	now := s.now()
	ids, err := s.st.ExpireLeases(ctx, &store.ExpireParams{Now: now, ExpiredBy: now.Add(100 * 365 * 24 * time.Hour), PlatformRetries: ward.PlatformRetries})
	if err != nil {
		return 0, err
	}
	if len(ids) > 0 {
		s.workAvailable(ctx)
	}
	return len(ids), nil
}

// NewTaskID returns a new sortable task ID ("t_" + UUIDv7 in hex).
func NewTaskID() string {
	u := uuid.Must(uuid.NewV7())
	return "t_" + hex.EncodeToString(u[:])
}

// backoff returns the delay before user attempt n+1 after n failed attempts:
// base·2^(n−1), capped.
func backoff(base time.Duration, n int, limit time.Duration) time.Duration {
	if base <= 0 || n < 1 {
		return 0
	}
	d := base
	for i := 1; i < n; i++ {
		d *= 2
		if d >= limit {
			return limit
		}
	}
	return min(d, limit)
}

// signal wakes every current waiter at once, and counts its broadcasts.
type signal struct {
	mu  sync.Mutex
	ch  chan struct{}
	gen uint64
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

// wait returns a channel closed at the next broadcast, and the number of
// broadcasts so far.
func (s *signal) wait() (<-chan struct{}, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch, s.gen
}

// workAvailable wakes this server's lease waits and, for a shared store,
// every other server's.
func (s *Service) workAvailable(ctx context.Context) {
	s.wake.broadcast()
	if s.notifier != nil {
		s.notifier.Notify(ctx)
	}
}

func (s *signal) broadcast() {
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.gen++
	s.mu.Unlock()
}

// idleGate remembers, for each set of runtimes leased, that the store had
// no due queued task of those runtimes, so that lease calls for that set
// skip the store (a write transaction each) until something may have
// changed: a broadcast of the wake signal, the next queued task's run_at,
// or, at the latest, maxIdle later — the poll that notices what another
// server enqueued should its notification be lost. What is due for one set
// says nothing of another: a due oci task keeps the gate of runners that
// run oci open, not that of runners that run only wasm, which would
// otherwise scan for it at every call and never take it.
type idleGate struct {
	mu sync.Mutex
	m  map[string]idleState // by runtimesKey
}

// idleState is what the last look for one set of runtimes saw.
type idleState struct {
	set   bool      // nothing was due
	gen   uint64    // the wake signal's broadcasts when it was seen idle
	until time.Time // when a queued task becomes due, or the poll
}

// maxIdle bounds how long the gate trusts what it saw.
const maxIdle = time.Second

// maxIdleSets bounds the sets of runtimes the gate keeps: past it, it
// forgets them all, which only costs the next lease of each set a scan.
const maxIdleSets = 64

// runtimesKey names a set of runtimes (store.RuntimeNames: distinct and
// sorted; none = every runtime) in the idle gate.
func runtimesKey(names []string) string { return strings.Join(names, "\x00") }

// record notes what NextRunAt said for the runtimes key after a lease at
// wake generation gen: idle unless a queued task of them is due at now.
func (g *idleGate) record(key string, gen uint64, now, next time.Time, queued bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, known := g.m[key]; g.m == nil || (!known && len(g.m) >= maxIdleSets) {
		g.m = map[string]idleState{}
	}
	if queued && !next.After(now) {
		g.m[key] = idleState{}
		return
	}
	st := idleState{set: true, gen: gen, until: now.Add(maxIdle)}
	if queued && next.Before(st.until) {
		st.until = next
	}
	g.m[key] = st
}

// idle reports whether nothing of the runtimes key can be due at now at
// wake generation gen, and until when.
func (g *idleGate) idle(key string, gen uint64, now time.Time) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.m[key]
	return st.until, st.idle(gen, now)
}

// allIdle reports whether the gate has seen some set of runtimes and every
// set it has seen is idle at now at wake generation gen: then no lease call
// can find anything due, whatever runtimes it asks for.
func (g *idleGate) allIdle(gen uint64, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range g.m {
		if !st.idle(gen, now) {
			return false
		}
	}
	return len(g.m) > 0
}

func (st idleState) idle(gen uint64, now time.Time) bool {
	return st.set && st.gen == gen && now.Before(st.until)
}

// waiters notifies long-polling readers when a task may have changed.
type waiters struct {
	mu sync.Mutex
	m  map[string][]chan struct{}
}

func newWaiters() *waiters { return &waiters{m: map[string][]chan struct{}{}} }

func (w *waiters) add(id string) chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	w.m[id] = append(w.m[id], ch)
	w.mu.Unlock()
	return ch
}

func (w *waiters) remove(id string, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.m[id]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(w.m, id)
	} else {
		w.m[id] = list
	}
}

func (w *waiters) notify(id string) {
	w.mu.Lock()
	list := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	for _, ch := range list {
		close(ch)
	}
}
