package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite" // registers the "sqlite" driver, as ward's SQLite store does
)

// riverTuning is how a River system is configured.
type riverTuning struct {
	maxWorkers        int           // QueueConfig.MaxWorkers of the one queue
	fetchCooldown     time.Duration // Config.FetchCooldown
	fetchPollInterval time.Duration // Config.FetchPollInterval
	poolConns         int           // database connections
}

// The tunings of the two River systems, for throughput as River advises: a
// short FetchCooldown (the 100 ms default holds a client near 1k jobs/s)
// and many workers (its own benchmark runs 2,000). The same settings serve
// the latency workload: FetchCooldown bounds how soon a notified producer
// fetches, and on SQLite, whose listener polls a table every 50 ms,
// FetchPollInterval is what wakes the producer soonest. BenchmarkPeersTuning
// and BenchmarkPeersLatencyTuning measure the alternatives. River's SQLite
// driver advises a pool of one connection.
var (
	riverSQLiteTuning = riverTuning{maxWorkers: 1000, fetchCooldown: time.Millisecond, fetchPollInterval: 5 * time.Millisecond, poolConns: 1}
	riverPgxTuning    = riverTuning{maxWorkers: 1000, fetchCooldown: time.Millisecond, fetchPollInterval: 5 * time.Millisecond, poolConns: 8}
)

// settings describes t for System.Settings.
func (t riverTuning) settings(insert string, extra ...string) []string {
	s := []string{
		fmt.Sprintf("MaxWorkers=%d", t.maxWorkers),
		"FetchCooldown=" + t.fetchCooldown.String(),
		"FetchPollInterval=" + t.fetchPollInterval.String(),
		"Insert=" + insert,
	}
	return append(s, extra...)
}

// riverStopTimeout bounds how long Close waits for a client to stop.
const riverStopTimeout = 30 * time.Second

// riverSQLite is River on SQLite: River's SQLite driver on database/sql
// with modernc.org/sqlite (the pure-Go SQLite ward's own store uses), one
// new database file per instance, WAL and synchronous=NORMAL like ward's
// store, and the single connection River's driver advises.
func riverSQLite() System {
	t := riverSQLiteTuning
	return System{
		Name:  "River (SQLite)",
		Store: "SQLite",
		Settings: t.settings("InsertManyFast",
			fmt.Sprintf("MaxOpenConns=%d", t.poolConns),
			"journal_mode=WAL", "synchronous=NORMAL"),
		Open: func(ctx context.Context, env *Env) (Queue, error) {
			return openRiverSQLite(ctx, env, t)
		},
	}
}

// riverPgx is River on PostgreSQL with River's pgx driver, in a new empty
// database per instance.
func riverPgx() System {
	t := riverPgxTuning
	return System{
		Name:     "River (pgx)",
		Store:    "PostgreSQL",
		Settings: t.settings("InsertManyFast (COPY)", fmt.Sprintf("pgxpool.MaxConns=%d", t.poolConns)),
		Open: func(ctx context.Context, env *Env) (Queue, error) {
			return openRiverPgx(ctx, env, t)
		},
	}
}

func openRiverSQLite(ctx context.Context, env *Env, t riverTuning) (Queue, error) {
	q := &riverQueue[*sql.Tx]{name: "river (sqlite)"}
	f, err := os.CreateTemp(env.Dir, "river-*.sqlite")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q.name, err)
	}
	path := f.Name()
	f.Close()
	q.cleanup = append(q.cleanup, func() error {
		var errs []error
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("%s: %w", q.name, err)
	}
	db.SetMaxOpenConns(t.poolConns)
	db.SetMaxIdleConns(t.poolConns)
	q.cleanup = append(q.cleanup, db.Close)
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		q.Close()
		return nil, fmt.Errorf("%s: %w", q.name, err)
	}
	if !strings.EqualFold(mode, "wal") {
		q.Close()
		return nil, fmt.Errorf("%s: journal mode is %q, not WAL", q.name, mode)
	}
	q.count = func(ctx context.Context) (int, int, error) {
		var jobs, completed int
		err := db.QueryRowContext(ctx, riverCountSQL).Scan(&jobs, &completed)
		return jobs, completed, err
	}
	if err := q.start(ctx, riversqlite.New(db), env, t); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func openRiverPgx(ctx context.Context, env *Env, t riverTuning) (Queue, error) {
	q := &riverQueue[pgx.Tx]{name: "river (pgx)"}
	if env.Postgres == nil {
		return nil, fmt.Errorf("%s: no PostgreSQL server", q.name)
	}
	url, drop, err := env.Postgres.Fresh(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q.name, err)
	}
	q.cleanup = append(q.cleanup, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return drop(ctx)
	})
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("%s: %w", q.name, err)
	}
	cfg.MaxConns = int32(t.poolConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("%s: %w", q.name, err)
	}
	q.cleanup = append(q.cleanup, func() error { pool.Close(); return nil })
	q.count = func(ctx context.Context) (int, int, error) {
		var jobs, completed int
		err := pool.QueryRow(ctx, riverCountSQL).Scan(&jobs, &completed)
		return jobs, completed, err
	}
	if err := q.start(ctx, riverpgxv5.New(pool), env, t); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// riverCountSQL counts the jobs in a River database, and those completed.
const riverCountSQL = `SELECT count(*), coalesce(sum(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), 0) FROM river_job`

// riverArgs are the arguments of the benchmark's no-op job: its number,
// and for the latency workload the time (UnixNano) just before its insert.
type riverArgs struct {
	Seq  int   `json:"seq"`
	Sent int64 `json:"sent,omitempty"`
}

// Kind names the job kind.
func (riverArgs) Kind() string { return "bench_noop" }

// riverWorker works the no-op job; in the latency workload it records when
// the job began.
type riverWorker struct {
	river.WorkerDefaults[riverArgs]
	lat *atomic.Pointer[peerLatencies]
}

// Work records the job's latency when one is being measured, and does
// nothing else.
func (w *riverWorker) Work(ctx context.Context, job *river.Job[riverArgs]) error {
	now := time.Now()
	if l := w.lat.Load(); l != nil && job.Args.Sent != 0 {
		l.record(job.Args.Seq, now.Sub(time.Unix(0, job.Args.Sent)))
	}
	return nil
}

// riverQueue is a running River client on a fresh database.
type riverQueue[TTx any] struct {
	name    string
	client  *river.Client[TTx] // set once started
	stopRun context.CancelFunc // cancels the context the client runs in
	lat     atomic.Pointer[peerLatencies]
	// count returns the number of jobs in the database and of those
	// completed.
	count func(ctx context.Context) (jobs, completed int, err error)
	// cleanup is run by Close in reverse order, after the client stopped.
	cleanup []func() error

	closeOnce sync.Once
	closeErr  error
}

// start migrates the database and starts a client with the no-op worker.
func (q *riverQueue[TTx]) start(ctx context.Context, driver riverdriver.Driver[TTx], env *Env, t riverTuning) error {
	logger := peerLogger(env.Logger)
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: logger})
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", q.name, err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("%s: migrate: %w", q.name, err)
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &riverWorker{lat: &q.lat}); err != nil {
		return fmt.Errorf("%s: %w", q.name, err)
	}
	client, err := river.NewClient(driver, &river.Config{
		FetchCooldown:     t.fetchCooldown,
		FetchPollInterval: t.fetchPollInterval,
		Logger:            logger,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: t.maxWorkers}},
		Workers:           workers,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", q.name, err)
	}
	// The client outlives Open's context: it runs until Close.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := client.Start(runCtx); err != nil {
		cancel()
		return fmt.Errorf("%s: start: %w", q.name, err)
	}
	q.client, q.stopRun = client, cancel
	return nil
}

// Throughput inserts n jobs in batches with InsertManyFast and waits until
// River reports each completed. River's completer sends a completion event
// only after the completion is persisted (the batch's UPDATE has returned),
// so the last event marks the last job whose completion is committed.
func (q *riverQueue[TTx]) Throughput(ctx context.Context, n, batch int) (insert, total time.Duration, err error) {
	if err := peerCheckThroughput(n, batch); err != nil {
		return 0, 0, err
	}
	jobs0, completed0, err := q.count(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: count jobs: %w", q.name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A buffer for every event, so that none is dropped.
	events, unsubscribe := q.client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: n,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer unsubscribe()
	type result struct {
		last time.Time
		err  error
	}
	res := make(chan result, 1)
	go func() {
		var last time.Time
		for done := 0; done < n; {
			select {
			case ev, ok := <-events:
				if !ok {
					res <- result{err: fmt.Errorf("%s: client stopped after %d of %d completions", q.name, done, n)}
					return
				}
				if ev.Kind != river.EventKindJobCompleted {
					res <- result{err: fmt.Errorf("%s: job %d: %s", q.name, ev.Job.ID, ev.Kind)}
					return
				}
				done++
				last = time.Now()
			case <-ctx.Done():
				res <- result{err: fmt.Errorf("%s: %d of %d jobs completed: %w", q.name, done, n, ctx.Err())}
				return
			}
		}
		res <- result{last: last}
	}()

	params := make([]river.InsertManyParams, batch)
	start := time.Now()
	for i := 0; i < n; i += batch {
		m := min(batch, n-i)
		for j := range m {
			params[j] = river.InsertManyParams{Args: riverArgs{Seq: i + j}}
		}
		if _, err := q.client.InsertManyFast(ctx, params[:m]); err != nil {
			cancel()
			<-res
			return 0, 0, fmt.Errorf("%s: insert: %w", q.name, err)
		}
	}
	insert = time.Since(start)
	r := <-res
	if r.err != nil {
		return 0, 0, r.err
	}
	total = r.last.Sub(start)

	jobs, completed, err := q.count(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: count jobs: %w", q.name, err)
	}
	if jobs-jobs0 != n || completed-completed0 != n {
		return 0, 0, fmt.Errorf("%s: %d jobs stored, %d completed, want %d of each", q.name, jobs-jobs0, completed-completed0, n)
	}
	return insert, total, nil
}

// Latency inserts n jobs one at a time at the rate and returns each job's
// insert→start latency.
func (q *riverQueue[TTx]) Latency(ctx context.Context, n int, rate float64) ([]time.Duration, error) {
	return peerLatency(ctx, q.name, &q.lat, n, rate, func(ctx context.Context, i int, sent int64) error {
		_, err := q.client.Insert(ctx, riverArgs{Seq: i, Sent: sent}, nil)
		return err
	})
}

// counts returns the number of jobs in the database and of those
// completed.
func (q *riverQueue[TTx]) counts(ctx context.Context) (jobs, completed int, err error) {
	return q.count(ctx)
}

// Close stops the client, closes the pool and removes the database. It is
// safe to call more than once.
func (q *riverQueue[TTx]) Close() error {
	if q == nil {
		return nil
	}
	q.closeOnce.Do(func() { q.closeErr = q.close() })
	return q.closeErr
}

func (q *riverQueue[TTx]) close() error {
	var errs []error
	if q.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), riverStopTimeout)
		if err := q.client.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: stop: %w", q.name, err))
			q.stopRun() // a hard stop: cancels the jobs' contexts too
			select {
			case <-q.client.Stopped():
			case <-time.After(riverStopTimeout):
				errs = append(errs, fmt.Errorf("%s: client did not stop", q.name))
			}
		}
		cancel()
	}
	if q.stopRun != nil {
		q.stopRun()
	}
	for i := len(q.cleanup) - 1; i >= 0; i-- {
		if err := q.cleanup[i](); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", q.name, err))
		}
	}
	return errors.Join(errs...)
}
