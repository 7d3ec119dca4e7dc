package runner

import (
	"context"
	"sync"
	"time"
)

// LogStreamer is a Source that takes a run's log while it runs, so that
// followers see lines before the task ends. A runner whose Source is not
// one sends the log only with the result.
type LogStreamer interface {
	// StreamLog appends a chunk to the live log of its run. A run's chunks
	// come in order and are redacted lines of its log: together, a prefix
	// of the log the result carries. A lease that is not the task's
	// current one may get ward.ErrStaleLease.
	StreamLog(ctx context.Context, c LogChunk) error
}

// LogChunk is a piece of a run's live log.
type LogChunk struct {
	Project string `json:"project"`
	TaskID  string `json:"task_id"`
	LeaseID string `json:"lease_id"`
	// Offset is where Data starts in the run's log: the bytes of the
	// run's earlier chunks.
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
}

// Live log forwarding: chunks are gathered for up to liveLogDelay, or
// until liveLogBatch bytes wait, then sent in one call. A Source slower
// than the task leaves at most liveLogPending bytes waiting; past that the
// run's live log stops (the rest arrives with the result).
const (
	liveLogDelay   = 100 * time.Millisecond
	liveLogBatch   = 16 << 10
	liveLogPending = 256 << 10
)

// logForwarder sends one run's live log to a LogStreamer without ever
// blocking the run: the sandbox's sink only appends to a buffer. The
// goroutine that sends starts with the first chunk, so a run that logs
// nothing costs nothing.
type logForwarder struct {
	src     LogStreamer
	ctx     context.Context
	project string
	taskID  string
	leaseID string
	onError func(error)
	sent    int64 // bytes sent so far (only the sending goroutine touches it)

	mu      sync.Mutex
	pending []byte
	stopped bool // nothing more is sent for this run
	started bool // the sending goroutine runs

	wake chan struct{} // something is pending (capacity 1)
	quit chan struct{} // the run is over
	done chan struct{} // the sending goroutine has returned
}

// newLogForwarder prepares forwarding a run's live log to src.
func newLogForwarder(ctx context.Context, src LogStreamer, j *Job, onError func(error)) *logForwarder {
	return &logForwarder{
		src: src, ctx: ctx, project: j.Project, taskID: j.TaskID, leaseID: j.LeaseID, onError: onError,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
}

// sink is the sandbox's LogSink: it queues chunk and returns at once.
func (f *logForwarder) sink(chunk []byte) {
	f.mu.Lock()
	switch {
	case f.stopped:
	case len(f.pending)+len(chunk) > liveLogPending:
		// The Source does not keep up: stop rather than leave a gap, so
		// that what was sent stays a prefix of the log.
		f.stopped, f.pending = true, nil
	default:
		f.pending = append(f.pending, chunk...)
	}
	if !f.started {
		f.started = true
		go f.loop(f.ctx)
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// stop ends forwarding: what is still pending is dropped (the result
// carries the whole log). It waits for a call in flight to return.
func (f *logForwarder) stop() {
	f.mu.Lock()
	started := f.started
	f.started = true // no goroutine starts after this
	f.mu.Unlock()
	close(f.quit)
	if started {
		<-f.done
	}
}

func (f *logForwarder) loop(ctx context.Context) {
	defer close(f.done)
	for {
		select {
		case <-f.quit:
			return
		case <-ctx.Done():
			return
		case <-f.wake:
		}
		if !f.full() {
			// Let more gather, unless the run ends first.
			t := time.NewTimer(liveLogDelay)
			select {
			case <-t.C:
			case <-f.quit:
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		f.mu.Lock()
		chunk := f.pending
		f.pending = nil
		stopped := f.stopped
		f.mu.Unlock()
		if stopped || len(chunk) == 0 {
			continue
		}
		c := LogChunk{Project: f.project, TaskID: f.taskID, LeaseID: f.leaseID, Offset: f.sent, Data: chunk}
		f.sent += int64(len(chunk))
		if err := f.src.StreamLog(ctx, c); err != nil {
			// A chunk that may not have arrived leaves a gap: stop.
			f.mu.Lock()
			f.stopped, f.pending = true, nil
			f.mu.Unlock()
			if ctx.Err() == nil && f.onError != nil {
				f.onError(err)
			}
		}
	}
}

// full reports whether a batch's worth is pending.
func (f *logForwarder) full() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending) >= liveLogBatch || f.stopped
}
