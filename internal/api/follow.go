package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/queue"
	"github.com/wardhq/ward/internal/store"
)

// liveLogSource is a Queue that serves live logs (queue.Service does).
type liveLogSource interface {
	FollowLog(project, taskID, leaseID string) (lg *queue.LiveLog, release func(), ok bool)
}

// Pacing of a followed log.
const (
	// followPoll is how often a followed task is read while it is queued,
	// or runs where this server has no live log of it.
	followPoll = time.Second
	// followCheck is the longest a follower waits on a live log before it
	// reads the task again and moves the connection's deadlines.
	followCheck = 20 * time.Second
)

// parseFollow reads ?follow=: 1/true follow, 0/false/absent do not.
func parseFollow(v string) (bool, error) {
	switch v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, ward.FieldError("follow", "must be 1 or 0")
}

// followLog streams the log of a task that has not finished, as
// text/plain in chunks: it waits for a queued task to start, sends the
// lines its run has streamed so far and then each new one, and once the
// task has finished, what its stored log holds beyond what was sent; then
// it ends. The call is audited as it starts, like a plain log read. Live
// lines come from the runs this server leased and, when servers share a
// store, from the others over the store's bus; without one, a run leased
// elsewhere shows its stored log when the task ends.
func (s *Server) followLog(w http.ResponseWriter, r *http.Request, c *call, rec store.TaskRecord) error {
	ctx := r.Context()
	out, err := s.stream(w, r, c) // audited before anything is sent, as a buffered answer is
	if err != nil {
		return err
	}
	h := out.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	rc := http.NewResponseController(out)
	extend := func() {
		// Connection deadlines are wall-clock times, whatever the server's clock.
		t := time.Now().Add(writeTimeout)
		_ = rc.SetReadDeadline(t)
		_ = rc.SetWriteDeadline(t)
	}
	extend()
	out.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	f := &follower{w: out, rc: rc}
	live, _ := s.q.(liveLogSource)
	for {
		if rec.Status.Terminal() {
			b, err := s.q.Body(context.WithoutCancel(ctx), c.project, rec.ID, store.BodyLog)
			if err != nil {
				s.log.ErrorContext(ctx, "followed log: read the stored log", "task", rec.ID, "err", err)
				return nil
			}
			f.attempt(rec.Attempts)
			if f.sent < int64(len(b)) {
				f.write(b[f.sent:])
			}
			return nil
		}
		ended := false // the run followed live has ended
		if rec.Status == ward.StatusRunning && live != nil {
			if lg, release, ok := live.FollowLog(c.project, rec.ID, rec.LeaseID); ok {
				f.attempt(rec.Attempts)
				ended = f.stream(ctx, lg, extend)
				release()
			}
		}
		if ctx.Err() != nil || f.err != nil {
			return nil
		}
		if !ended && !sleepCtx(ctx, followPoll) {
			return nil
		}
		extend()
		if rec, err = s.q.Get(ctx, c.project, rec.ID); err != nil {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "followed log: read the task", "task", rec.ID, "err", err)
			}
			return nil
		}
	}
}

// follower writes a followed log and remembers how much of which
// attempt's log it has sent.
type follower struct {
	w   io.Writer
	rc  *http.ResponseController
	err error // the client is gone

	attemptNo int   // the attempt whose log is being sent (0: none yet)
	sent      int64 // bytes of that attempt's log sent
	last      byte  // the last byte written
}

// attempt switches to the log of attempt n; a new attempt after some log
// was sent is announced on a line of its own.
func (f *follower) attempt(n int) {
	if n == f.attemptNo {
		return
	}
	if f.attemptNo != 0 && f.sent > 0 {
		sep := fmt.Sprintf("[ward: attempt %d]\n", n)
		if f.last != '\n' {
			sep = "\n" + sep
		}
		f.write([]byte(sep))
	}
	f.attemptNo, f.sent = n, 0
}

func (f *follower) write(b []byte) {
	if f.err != nil || len(b) == 0 {
		return
	}
	if _, err := f.w.Write(b); err != nil {
		f.err = err
		return
	}
	f.last = b[len(b)-1]
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		f.err = err
	}
}

// stream copies a live log to the client until it ends (true) or a check
// is due (false).
func (f *follower) stream(ctx context.Context, lg *queue.LiveLog, extend func()) bool {
	for f.err == nil {
		rctx, cancel := context.WithTimeout(ctx, followCheck)
		b, at, err := lg.Read(rctx, f.sent)
		cancel()
		switch {
		case errors.Is(err, io.EOF):
			return true
		case err != nil:
			return false
		}
		if at > f.sent {
			// A slow client fell behind what the server keeps.
			f.write(fmt.Appendf(nil, "[ward: %d bytes of log skipped]\n", at-f.sent))
		}
		f.write(b)
		f.sent = at + int64(len(b))
		f.last = b[len(b)-1]
		extend()
	}
	return false
}

// sleepCtx waits for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
