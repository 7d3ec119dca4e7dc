package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wardhq/ward"
)

// asynqTuning is how the Asynq system is configured.
type asynqTuning struct {
	concurrency       int           // Config.Concurrency
	taskCheckInterval time.Duration // Config.TaskCheckInterval
	enqueuers         int           // goroutines enqueueing one batch
	poolSize          int           // go-redis pool of the client
}

// asynqDefaultTuning is the Asynq system's tuning. Concurrency is raised
// from the default (the CPU count), as Asynq advises for short tasks,
// though from 10 to 500 it changes little: the server dequeues one task at
// a time. TaskCheckInterval, how long an idle server sleeps before it
// looks for tasks again, is cut from 1 s to 2 ms, which sets the latency
// of workload b. Asynq has no batch insert: a batch is enqueued by 32
// goroutines, which enqueue faster than 8 (BenchmarkPeersTuning measures
// the alternatives), on a client pool of 64 connections.
var asynqDefaultTuning = asynqTuning{concurrency: 100, taskCheckInterval: 2 * time.Millisecond, enqueuers: 32, poolSize: 64}

// asynqTaskType names the benchmark's no-op task.
const asynqTaskType = "bench:noop"

// asynqQueueName is the one queue the tasks go to (Asynq's default).
const asynqQueueName = "default"

// asynqRedis is Asynq on the Redis server of the run, in its database 0,
// which each instance flushes when it opens and when it closes.
func asynqRedis() System {
	t := asynqDefaultTuning
	return System{
		Name:  "Asynq",
		Store: "Redis",
		Settings: []string{
			fmt.Sprintf("Concurrency=%d", t.concurrency),
			"TaskCheckInterval=" + t.taskCheckInterval.String(),
			fmt.Sprintf("Insert=Enqueue from %d goroutines per batch (no batch insert)", t.enqueuers),
			fmt.Sprintf("PoolSize=%d", t.poolSize),
		},
		Open: func(ctx context.Context, env *Env) (Queue, error) {
			return openAsynq(ctx, env, t)
		},
	}
}

// asynqQueue is a running Asynq server and a client on a flushed Redis
// database.
type asynqQueue struct {
	addr      string
	enqueuers int // goroutines enqueueing one batch
	client    *asynq.Client
	insp      *asynq.Inspector
	srv       *asynq.Server // set once started
	lat       atomic.Pointer[peerLatencies]
	ran       asynqCounter // handler returns
	flushed   bool         // Open emptied the database, so Close does too

	closeOnce sync.Once
	closeErr  error
}

func openAsynq(ctx context.Context, env *Env, t asynqTuning) (Queue, error) {
	if env.Redis == nil {
		return nil, errors.New("asynq: no Redis server")
	}
	q := &asynqQueue{addr: env.Redis.Addr, enqueuers: t.enqueuers}
	if err := q.flush(ctx); err != nil {
		return nil, err
	}
	q.flushed = true
	opt := asynq.RedisClientOpt{Addr: q.addr, PoolSize: t.poolSize}
	q.client = asynq.NewClient(opt)
	q.insp = asynq.NewInspector(asynq.RedisClientOpt{Addr: q.addr})
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: q.addr}, asynq.Config{
		Concurrency:       t.concurrency,
		TaskCheckInterval: t.taskCheckInterval,
		Queues:            map[string]int{asynqQueueName: 1},
		Logger:            asynqLogger{peerLogger(env.Logger)},
		LogLevel:          asynq.WarnLevel,
	})
	if err := srv.Start(asynq.HandlerFunc(q.handle)); err != nil {
		q.Close()
		return nil, fmt.Errorf("asynq: start: %w", err)
	}
	q.srv = srv
	return q, nil
}

// handle is the no-op task handler; in the latency workload it records
// when the task began.
func (q *asynqQueue) handle(ctx context.Context, t *asynq.Task) error {
	now := time.Now()
	defer q.ran.add()
	if l := q.lat.Load(); l != nil {
		seq, sent, err := asynqDecode(t.Payload())
		if err != nil {
			return err
		}
		if sent != 0 {
			l.record(seq, now.Sub(time.Unix(0, sent)))
		}
	}
	return nil
}

// Throughput enqueues n tasks, each batch by a few concurrent goroutines
// (Asynq has no batch insert), counts the handler returns, then polls the
// Inspector until no task is pending or active and n more are recorded
// as processed: for each, the handler has returned and the server has
// removed the task and counted it.
func (q *asynqQueue) Throughput(ctx context.Context, n, batch int) (insert, total time.Duration, err error) {
	if err := peerCheckThroughput(n, batch); err != nil {
		return 0, 0, err
	}
	_, processed0, err := q.counts(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("asynq: queue info: %w", err)
	}
	base := q.ran.load()
	start := time.Now()
	for i := 0; i < n; i += batch {
		if err := q.enqueueBatch(ctx, i, min(batch, n-i)); err != nil {
			return 0, 0, err
		}
	}
	insert = time.Since(start)
	if err := q.ran.wait(ctx, base+int64(n)); err != nil {
		return 0, 0, fmt.Errorf("asynq: %w", err)
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		info, err := q.insp.GetQueueInfo(asynqQueueName)
		if err != nil {
			return 0, 0, fmt.Errorf("asynq: queue info: %w", err)
		}
		if info.Retry > 0 || info.Archived > 0 || info.FailedTotal > 0 {
			return 0, 0, fmt.Errorf("asynq: %d tasks failed", info.FailedTotal)
		}
		if info.Pending == 0 && info.Active == 0 && info.ProcessedTotal >= processed0+n {
			return insert, time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("asynq: %d pending, %d active: %w", info.Pending, info.Active, ctx.Err())
		case <-tick.C:
		}
	}
}

// enqueueBatch enqueues tasks first..first+m-1 from q.enqueuers
// goroutines, and returns once all are enqueued.
func (q *asynqQueue) enqueueBatch(ctx context.Context, first, m int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		fail error
	)
	for range min(q.enqueuers, m) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= m || ctx.Err() != nil {
					return
				}
				task := asynq.NewTask(asynqTaskType, asynqEncode(first+i, 0))
				if _, err := q.client.EnqueueContext(ctx, task); err != nil {
					mu.Lock()
					if fail == nil {
						fail = fmt.Errorf("asynq: enqueue: %w", err)
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	return fail
}

// Latency enqueues n tasks one at a time at the rate and returns each
// task's enqueue→start latency.
func (q *asynqQueue) Latency(ctx context.Context, n int, rate float64) ([]time.Duration, error) {
	return peerLatency(ctx, "asynq", &q.lat, n, rate, func(ctx context.Context, i int, sent int64) error {
		_, err := q.client.EnqueueContext(ctx, asynq.NewTask(asynqTaskType, asynqEncode(i, sent)))
		return err
	})
}

// counts returns the number of tasks Redis holds for the queue and the
// number it has recorded as processed (both 0 when the queue does not
// exist).
func (q *asynqQueue) counts(ctx context.Context) (stored, processed int, err error) {
	queues, err := q.insp.Queues()
	if err != nil {
		return 0, 0, err
	}
	if !slices.Contains(queues, asynqQueueName) {
		return 0, 0, nil
	}
	info, err := q.insp.GetQueueInfo(asynqQueueName)
	if err != nil {
		return 0, 0, err
	}
	return info.Size, info.ProcessedTotal, nil
}

// flush empties the Redis database.
func (q *asynqQueue) flush(ctx context.Context) error {
	if q.addr == "" {
		return errors.New("asynq: no Redis address")
	}
	c := redis.NewClient(&redis.Options{Addr: q.addr})
	defer c.Close()
	if err := c.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("asynq: flush redis %s: %w", q.addr, err)
	}
	return nil
}

// Close shuts the server down (waiting for its goroutines), closes the
// client and inspector, and flushes the Redis database. It is safe to call
// more than once.
func (q *asynqQueue) Close() error {
	if q == nil {
		return nil
	}
	q.closeOnce.Do(func() {
		var errs []error
		if q.srv != nil {
			q.srv.Shutdown()
		}
		if q.client != nil {
			if err := q.client.Close(); err != nil {
				errs = append(errs, fmt.Errorf("asynq: close client: %w", err))
			}
		}
		if q.insp != nil {
			if err := q.insp.Close(); err != nil {
				errs = append(errs, fmt.Errorf("asynq: close inspector: %w", err))
			}
		}
		if q.flushed {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := q.flush(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		q.closeErr = errors.Join(errs...)
	})
	return q.closeErr
}

// asynqPayloadLen is the length of a task's payload: its number and the
// time it was sent (UnixNano, 0 outside the latency workload), 8 bytes
// each, big-endian.
const asynqPayloadLen = 16

// asynqEncode returns the payload of task seq sent at sent.
func asynqEncode(seq int, sent int64) []byte {
	b := make([]byte, asynqPayloadLen)
	binary.BigEndian.PutUint64(b, uint64(seq))
	binary.BigEndian.PutUint64(b[8:], uint64(sent))
	return b
}

// asynqDecode parses a payload made by asynqEncode.
func asynqDecode(p []byte) (seq int, sent int64, err error) {
	if len(p) != asynqPayloadLen {
		return 0, 0, ward.Errorf(ward.CodeInvalidArgument, "asynq payload: %d bytes, want %d", len(p), asynqPayloadLen)
	}
	s := binary.BigEndian.Uint64(p)
	if s > 1<<62 {
		return 0, 0, ward.Errorf(ward.CodeInvalidArgument, "asynq payload: task number out of range")
	}
	sent = int64(binary.BigEndian.Uint64(p[8:]))
	if sent < 0 {
		return 0, 0, ward.Errorf(ward.CodeInvalidArgument, "asynq payload: negative send time")
	}
	return int(s), sent, nil
}

// asynqCounter counts events and lets a caller wait for a count.
type asynqCounter struct {
	mu     sync.Mutex
	n      int64
	target int64
	reach  chan struct{} // closed when n reaches target
}

func (c *asynqCounter) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.reach != nil && c.n >= c.target {
		close(c.reach)
		c.reach = nil
	}
}

func (c *asynqCounter) load() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// wait returns once the count is at least target. One caller at a time.
func (c *asynqCounter) wait(ctx context.Context, target int64) error {
	c.mu.Lock()
	if c.n >= target {
		c.mu.Unlock()
		return nil
	}
	reach := make(chan struct{})
	c.target, c.reach = target, reach
	c.mu.Unlock()
	select {
	case <-reach:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		c.reach = nil
		return fmt.Errorf("%d of %d tasks ran: %w", c.n, target, ctx.Err())
	}
}

// asynqLogger adapts a *slog.Logger to asynq.Logger.
type asynqLogger struct{ l *slog.Logger }

// Debug logs at debug level.
func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }

// Info logs at info level.
func (a asynqLogger) Info(args ...any) { a.l.Info(fmt.Sprint(args...)) }

// Warn logs at warn level.
func (a asynqLogger) Warn(args ...any) { a.l.Warn(fmt.Sprint(args...)) }

// Error logs at error level.
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }

// Fatal logs at error level and returns: stopping is the command's
// decision, not a library's.
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
