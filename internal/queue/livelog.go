package queue

import (
	"bytes"
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
// far, of which the last LiveLogBuffer bytes are kept. Pieces come with
// their offset in the run's log, so a piece that arrives twice or late
// (from another server) takes its place; one past a gap waits for the
// gap to fill, or for skip to give up on it.
type LiveLog struct {
	mu      sync.Mutex
	start   int64  // offset of buf[0] in the run's log
	buf     []byte // the kept tail
	ahead   []logPiece
	aheadN  int // bytes in ahead
	closed  bool
	changed chan struct{} // closed and replaced on every change
	touched time.Time
}

// logPiece is a piece of a log past a gap.
type logPiece struct {
	off  int64
	data []byte
}

func newLiveLog(now time.Time) *LiveLog {
	return &LiveLog{changed: make(chan struct{}), touched: now}
}

// end is the offset just past the kept text. lg.mu is held.
func (lg *LiveLog) end() int64 { return lg.start + int64(len(lg.buf)) }

// End returns the offset just past the text kept so far.
func (lg *LiveLog) End() int64 {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return lg.end()
}

// put places data, which starts at offset off of the run's log. With
// jump, nothing before off will come (it is gone where data comes from):
// a gap before it is given up at once.
func (lg *LiveLog) put(off int64, data []byte, jump bool, now time.Time) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if lg.closed {
		return
	}
	lg.touched = now
	if len(data) == 0 {
		return
	}
	switch {
	case off <= lg.end():
		lg.extend(off, data)
	case jump:
		lg.jumpTo(off)
		lg.extend(off, data)
	default:
		lg.ahead = append(lg.ahead, logPiece{off, bytes.Clone(data)})
		lg.aheadN += len(data)
		if lg.aheadN <= LiveLogBuffer {
			return
		}
		lg.skipGap()
	}
	lg.drain()
	lg.changedLocked()
}

// extend appends what of data, at off <= end, lies past the end, and
// trims the kept text to LiveLogBuffer.
func (lg *LiveLog) extend(off int64, data []byte) {
	if n := off + int64(len(data)) - lg.end(); n > 0 {
		lg.buf = append(lg.buf, data[int64(len(data))-n:]...)
	}
	if over := len(lg.buf) - LiveLogBuffer; over > 0 {
		lg.buf = append(lg.buf[:0:0], lg.buf[over:]...)
		lg.start += int64(over)
	}
}

// jumpTo moves the log on to off, past its end: what lies between is
// lost, as trimmed text is.
func (lg *LiveLog) jumpTo(off int64) {
	if off > lg.end() {
		lg.start, lg.buf = off, lg.buf[:0]
	}
}

// drain places the waiting pieces the log now reaches.
func (lg *LiveLog) drain() {
	for placed := true; placed && len(lg.ahead) > 0; {
		placed = false
		kept := lg.ahead[:0]
		for _, p := range lg.ahead {
			if p.off <= lg.end() {
				lg.extend(p.off, p.data)
				lg.aheadN -= len(p.data)
				placed = true
			} else {
				kept = append(kept, p)
			}
		}
		clear(lg.ahead[len(kept):])
		lg.ahead = kept
	}
}

// skipGap gives up on the gap before the first waiting piece.
func (lg *LiveLog) skipGap() {
	if len(lg.ahead) == 0 {
		return
	}
	first := lg.ahead[0].off
	for _, p := range lg.ahead[1:] {
		first = min(first, p.off)
	}
	lg.jumpTo(first)
}

// skipStale gives up on the gaps when the log ends where it did at the
// last call and had gaps then too; prev is what that call returned. It
// returns the end while a gap remains, -1 when there is none.
func (lg *LiveLog) skipStale(prev int64) int64 {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if len(lg.ahead) == 0 {
		return -1
	}
	if lg.end() != prev {
		return lg.end()
	}
	for len(lg.ahead) > 0 {
		lg.skipGap()
		lg.drain()
	}
	lg.changedLocked()
	return -1
}

// since returns the kept text from offset from on, and the offset it
// starts at: past from when the text in between is no longer kept.
func (lg *LiveLog) since(from int64) ([]byte, int64) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	at := max(from, lg.start)
	if at >= lg.end() {
		return nil, at
	}
	return bytes.Clone(lg.buf[at-lg.start:]), at
}

// changedLocked wakes the readers. lg.mu is held.
func (lg *LiveLog) changedLocked() {
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
			b = bytes.Clone(lg.buf[at-lg.start:])
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

// StreamLog implements runner.LogStreamer: the chunk joins the live log
// of its run, which followers read with FollowLog. Without a bus only the
// task's current lease, granted by this server, may write; others get
// ward.ErrStaleLease. With one, a chunk for a run this server did not
// lease (its runner moved to this server, or calls go through a load
// balancer) goes on the bus to the server that did, and to followers on
// any server; the chunks of a run this server leased go on the bus only
// while another server follows it.
func (s *Service) StreamLog(ctx context.Context, c runner.LogChunk) error {
	now := s.now()
	if lg, watched := s.runs.live(c.TaskID, c.LeaseID, now); lg != nil {
		lg.put(c.Offset, c.Data, false, now)
		if watched {
			if err := s.publishLog(ctx, c.Project, c.TaskID, c.LeaseID, c.Offset, c.Data, false); err != nil {
				s.log.Warn("live log: broadcast", "task", c.TaskID, "err", err)
			}
		}
		return nil
	}
	if s.bus == nil {
		return ward.ErrStaleLease
	}
	if lg := s.watches.log(c.TaskID, c.LeaseID); lg != nil {
		lg.put(c.Offset, c.Data, false, now)
	}
	return s.publishLog(ctx, c.Project, c.TaskID, c.LeaseID, c.Offset, c.Data, false)
}

// FollowLog returns the live log of project's task taskID in the run that
// holds leaseID, and release, to call when done with it. ok is false when
// there is none to follow: the run is not one this server leased and
// there is no bus to hear it from others. A log heard from other servers
// is closed once the run has ended.
func (s *Service) FollowLog(project, taskID, leaseID string) (lg *LiveLog, release func(), ok bool) {
	if lg := s.runs.log(taskID, leaseID); lg != nil {
		return lg, func() {}, true
	}
	if s.bus == nil {
		return nil, nil, false
	}
	w := s.watches.join(project, taskID, leaseID, s.now(), s.watchRun)
	return w.log, func() { s.watches.leave(w) }, true
}
