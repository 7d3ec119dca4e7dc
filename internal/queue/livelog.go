package queue

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
)

// The Service takes live logs from in-process runners.
var _ runner.LogStreamer = (*Service)(nil)

// LiveLogBuffer is how much of a run's live log a server keeps for
// followers who join late: the last LiveLogBuffer bytes.
const LiveLogBuffer = 256 << 10

// LiveLog is the live log of one run: the text its runner has streamed so
// far, of which the last LiveLogBuffer bytes are kept.
type LiveLog struct {
	mu      sync.Mutex
	start   int64  // offset of buf[0] in the run's log
	buf     []byte // the kept tail
	closed  bool
	changed chan struct{} // closed and replaced on every change
	touched time.Time
}

func (lg *LiveLog) append(chunk []byte, now time.Time) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if lg.closed {
		return
	}
	lg.buf = append(lg.buf, chunk...)
	if over := len(lg.buf) - LiveLogBuffer; over > 0 {
		lg.buf = append(lg.buf[:0:0], lg.buf[over:]...)
		lg.start += int64(over)
	}
	lg.touched = now
	close(lg.changed)
	lg.changed = make(chan struct{})
}

func (lg *LiveLog) close() {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if !lg.closed {
		lg.closed = true
		close(lg.changed)
	}
}

// Read returns the run's log text from offset from on, waiting until
// there is some. at is the offset of b's first byte: past from when the
// text in between is no longer kept. Once the run is over and everything
// was read, Read returns io.EOF; a ctx that ends first, its error.
// Readers never hold up the runner: each keeps its own offset.
func (lg *LiveLog) Read(ctx context.Context, from int64) (b []byte, at int64, err error) {
	for {
		lg.mu.Lock()
		end := lg.start + int64(len(lg.buf))
		if from < end {
			at = max(from, lg.start)
			b = append([]byte(nil), lg.buf[at-lg.start:]...)
			lg.mu.Unlock()
			return b, at, nil
		}
		closed, changed := lg.closed, lg.changed
		lg.mu.Unlock()
		if closed {
			return nil, end, io.EOF
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, from, ctx.Err()
		}
	}
}

// StreamLog implements runner.LogStreamer: chunk joins the live log of the
// run, which followers read with FollowLog. Only the task's current lease,
// granted by this server, may write; others get ward.ErrStaleLease.
func (s *Service) StreamLog(_ context.Context, taskID, leaseID string, chunk []byte) error {
	lg := s.runs.log(taskID, leaseID)
	if lg == nil {
		return ward.ErrStaleLease
	}
	lg.append(chunk, s.now())
	return nil
}

// FollowLog returns the live log of taskID's run that holds leaseID, if
// this server granted that lease and the run is not over; ok is false
// otherwise (its runner reports to another server, or it has ended).
func (s *Service) FollowLog(taskID, leaseID string) (lg *LiveLog, ok bool) {
	lg = s.runs.log(taskID, leaseID)
	return lg, lg != nil
}
