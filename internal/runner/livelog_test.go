package runner

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// streamer records chunks; while block is open, StreamLog waits on it.
type streamer struct {
	mu      sync.Mutex
	chunks  []string
	block   chan struct{}
	entered chan struct{}
}

func (s *streamer) StreamLog(ctx context.Context, c LogChunk) error {
	if c.Project != "p" || c.TaskID != "t_1" || c.LeaseID != "l_1" {
		panic("wrong run")
	}
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
	}
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := int64(len(strings.Join(s.chunks, ""))); c.Offset != got {
		panic(fmt.Sprintf("chunk at offset %d after %d bytes", c.Offset, got))
	}
	s.chunks = append(s.chunks, string(c.Data))
	return nil
}

func (s *streamer) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.chunks, "")
}

func TestLogForwarderInOrder(t *testing.T) {
	t.Parallel()
	src := &streamer{}
	f := newLogForwarder(t.Context(), src, &Job{Project: "p", TaskID: "t_1", LeaseID: "l_1"}, nil)
	var want strings.Builder
	for i := range 200 {
		l := strings.Repeat(string(rune('a'+i%26)), i) + "\n"
		want.WriteString(l)
		f.sink([]byte(l))
	}
	// Everything pending is sent within a batch delay; wait for it.
	for src.text() != want.String() {
		if len(src.text()) > want.Len() || !strings.HasPrefix(want.String(), src.text()) {
			t.Fatalf("forwarded %q, not a prefix of what was written", src.text())
		}
		if t.Context().Err() != nil {
			t.Fatal("not everything was forwarded")
		}
		time.Sleep(time.Millisecond)
	}
	f.stop()
}

// A Source that does not keep up never blocks the sink: past
// liveLogPending the run's live log stops, and what was sent stays a
// prefix of the log.
func TestLogForwarderSlowSource(t *testing.T) {
	t.Parallel()
	src := &streamer{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	f := newLogForwarder(t.Context(), src, &Job{Project: "p", TaskID: "t_1", LeaseID: "l_1"}, nil)
	line := []byte(strings.Repeat("y", liveLogBatch-1) + "\n")
	f.sink(line)
	<-src.entered // the first batch is in flight, and blocked
	for range 2 * liveLogPending / len(line) {
		f.sink(line) // must not block
	}
	f.mu.Lock()
	stopped := f.stopped
	f.mu.Unlock()
	if !stopped {
		t.Fatal("the forwarder did not stop past its pending cap")
	}
	close(src.block)
	f.stop()
	if got := src.text(); got != string(line) {
		t.Errorf("forwarded %d bytes, want only the first batch (%d)", len(got), len(line))
	}
}

// TestLogForwarderIdle: a run that logs nothing starts no goroutine and
// stops at once.
func TestLogForwarderIdle(t *testing.T) {
	t.Parallel()
	f := newLogForwarder(t.Context(), nil, &Job{Project: "p", TaskID: "t_1", LeaseID: "l_1"}, nil)
	f.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) != 0 {
		t.Errorf("pending %q", f.pending)
	}
	select {
	case <-f.done:
		t.Error("the sending goroutine ran for a run that logged nothing")
	default:
	}
}
