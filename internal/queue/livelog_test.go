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

func TestLiveLogFollowAndEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	ctx := context.Background()
	id := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	if _, ok := b.q.FollowLog(id, "any"); ok {
		t.Fatal("a queued task has a live log")
	}
	j := b.lease(t, 1)[0]
	if err := b.q.StreamLog(ctx, id, j.LeaseID, []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	lg, ok := b.q.FollowLog(id, j.LeaseID)
	if !ok {
		t.Fatal("no live log for the running task")
	}
	if _, ok := b.q.FollowLog(id, "other-lease"); ok {
		t.Fatal("a live log for a lease the task does not hold")
	}
	if err := b.q.StreamLog(ctx, id, "other-lease", []byte("stale\n")); !errors.Is(err, ward.ErrStaleLease) {
		t.Fatalf("chunk of another lease: %v, want stale_lease", err)
	}
	got := make(chan string, 1)
	go func() { got <- readAll(t, lg, 0) }()
	for _, c := range []string{"two\n", "three\n"} {
		if err := b.q.StreamLog(ctx, id, j.LeaseID, []byte(c)); err != nil {
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
	if err := b.q.StreamLog(ctx, id, j.LeaseID, []byte("late\n")); !errors.Is(err, ward.ErrStaleLease) {
		t.Fatalf("chunk after the end: %v, want stale_lease", err)
	}
	if _, ok := b.q.FollowLog(id, j.LeaseID); ok {
		t.Error("the live log outlived its run")
	}
}

func TestLiveLogEndsOnCancelAndReap(t *testing.T) {
	t.Parallel()
	b := setup(t, ward.FunctionSpec{})
	ctx := context.Background()
	cancelled := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	j := b.lease(t, 1)[0]
	lg, ok := b.q.FollowLog(cancelled, j.LeaseID)
	if !ok {
		t.Fatal("no live log")
	}
	if _, err := b.q.Cancel(ctx, "p", cancelled); err != nil {
		t.Fatal(err)
	}
	if s := readAll(t, lg, 0); s != "" {
		t.Errorf("cancelled run's log = %q", s)
	}

	reaped := b.submit(t, ward.SubmitRequest{Function: "fn"})[0].Task.ID
	j = b.lease(t, 1)[0]
	lg, _ = b.q.FollowLog(reaped, j.LeaseID)
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
	lg, _ := b.q.FollowLog(id, j.LeaseID)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	const n = 2 * LiveLogBuffer / 1024
	for range n {
		if err := b.q.StreamLog(ctx, id, j.LeaseID, line); err != nil {
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
