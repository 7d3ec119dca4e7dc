package main

import (
	"context"
	"log/slog"
	"time"
)

// Queue is one system under test in workloads a and b: ward on one of its
// stores, or a peer job queue. Each Queue is opened on empty state and
// closed after one run of one workload.
type Queue interface {
	// Throughput runs workload a: with the workers running, it inserts n
	// tasks in batches of batch (one insert call per batch) and returns
	// once every task has completed: the time the inserts took and the
	// time from the first insert to the last completion.
	Throughput(ctx context.Context, n, batch int) (insert, total time.Duration, err error)
	// Latency runs workload b: it enqueues n tasks one at a time, one
	// every 1/rate seconds, and returns each task's enqueue→start
	// latency: from just before its insert call to the moment its worker
	// (or sandbox) began it.
	Latency(ctx context.Context, n int, rate float64) ([]time.Duration, error)
	// Close stops the workers and removes what the queue made.
	Close() error
}

// System names a Queue and opens fresh instances of it.
type System struct {
	Name  string // as printed in the table, e.g. "River (pgx)"
	Store string // what holds its queue: "SQLite", "PostgreSQL", "Redis"
	// Settings describes how the system is tuned, one "key=value" per
	// entry, printed with the table.
	Settings []string
	// Open starts a fresh instance on empty state.
	Open func(ctx context.Context, env *Env) (Queue, error)
}

// Env is what a system may use: a scratch directory, the services, the
// logger. The services are started once per invocation of the command.
type Env struct {
	Dir      string // empty scratch directory of this run, removed after it
	Postgres *Postgres
	Redis    *Redis
	Logger   *slog.Logger // at Warn or discarding (the peer libraries log routine work below Warn), or nil
	Workers  int          // worker goroutines or slots a system should run (the CPU count)
}
