package queue

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/store"
)

// TestLiveLogPut places pieces that come in order, twice, overlapping,
// out of order and past a gap, and checks the text kept and where it
// starts.
func TestLiveLogPut(t *testing.T) {
	t.Parallel()
	type put struct {
		off  int64
		text string
		jump bool
	}
	for _, tc := range []struct {
		name      string
		puts      []put
		skipStale bool // give up on a gap after the puts
		start     int64
		text      string
	}{
		{"in order", []put{{0, "ab", false}, {2, "cd", false}}, false, 0, "abcd"},
		{"twice", []put{{0, "ab", false}, {0, "ab", false}, {2, "cd", false}, {2, "cd", false}}, false, 0, "abcd"},
		{"overlapping", []put{{0, "abc", false}, {1, "bcde", false}}, false, 0, "abcde"},
		{"old piece", []put{{0, "abcd", false}, {1, "b", false}}, false, 0, "abcd"},
		{"out of order", []put{{4, "ef", false}, {2, "cd", false}, {0, "ab", false}}, false, 0, "abcdef"},
		{"gap waits", []put{{0, "ab", false}, {4, "ef", false}}, false, 0, "ab"},
		{"gap fills", []put{{0, "ab", false}, {4, "ef", false}, {2, "cd", false}}, false, 0, "abcdef"},
		{"gap given up", []put{{0, "ab", false}, {4, "ef", false}}, true, 4, "ef"},
		{"gaps given up", []put{{0, "ab", false}, {4, "ef", false}, {8, "ij", false}}, true, 8, "ij"},
		{"jump", []put{{0, "ab", false}, {10, "kl", true}, {12, "mn", false}}, false, 10, "klmn"},
		{"jump not past the end", []put{{0, "abcd", false}, {2, "cdef", true}}, false, 0, "abcdef"},
		{"first piece late", []put{{6, "gh", false}}, true, 6, "gh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lg := newLiveLog(time.Now())
			for _, p := range tc.puts {
				lg.put(p.off, []byte(p.text), p.jump, time.Now())
			}
			if tc.skipStale {
				gap := lg.skipStale(-1)
				if gap != lg.End() {
					t.Fatalf("skipStale found no gap: %d", gap)
				}
				if gap = lg.skipStale(gap); gap != -1 {
					t.Fatalf("skipStale kept a stale gap: %d", gap)
				}
			}
			b, at := lg.since(0)
			if at != tc.start || string(b) != tc.text {
				t.Errorf("kept %q at %d, want %q at %d", b, at, tc.text, tc.start)
			}
		})
	}
}

// Pieces past a gap are kept up to LiveLogBuffer bytes; past that the gap
// is given up.
func TestLiveLogAheadBounded(t *testing.T) {
	t.Parallel()
	lg := newLiveLog(time.Now())
	piece := bytes.Repeat([]byte("x"), 1024)
	off := int64(100)
	for range LiveLogBuffer / 1024 {
		lg.put(off, piece, false, time.Now())
		off += 1024
	}
	if lg.End() != 0 {
		t.Fatalf("a gap was given up with %d bytes waiting", lg.aheadN)
	}
	lg.put(off, piece, false, time.Now())
	// The gap before 100 is given up; of the 257 KiB from there, the
	// last LiveLogBuffer bytes are kept.
	if b, at := lg.since(0); at != 100+1024 || len(b) != LiveLogBuffer {
		t.Errorf("after the cap: %d bytes at %d, want %d at %d", len(b), at, LiveLogBuffer, 100+1024)
	}
}

func TestBusMessageRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []busMessage{
		{kind: busPiece, flags: pieceJump, offset: 1 << 40, sender: "s1", project: "p", task: "t_1", lease: "l_1", data: []byte("sealed")},
		{kind: busWatch, offset: 0, sender: strings.Repeat("s", 255), project: "p", task: "t", lease: "l"},
	} {
		b, ok := appendBus(nil, &m)
		if !ok {
			t.Fatal("appendBus refused a valid message")
		}
		if len(b) != m.headerLen()+len(m.data) {
			t.Errorf("encoded %d bytes, headerLen says %d", len(b), m.headerLen()+len(m.data))
		}
		got, err := decodeBus(b)
		if err != nil {
			t.Fatalf("decodeBus: %v", err)
		}
		if got.kind != m.kind || got.flags != m.flags || got.offset != m.offset || got.sender != m.sender ||
			got.project != m.project || got.task != m.task || got.lease != m.lease || !bytes.Equal(got.data, m.data) {
			t.Errorf("round trip: %+v, want %+v", got, m)
		}
	}
	if _, ok := appendBus(nil, &busMessage{kind: busWatch, sender: "s", project: strings.Repeat("p", 256), task: "t", lease: "l"}); ok {
		t.Error("a 256-byte field was encoded")
	}
	good, _ := appendBus(nil, &busMessage{kind: busWatch, sender: "s", project: "p", task: "t", lease: "l"})
	for name, b := range map[string][]byte{
		"empty":         nil,
		"short":         good[:10],
		"version":       append([]byte{9}, good[1:]...),
		"kind":          append([]byte{busVersion, 'x'}, good[2:]...),
		"cut field":     good[:len(good)-1],
		"watch data":    append(bytes.Clone(good), 'x'),
		"huge offset":   append(append([]byte{busVersion, busWatch, 0}, 0xff, 0, 0, 0, 0, 0, 0, 0), good[11:]...),
		"empty project": {busVersion, busWatch, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 's', 0, 1, 't', 1, 'l'},
	} {
		if _, err := decodeBus(b); !errors.Is(err, errBusMessage) {
			t.Errorf("%s: decodeBus = %v, want errBusMessage", name, err)
		}
	}
}

// FuzzDecodeBus: any input decodes or fails cleanly, and what decodes
// encodes back to the same bytes.
func FuzzDecodeBus(f *testing.F) {
	for _, m := range []busMessage{
		{kind: busPiece, offset: 7, sender: "s", project: "p", task: "t", lease: "l", data: []byte("x")},
		{kind: busWatch, sender: "s", project: "p", task: "t", lease: "l"},
	} {
		b, _ := appendBus(nil, &m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeBus(b)
		if err != nil {
			return
		}
		again, ok := appendBus(nil, &m)
		if !ok || !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v encodes to %x, not %x", m, again, b)
		}
	})
}

// memBus is a store.Broadcaster in memory, for servers in one process:
// each subscriber gets every message in order on a goroutine of its own.
type memBus struct {
	mu     sync.Mutex
	subs   []chan []byte
	joined chan struct{}
	drop   func(msg []byte) bool // drops a message when it returns true
}

func newMemBus() *memBus { return &memBus{joined: make(chan struct{}, 8)} }

func (b *memBus) Broadcast(_ context.Context, msg []byte) error {
	if len(msg) > store.MaxBroadcast {
		return errors.New("message too long")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drop != nil && b.drop(msg) {
		return nil
	}
	for _, ch := range b.subs {
		ch <- bytes.Clone(msg)
	}
	return nil
}

func (b *memBus) Subscribe(ctx context.Context, fn func([]byte)) error {
	ch := make(chan []byte, 4096)
	b.mu.Lock()
	b.subs = append(b.subs, ch)
	b.mu.Unlock()
	b.joined <- struct{}{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-ch:
			fn(msg)
		}
	}
}

// cluster is two queue Services over one store and one bus, as two
// servers sharing a PostgreSQL store are.
type cluster struct {
	*bundle
	a, b *Service
	bus  *memBus
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	bd := setup(t, ward.FunctionSpec{})
	root, _, err := seal.NewRootKeyBase64()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := seal.OpenKeystore(context.Background(), filepath.Join(t.TempDir(), "keys.db"), root, bd.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	c := &cluster{bundle: bd, bus: newMemBus()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, q := range []**Service{&c.a, &c.b} {
		*q = New(Options{Store: bd.st, Now: bd.clock.now, LeaseTTL: 10 * time.Second, Bus: c.bus, Keys: ks})
		wg.Go(func() { _ = (*q).Run(ctx) })
		<-c.bus.joined
	}
	return c
}

// run submits a task and leases it from server a; w writes its log to a.
func (c *cluster) run(t *testing.T) (j runner.Job, w *logWriter) {
	t.Helper()
	c.submit(t, ward.SubmitRequest{Function: "fn"})
	jobs, err := c.a.Lease(context.Background(), &runner.LeaseRequest{RunnerID: "r1", Max: 1, FreeMemoryMB: 1 << 20})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Lease: %v %v", jobs, err)
	}
	return jobs[0], &logWriter{q: c.a, project: "p", task: jobs[0].TaskID, lease: jobs[0].LeaseID}
}

// readUntil reads lg from offset from until the text read ends with want,
// and returns the offset past it.
func readUntil(t *testing.T, lg *LiveLog, from int64, want string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got strings.Builder
	for !strings.HasSuffix(got.String(), want) {
		b, at, err := lg.Read(ctx, from)
		if err != nil {
			t.Fatalf("Read after %q: %v; want %q", got.String(), err, want)
		}
		if at != from {
			t.Fatalf("Read from %d skipped to %d", from, at)
		}
		got.Write(b)
		from = at + int64(len(b))
	}
	return from
}

// A follower on a server that did not lease the run gets what was logged
// before it came, then each new line, then the end; the bus carries only
// sealed text.
func TestFollowAcrossServers(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	j, w := c.run(t)
	id, lease := j.TaskID, j.LeaseID
	if err := w.write("before the follower: secret-ish\n"); err != nil {
		t.Fatal(err)
	}
	var onBus [][]byte
	c.bus.mu.Lock()
	c.bus.drop = func(msg []byte) bool { onBus = append(onBus, bytes.Clone(msg)); return false }
	c.bus.mu.Unlock()

	lg, release, ok := c.b.FollowLog("p", id, lease)
	if !ok {
		t.Fatal("no live log on the other server")
	}
	_, release2, _ := c.b.FollowLog("p", id, lease)
	if n := c.b.watches.size(); n != 1 {
		t.Fatalf("two followers of one run: %d watches, want 1", n)
	}
	off := readUntil(t, lg, 0, "before the follower: secret-ish\n")
	if err := w.write("after\n"); err != nil {
		t.Fatal(err)
	}
	off = readUntil(t, lg, off, "after\n")

	// The runner moves to server b: its chunks reach a's copy as well.
	moved := &logWriter{q: c.b, project: "p", task: id, lease: lease, off: w.off}
	if err := moved.write("via b\n"); err != nil {
		t.Fatal(err)
	}
	readUntil(t, lg, off, "via b\n")
	atA := follow(t, c.a, id, lease)
	readUntil(t, atA, 0, "before the follower: secret-ish\nafter\nvia b\n")

	c.bus.mu.Lock()
	for _, msg := range onBus {
		if bytes.Contains(msg, []byte("secret-ish")) || bytes.Contains(msg, []byte("via b")) {
			t.Errorf("log text in the clear on the bus: %q", msg)
		}
	}
	c.bus.mu.Unlock()

	errs, err := c.a.Complete(ctx, []runner.Result{{TaskID: id, LeaseID: lease, Project: "p", Retry: j.Retry}})
	if err != nil || errs[0] != nil {
		t.Fatalf("Complete: %v %v", err, errs)
	}
	// b learns the run is over from the store and ends its copy.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		_, _, err := lg.Read(rctx, lg.End())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the watched log did not end with its run: %v", err)
		}
	}
	release()
	if n := c.b.watches.size(); n != 1 {
		t.Fatalf("one follower left: %d watches, want 1", n)
	}
	release2()
	if n := c.b.watches.size(); n != 0 {
		t.Fatalf("no follower left: %d watches, want 0", n)
	}
}

// A piece lost on the bus is sent again in answer to the next watch
// message; a piece sealed for another place in the log is refused.
func TestFollowAcrossServersRepairs(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	j, w := c.run(t)
	id, lease := j.TaskID, j.LeaseID
	lg, release, _ := c.b.FollowLog("p", id, lease)
	defer release()
	if err := w.write("one\n"); err != nil {
		t.Fatal(err)
	}
	off := readUntil(t, lg, 0, "one\n")

	// Drop the next piece a sends; the one after waits past the gap.
	dropped := false
	c.bus.mu.Lock()
	c.bus.drop = func(msg []byte) bool {
		m, err := decodeBus(msg)
		if err == nil && m.kind == busPiece && !dropped {
			dropped = true
			return true
		}
		return false
	}
	c.bus.mu.Unlock()
	for _, l := range []string{"two\n", "three\n"} {
		if err := w.write(l); err != nil {
			t.Fatal(err)
		}
	}
	readUntil(t, lg, off, "two\nthree\n")
	if !dropped {
		t.Fatal("no piece was dropped")
	}

	// A piece sealed for offset 0 but sent as offset 100 does not open.
	env, err := c.a.keys.Seal(ctx, "p", c.clock.now(), pieceAD("p", id, lease, 0), []byte("forged\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := busMessage{kind: busPiece, offset: 100, sender: "x", project: "p", task: id, lease: lease, data: env}
	msg, _ := appendBus(nil, &m)
	c.b.onBus(ctx, msg)
	lg.mu.Lock()
	end, waiting := lg.end(), len(lg.ahead)
	lg.mu.Unlock()
	if end != int64(len("one\ntwo\nthree\n")) || waiting != 0 {
		t.Errorf("a forged piece was taken: end %d, %d pieces waiting", end, waiting)
	}
}

// size is the number of runs watched.
func (ws *watches) size() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.m)
}
