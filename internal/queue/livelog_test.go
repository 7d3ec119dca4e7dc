package queue

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
)

// readAll reads a live log from offset from until it ends.
func readAll(t *testing.T, lg *LiveLog, from int64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out strings.Builder
	for {
		b, at, err := lg.Read(ctx, from)
		if errors.Is(err, io.EOF) {
			return out.String()
		}
		if err != nil {
			t.Fatalf("Read: %v (so far %q)", err, out.String())
		}
		if at != from {
			t.Fatalf("Read from %d returned text at %d", from, at)
		}
		out.Write(b)
		from = at + int64(len(b))
	}
}

// logWriter streams one run's log as its runner does, chunk after chunk.
type logWriter struct {
	q                    *Service
	project, task, lease string
	off                  int64
}

func (w *logWriter) write(text string) error {
	c := runner.LogChunk{Project: w.project, TaskID: w.task, LeaseID: w.lease, Offset: w.off, Data: []byte(text)}
	w.off += int64(len(text))
	return w.q.StreamLog(context.Background(), c)
}

// follow returns a live log on q that must exist.
func follow(t *testing.T, q *Service, task, lease string) *LiveLog {
	t.Helper()
	lg, release, ok := q.FollowLog("p", task, lease)
	if !ok {
		t.Fatalf("no live log of %s's run %s", task, lease)
	}
	t.Cleanup(release)
	return lg
}

func TestLiveLogFollowAndEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	ctx := context.Background()
	id := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	if _, _, ok := b.q.FollowLog("p", id, "any"); ok {
		t.Fatal("a queued task has a live log")
	}
	j := b.lease(t, 1)[0]
	w := &logWriter{q: b.q, project: "p", task: id, lease: j.LeaseID}
	if err := w.write("one\n"); err != nil {
		t.Fatal(err)
	}
	lg := follow(t, b.q, id, j.LeaseID)
	if _, _, ok := b.q.FollowLog("p", id, "other-lease"); ok {
		t.Fatal("a live log for a lease the task does not hold")
	}
	stale := &logWriter{q: b.q, project: "p", task: id, lease: "other-lease"}
	if err := stale.write("stale\n"); !errors.Is(err, ward.ErrStaleLease) {
		t.Fatalf("chunk of another lease: %v, want stale_lease", err)
	}
	got := make(chan string, 1)
	go func() { got <- readAll(t, lg, 0) }()
	for _, c := range []string{"two\n", "three\n"} {
		if err := w.write(c); err != nil {
			t.Fatal(err)
		}
	}
	errs, err := b.q.Complete(ctx, []runner.Result{{TaskID: id, LeaseID: j.LeaseID, Project: "p", Retry: j.Retry}})
	if err != nil || errs[0] != nil {
		t.Fatalf("Complete: %v %v", err, errs)
	}
	if s := <-got; s != "one\ntwo\nthree\n" {
		t.Errorf("followed %q, want the chunks in order", s)
	}
	if err := w.write("late\n"); !errors.Is(err, ward.ErrStaleLease) {
		t.Fatalf("chunk after the end: %v, want stale_lease", err)
	}
	if _, _, ok := b.q.FollowLog("p", id, j.LeaseID); ok {
		t.Error("the live log outlived its run")
	}
}

func TestLiveLogEndsOnCancelAndReap(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	ctx := context.Background()
	cancelled := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	j := b.lease(t, 1)[0]
	lg := follow(t, b.q, cancelled, j.LeaseID)
	if _, err := b.q.Cancel(ctx, "p", cancelled); err != nil {
		t.Fatal(err)
	}
	if s := readAll(t, lg, 0); s != "" {
		t.Errorf("cancelled run's log = %q", s)
	}

	reaped := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	j = b.lease(t, 1)[0]
	lg = follow(t, b.q, reaped, j.LeaseID)
	b.clock.add(11 * time.Second)
	if err := b.q.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	if s := readAll(t, lg, 0); s != "" {
		t.Errorf("reaped run's log = %q", s)
	}
}

// A follower that reads nothing never holds up the writer; once it reads,
// it learns where the kept text starts.
func TestLiveLogSlowFollower(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	ctx := context.Background()
	id := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	j := b.lease(t, 1)[0]
	lg := follow(t, b.q, id, j.LeaseID)
	w := &logWriter{q: b.q, project: "p", task: id, lease: j.LeaseID}
	line := strings.Repeat("x", 1023) + "\n"
	const n = 2 * LiveLogBuffer / 1024
	for range n {
		if err := w.write(line); err != nil {
			t.Fatal(err)
		}
	}
	got, at, err := lg.Read(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(n*1024 - LiveLogBuffer); at != want || len(got) != LiveLogBuffer {
		t.Errorf("Read from 0 = %d bytes at %d, want %d at %d", len(got), at, LiveLogBuffer, want)
	}
}
