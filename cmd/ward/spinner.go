package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/wardhq/ward"
)

// spinnerTick is how often the progress line is redrawn.
const spinnerTick = 100 * time.Millisecond

var spinnerFrames = []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

// spinner draws a one-line progress indicator (frame, task, status, elapsed
// time) on a terminal, redrawn on every tick, until stopped.
type spinner struct {
	w     io.Writer
	id    string
	now   func() time.Time
	start time.Time
	ticks <-chan time.Time

	mu     sync.Mutex
	status ward.Status

	stopc chan struct{}
	done  chan struct{}
}

// startSpinner draws the first frame and redraws on every value from ticks.
func startSpinner(w io.Writer, id string, status ward.Status, now func() time.Time, ticks <-chan time.Time) *spinner {
	s := &spinner{
		w: w, id: safe(id), now: now, start: now(), ticks: ticks, status: status,
		stopc: make(chan struct{}), done: make(chan struct{}),
	}
	s.draw(0)
	go s.loop()
	return s
}

func (s *spinner) loop() {
	defer close(s.done)
	frame := 0
	for {
		select {
		case <-s.stopc:
			io.WriteString(s.w, "\r\x1b[K")
			return
		case <-s.ticks:
			frame++
			s.draw(frame)
		}
	}
}

func (s *spinner) draw(frame int) {
	s.mu.Lock()
	status := s.status
	s.mu.Unlock()
	io.WriteString(s.w, spinnerLine(frame, s.id, status, s.now().Sub(s.start)))
}

// set changes the status shown from the next frame on.
func (s *spinner) set(status ward.Status) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

// stop erases the line and waits for the drawing goroutine to end.
func (s *spinner) stop() {
	close(s.stopc)
	<-s.done
}

// spinnerLine renders one frame: it returns to the line start and clears
// what is left of the previous frame.
func spinnerLine(frame int, id string, status ward.Status, elapsed time.Duration) string {
	r := spinnerFrames[frame%len(spinnerFrames)]
	return fmt.Sprintf("\r%c %s %s %s\x1b[K", r, id, safe(string(status)), elapsed.Truncate(100*time.Millisecond))
}
