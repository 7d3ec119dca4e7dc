package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardhq/ward"
)

// The helpers the peer systems (River, Asynq) share.

// peerCheckThroughput validates the arguments of a Throughput call.
func peerCheckThroughput(n, batch int) error {
	if n < 1 {
		return ward.Errorf(ward.CodeInvalidArgument, "throughput: n must be at least 1, not %d", n)
	}
	if batch < 1 {
		return ward.Errorf(ward.CodeInvalidArgument, "throughput: batch must be at least 1, not %d", batch)
	}
	return nil
}

// peerCheckLatency validates the arguments of a Latency call.
func peerCheckLatency(n int, rate float64) error {
	if n < 1 {
		return ward.Errorf(ward.CodeInvalidArgument, "latency: n must be at least 1, not %d", n)
	}
	if !(rate > 0) || rate > 1e9 {
		return ward.Errorf(ward.CodeInvalidArgument, "latency: rate must be in (0, 1e9] tasks/s, not %g", rate)
	}
	return nil
}

// peerLatency inserts n tasks one at a time at the rate with insert (see
// peerPaced) and returns each one's insert→start latency, which the
// system's workers record in the peerLatencies lat holds meanwhile. name
// prefixes the errors.
func peerLatency(ctx context.Context, name string, lat *atomic.Pointer[peerLatencies], n int, rate float64, insert func(ctx context.Context, i int, sent int64) error) ([]time.Duration, error) {
	if err := peerCheckLatency(n, rate); err != nil {
		return nil, err
	}
	l := newPeerLatencies(n)
	lat.Store(l)
	defer lat.Store(nil)
	if err := peerPaced(ctx, n, rate, insert); err != nil {
		return nil, fmt.Errorf("%s: insert: %w", name, err)
	}
	d, err := l.wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}

// peerPaced calls insert n times, one every 1/rate seconds (the first at
// once), with the task's number and the time (UnixNano) just before the
// call; n and rate are checked (peerCheckLatency).
func peerPaced(ctx context.Context, n int, rate float64, insert func(ctx context.Context, i int, sent int64) error) error {
	interval := max(time.Duration(float64(time.Second)/rate), time.Nanosecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		if err := insert(ctx, i, time.Now().UnixNano()); err != nil {
			return err
		}
	}
	return nil
}

// peerLatencies collects the latencies of tasks 0..n-1, each once.
type peerLatencies struct {
	mu   sync.Mutex
	lat  []time.Duration
	seen []bool
	left int
	done chan struct{} // closed when every task has recorded
}

func newPeerLatencies(n int) *peerLatencies {
	return &peerLatencies{lat: make([]time.Duration, n), seen: make([]bool, n), left: n, done: make(chan struct{})}
}

// record sets task seq's latency; a second record for the same task (a
// task run again) and numbers out of range are ignored.
func (l *peerLatencies) record(seq int, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq < 0 || seq >= len(l.lat) || l.seen[seq] {
		return
	}
	l.seen[seq], l.lat[seq] = true, d
	if l.left--; l.left == 0 {
		close(l.done)
	}
}

// wait returns the latencies, by task number, once all are recorded.
func (l *peerLatencies) wait(ctx context.Context) ([]time.Duration, error) {
	select {
	case <-l.done:
		return l.lat, nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		return nil, fmt.Errorf("%d of %d tasks started: %w", len(l.lat)-l.left, len(l.lat), ctx.Err())
	}
}

// peerLogger is the logger a peer library gets: env's (which logs
// warnings only, or nothing), or one that discards when env has none.
func peerLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
