package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/wardhq/ward"
)

// peerTestTimeout bounds what one test does with a queue.
const peerTestTimeout = 3 * time.Minute

// peerCase is one peer system under test, and the services it needs.
type peerCase struct {
	name            string
	sys             System
	postgres, redis bool
	// keepsCompleted tells whether completed tasks stay in the store:
	// River keeps completed jobs (for 24 h by default), Asynq deletes a
	// task once it is done.
	keepsCompleted bool
}

func peerCases() []peerCase {
	return []peerCase{
		{name: "river-sqlite", sys: riverSQLite(), keepsCompleted: true},
		{name: "river-pgx", sys: riverPgx(), postgres: true, keepsCompleted: true},
		{name: "asynq", sys: asynqRedis(), redis: true},
	}
}

// peerCounter is what riverQueue and asynqQueue tell of their store: the
// tasks it holds and those recorded as done.
type peerCounter interface {
	counts(ctx context.Context) (stored, done int, err error)
}

// peerTestPostgres connects to WARD_TEST_POSTGRES, or skips.
func peerTestPostgres(t testing.TB) *Postgres {
	t.Helper()
	url := os.Getenv("WARD_TEST_POSTGRES")
	if url == "" {
		t.Skip(`WARD_TEST_POSTGRES not set; export WARD_TEST_POSTGRES="$(.ci/postgres.sh)" to run against PostgreSQL`)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := startPostgres(ctx, url, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// peerTestRedis starts a Redis server of the test's own, or skips when
// redis-server can be neither found nor installed.
func peerTestRedis(t testing.TB) *Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := startRedis(ctx, "", t.TempDir())
	if errors.Is(err, errRedisUnavailable) {
		t.Skipf("no Redis: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// peerTestEnv returns an Env with the services c needs.
func peerTestEnv(t testing.TB, c peerCase) *Env {
	t.Helper()
	env := &Env{
		Dir:     t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Workers: 2,
	}
	if c.postgres {
		env.Postgres = peerTestPostgres(t)
	}
	if c.redis {
		env.Redis = peerTestRedis(t)
	}
	return env
}

// peerOpen opens c's system and closes it when the test ends.
func peerOpen(ctx context.Context, t *testing.T, c peerCase, env *Env) Queue {
	t.Helper()
	q, err := c.sys.Open(ctx, env)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return q
}

func TestPeersThroughput(t *testing.T) {
	t.Parallel()
	for _, c := range peerCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := peerTestEnv(t, c)
			ctx, cancel := context.WithTimeout(t.Context(), peerTestTimeout)
			defer cancel()
			q := peerOpen(ctx, t, c, env)
			const n, batch = 2000, 100
			insert, total, err := q.Throughput(ctx, n, batch)
			if err != nil {
				t.Fatal(err)
			}
			if insert <= 0 || total < insert {
				t.Errorf("insert %v, total %v: want 0 < insert <= total", insert, total)
			}
			stored, done, err := q.(peerCounter).counts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantStored := 0
			if c.keepsCompleted {
				wantStored = n
			}
			if stored != wantStored || done != n {
				t.Errorf("after the run the store holds %d tasks, %d done; want %d, %d", stored, done, wantStored, n)
			}
		})
	}
}

func TestPeersLatency(t *testing.T) {
	t.Parallel()
	for _, c := range peerCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := peerTestEnv(t, c)
			ctx, cancel := context.WithTimeout(t.Context(), peerTestTimeout)
			defer cancel()
			q := peerOpen(ctx, t, c, env)
			const n = 50
			lat, err := q.Latency(ctx, n, 200)
			if err != nil {
				t.Fatal(err)
			}
			if len(lat) != n {
				t.Fatalf("%d latencies, want %d", len(lat), n)
			}
			for i, d := range lat {
				if d <= 0 {
					t.Errorf("task %d: latency %v, want > 0", i, d)
				}
			}
			_, done, err := q.(peerCounter).counts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The workers may still be finishing the last tasks; none may
			// be counted twice or come from elsewhere.
			if done > n {
				t.Errorf("%d tasks done, want at most %d", done, n)
			}
		})
	}
}

// TestPeersReopenEmpty checks that Close removes what an instance made and
// stops all it started, and that the next Open starts from empty state.
// It is not parallel, so that its goroutine check sees no other test's.
func TestPeersReopenEmpty(t *testing.T) {
	for _, c := range peerCases() {
		t.Run(c.name, func(t *testing.T) {
			env := peerTestEnv(t, c)
			ctx, cancel := context.WithTimeout(t.Context(), peerTestTimeout)
			defer cancel()
			before := peerLeftovers(ctx, t, c, env)
			baseline := goleak.IgnoreCurrent()

			q, err := c.sys.Open(ctx, env)
			if err != nil {
				t.Fatal(err)
			}
			const n = 300
			if _, _, err := q.Throughput(ctx, n, 100); err != nil {
				q.Close()
				t.Fatal(err)
			}
			if _, done, err := q.(peerCounter).counts(ctx); err != nil || done != n {
				t.Errorf("first instance: %d done (err %v), want %d", done, err, n)
			}
			if err := q.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if err := q.Close(); err != nil {
				t.Errorf("second close: %v", err)
			}
			if after := peerLeftovers(ctx, t, c, env); !slices.Equal(after, before) {
				t.Errorf("after Close: %q left, had %q before Open", after, before)
			}

			q2, err := c.sys.Open(ctx, env)
			if err != nil {
				t.Fatal(err)
			}
			stored, done, err := q2.(peerCounter).counts(ctx)
			if err != nil {
				t.Error(err)
			}
			if stored != 0 || done != 0 {
				t.Errorf("second instance opens on %d tasks, %d done; want an empty store", stored, done)
			}
			if err := q2.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			goleak.VerifyNone(t, baseline)
		})
	}
}

// peerLeftovers lists what of c's system is left in env's services: River's
// SQLite files, the databases of this process, the keys in Redis.
func peerLeftovers(ctx context.Context, t *testing.T, c peerCase, env *Env) []string {
	t.Helper()
	var out []string
	files, err := filepath.Glob(filepath.Join(env.Dir, "river-*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		out = append(out, filepath.Base(f))
	}
	if c.postgres {
		conn, err := pgx.Connect(ctx, env.Postgres.url.String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname`, fmt.Sprintf("bench\\_%d\\_%%", os.Getpid()))
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, names...)
	}
	if c.redis {
		rc := redis.NewClient(&redis.Options{Addr: env.Redis.Addr})
		defer rc.Close()
		keys, err := rc.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		out = append(out, keys...)
	}
	return out
}

func TestPeersBadInput(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), peerTestTimeout)
	defer cancel()
	q, err := riverSQLite().Open(ctx, &Env{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	// Asynq checks its arguments before it touches Redis.
	queues := map[string]Queue{"river": q, "asynq": &asynqQueue{}}
	for name, q := range queues {
		for _, tc := range []struct{ n, batch int }{{0, 10}, {-1, 10}, {10, 0}, {10, -5}} {
			if _, _, err := q.Throughput(ctx, tc.n, tc.batch); ward.CodeOf(err) != ward.CodeInvalidArgument {
				t.Errorf("%s: Throughput(%d, %d): %v, want invalid_argument", name, tc.n, tc.batch, err)
			}
		}
		for _, tc := range []struct {
			n    int
			rate float64
		}{{0, 10}, {-3, 10}, {5, 0}, {5, -1}, {5, math.NaN()}, {5, math.Inf(1)}, {5, 2e9}} {
			if _, err := q.Latency(ctx, tc.n, tc.rate); ward.CodeOf(err) != ward.CodeInvalidArgument {
				t.Errorf("%s: Latency(%d, %g): %v, want invalid_argument", name, tc.n, tc.rate, err)
			}
		}
	}
}

func TestPeersOpenFailure(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), peerTestTimeout)
	defer cancel()
	for _, tc := range []struct {
		name string
		sys  System
		env  *Env
	}{
		{"river-sqlite, no directory", riverSQLite(), &Env{Dir: filepath.Join(t.TempDir(), "missing")}},
		{"river-pgx, no server", riverPgx(), &Env{Dir: t.TempDir()}},
		{"asynq, no server", asynqRedis(), &Env{Dir: t.TempDir()}},
		{"asynq, server down", asynqRedis(), &Env{Dir: t.TempDir(), Redis: &Redis{Addr: peerClosedAddr(t)}}},
	} {
		q, err := tc.sys.Open(ctx, tc.env)
		if err == nil {
			q.Close()
			t.Errorf("%s: Open succeeded", tc.name)
		}
	}
	// Close on a nil or never-opened instance neither panics nor fails.
	for name, q := range map[string]interface{ Close() error }{
		"nil river":     (*riverQueue[*sql.Tx])(nil),
		"nil asynq":     (*asynqQueue)(nil),
		"zero river":    &riverQueue[*sql.Tx]{},
		"zero asynq":    &asynqQueue{},
		"nil redis":     (*Redis)(nil),
		"given redis":   &Redis{Addr: "127.0.0.1:1"},
		"unopened pool": &riverQueue[pgx.Tx]{name: "x"},
	} {
		if err := q.Close(); err != nil {
			t.Errorf("%s: Close: %v", name, err)
		}
	}
}

// peerClosedAddr returns a loopback address that nothing listens on.
func peerClosedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestStartRedis(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	r, err := startRedis(ctx, "", dir)
	if errors.Is(err, errRedisUnavailable) {
		t.Skipf("no Redis: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			r.Close()
		}
	}()
	if r.Version == "" {
		t.Error("no version")
	}
	for _, want := range []string{"appendonly=yes", "appendfsync=everysec", "save="} {
		if !slices.Contains(r.Settings, want) {
			t.Errorf("settings %q lack %q", r.Settings, want)
		}
	}
	// Redis 7 keeps its append-only files in a directory, earlier versions
	// in one file.
	_, errDir := os.Stat(filepath.Join(dir, "redis", "appendonlydir"))
	_, errFile := os.Stat(filepath.Join(dir, "redis", "appendonly.aof"))
	if errDir != nil && errFile != nil {
		t.Errorf("no append-only file under the data dir: %v; %v", errDir, errFile)
	}
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer rc.Close()
	if err := rc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// The same server given by address: described alike, left running.
	given, err := startRedis(ctx, r.Addr, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if given.Version != r.Version || !slices.Equal(given.Settings, r.Settings) {
		t.Errorf("given server: %s %q, started as %s %q", given.Version, given.Settings, r.Version, r.Settings)
	}
	if err := given.Close(); err != nil {
		t.Errorf("close given: %v", err)
	}
	if v, err := rc.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after closing the given server's handle: %q, %v; want it still serving", v, err)
	}

	pid := r.cmd.Process.Pid
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	if err := r.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("server process %d after Close: kill 0 gives %v, want ESRCH", pid, err)
	}
	if err := rc.Ping(ctx).Err(); err == nil {
		t.Error("server still answers after Close")
	}
}

func TestStartRedisGivenDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if r, err := startRedis(ctx, peerClosedAddr(t), t.TempDir()); err == nil {
		r.Close()
		t.Fatal("startRedis on an address nothing listens on succeeded")
	}
}

func TestRedisInfoField(t *testing.T) {
	t.Parallel()
	info := "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n\r\n# Clients\r\nconnected_clients: 3 \r\n"
	for _, tc := range []struct {
		field, want string
		ok          bool
	}{
		{"redis_version", "7.0.15", true},
		{"redis_mode", "standalone", true},
		{"connected_clients", "3", true},
		{"redis", "", false},
		{"redis_version_x", "", false},
		{"Server", "", false},
		{"", "", false},
	} {
		got, ok := redisInfoField(info, tc.field)
		if got != tc.want || ok != tc.ok {
			t.Errorf("field %q: %q, %v; want %q, %v", tc.field, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzRedisInfoField(f *testing.F) {
	f.Add("# Server\r\nredis_version:7.0.15\r\n", "redis_version")
	f.Add("redis_version:\n", "redis_version")
	f.Add("a:b:c\r\n", "a")
	f.Add("redis_version:0\r0", "redis_version")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, info, field string) {
		v, ok := redisInfoField(info, field)
		if !ok {
			if v != "" {
				t.Fatalf("not found, yet value %q", v)
			}
			return
		}
		if strings.ContainsAny(v, "\r\n") || !strings.Contains(info, field+":") {
			t.Fatalf("field %q of %q: value %q", field, info, v)
		}
		if v != strings.TrimSpace(v) {
			t.Fatalf("value %q not trimmed", v)
		}
	})
}

func TestAsynqPayload(t *testing.T) {
	t.Parallel()
	now := time.Now().UnixNano()
	for _, tc := range []struct {
		seq  int
		sent int64
	}{{0, 0}, {1, now}, {49999, 1}, {1 << 40, math.MaxInt64}} {
		p := asynqEncode(tc.seq, tc.sent)
		seq, sent, err := asynqDecode(p)
		if err != nil || seq != tc.seq || sent != tc.sent {
			t.Errorf("decode(encode(%d, %d)) = %d, %d, %v", tc.seq, tc.sent, seq, sent, err)
		}
	}
	for _, p := range [][]byte{nil, {}, make([]byte, 15), make([]byte, 17), asynqEncode(-1, 0), asynqEncode(0, -1)} {
		if _, _, err := asynqDecode(p); ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Errorf("decode(%x): %v, want invalid_argument", p, err)
		}
	}
}

func FuzzAsynqDecode(f *testing.F) {
	f.Add(asynqEncode(0, 0))
	f.Add(asynqEncode(7, time.Now().UnixNano()))
	f.Add([]byte("not a payload"))
	f.Add(bytes.Repeat([]byte{0xff}, asynqPayloadLen))
	f.Fuzz(func(t *testing.T, p []byte) {
		seq, sent, err := asynqDecode(p)
		if err != nil {
			if ward.CodeOf(err) != ward.CodeInvalidArgument {
				t.Fatalf("error without invalid_argument: %v", err)
			}
			return
		}
		if seq < 0 || sent < 0 {
			t.Fatalf("decoded %d, %d", seq, sent)
		}
		if !bytes.Equal(asynqEncode(seq, sent), p) {
			t.Fatalf("%x decodes to %d, %d, which encode differently", p, seq, sent)
		}
	})
}

func TestPeerPaced(t *testing.T) {
	t.Parallel()
	var got []int
	var sent []int64
	err := peerPaced(t.Context(), 20, 1e6, func(ctx context.Context, i int, s int64) error {
		got = append(got, i)
		sent = append(sent, s)
		if now := time.Now().UnixNano(); s > now {
			t.Errorf("task %d sent at %d, after the call began (%d)", i, s, now)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if i >= len(got) || got[i] != i {
			t.Fatalf("calls %v, want 0..19 in order", got)
		}
	}
	if !slices.IsSorted(sent) {
		t.Errorf("send times not in order: %v", sent)
	}

	// An insert error stops the loop and is returned.
	boom := errors.New("boom")
	calls := 0
	err = peerPaced(t.Context(), 10, 1e6, func(context.Context, int, int64) error {
		calls++
		if calls == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 3 {
		t.Errorf("after an error at the 3rd call: %d calls, %v", calls, err)
	}

	// A cancelled context stops it between two inserts.
	ctx, cancel := context.WithCancel(t.Context())
	calls = 0
	err = peerPaced(ctx, 10, 1, func(context.Context, int, int64) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("cancelled after the 1st call: %d calls, %v", calls, err)
	}

	// peerLatency checks n and rate before pacing.
	var lat atomic.Pointer[peerLatencies]
	if _, err := peerLatency(t.Context(), "x", &lat, 1, 0, nil); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Errorf("rate 0: %v", err)
	}
}

func TestPeerLatencies(t *testing.T) {
	t.Parallel()
	l := newPeerLatencies(3)
	l.record(1, 5*time.Millisecond)
	l.record(1, 9*time.Millisecond) // a task run again: ignored
	l.record(-1, time.Second)
	l.record(3, time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.wait(ctx); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "1 of 3") {
		t.Errorf("wait with 1 of 3 recorded: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { l.record(0, time.Millisecond) })
	wg.Go(func() { l.record(2, 2*time.Millisecond) })
	got, err := l.wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if want := []time.Duration{time.Millisecond, 5 * time.Millisecond, 2 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("latencies %v, want %v", got, want)
	}
}

func TestAsynqCounter(t *testing.T) {
	t.Parallel()
	var c asynqCounter
	if err := c.wait(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(c.add)
	}
	if err := c.wait(t.Context(), 5); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if c.load() != 5 {
		t.Errorf("count %d, want 5", c.load())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.wait(ctx, 6); !errors.Is(err, context.Canceled) {
		t.Errorf("wait for 6 of 5 with a cancelled context: %v", err)
	}
	// A later add with no waiter is counted and does not block.
	c.add()
	if c.load() != 6 {
		t.Errorf("count %d, want 6", c.load())
	}
}

// The tuning benchmarks run a workload on candidate settings of each peer
// and report its rates; they are how the settings in river.go and asynq.go
// were chosen. Each opens a fresh instance per iteration, as the command
// does. PostgreSQL: WARD_TEST_POSTGRES, or a durable server started with
// the repository's script (as the command starts one). For example:
//
//	go test -run '^$' -bench 'PeersTuning/river-pgx' -benchtime 3x .
var (
	peerBenchTasks = flag.Int("peer-tasks", 50000, "tuning benchmarks: tasks per run of workload a")
	peerBenchBatch = flag.Int("peer-batch", 1000, "tuning benchmarks: tasks per insert call")
)

// peerBenchServices starts the services of the tuning benchmarks once.
type peerBenchServices struct {
	pgOnce, redisOnce sync.Once
	pg                *Postgres
	pgErr             error
	rd                *Redis
	rdErr             error
	dir               string
}

// newPeerBenchServices prepares the services' directory: like the
// command's, made with os.MkdirTemp, which the PostgreSQL script can hand
// to the server's unprivileged user (b.TempDir's parent it cannot).
func newPeerBenchServices(b *testing.B) *peerBenchServices {
	dir, err := os.MkdirTemp("", "ward-peer-bench-")
	if err != nil {
		b.Fatal(err)
	}
	return &peerBenchServices{dir: dir}
}

func (s *peerBenchServices) postgres(b *testing.B) *Postgres {
	s.pgOnce.Do(func() {
		// Not a context with a deadline: the server's stop runs in it.
		script, _ := filepath.Abs(filepath.Join("..", ".ci", "postgres.sh"))
		s.pg, s.pgErr = startPostgres(context.Background(), os.Getenv("WARD_TEST_POSTGRES"), script, s.dir)
	})
	if s.pgErr != nil {
		b.Skipf("no PostgreSQL: %v", s.pgErr)
	}
	return s.pg
}

func (s *peerBenchServices) redis(b *testing.B) *Redis {
	s.redisOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		s.rd, s.rdErr = startRedis(ctx, "", s.dir)
	})
	if s.rdErr != nil {
		b.Skipf("no Redis: %v", s.rdErr)
	}
	return s.rd
}

func (s *peerBenchServices) close() {
	if s.pg != nil {
		s.pg.Close()
	}
	if s.rd != nil {
		s.rd.Close()
	}
	os.RemoveAll(s.dir)
}

// peerBenchCandidate is one tuning to measure.
type peerBenchCandidate struct {
	name string
	open func(ctx context.Context, b *testing.B, s *peerBenchServices, env *Env) (Queue, error)
}

func peerBenchCandidates() []peerBenchCandidate {
	var out []peerBenchCandidate
	river := func(store string, t riverTuning) {
		name := fmt.Sprintf("river-%s/workers=%d/cooldown=%s/poll=%s/conns=%d", store, t.maxWorkers, t.fetchCooldown, t.fetchPollInterval, t.poolConns)
		out = append(out, peerBenchCandidate{name, func(ctx context.Context, b *testing.B, s *peerBenchServices, env *Env) (Queue, error) {
			if store == "pgx" {
				env.Postgres = s.postgres(b)
				return openRiverPgx(ctx, env, t)
			}
			return openRiverSQLite(ctx, env, t)
		}})
	}
	for _, workers := range []int{100, 1000, 2000} {
		for _, cooldown := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 100 * time.Millisecond} {
			for _, poll := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond} {
				if poll < cooldown || (cooldown == 100*time.Millisecond) != (poll == 100*time.Millisecond) {
					continue // River's defaults go together; tuned, poll at least cooldown
				}
				for _, conns := range []int{4, 8, 16} {
					river("pgx", riverTuning{maxWorkers: workers, fetchCooldown: cooldown, fetchPollInterval: poll, poolConns: conns})
				}
				river("sqlite", riverTuning{maxWorkers: workers, fetchCooldown: cooldown, fetchPollInterval: poll, poolConns: 1})
			}
		}
	}
	asynq := func(t asynqTuning) {
		out = append(out, peerBenchCandidate{
			fmt.Sprintf("asynq/concurrency=%d/enqueuers=%d/check=%s", t.concurrency, t.enqueuers, t.taskCheckInterval),
			func(ctx context.Context, b *testing.B, s *peerBenchServices, env *Env) (Queue, error) {
				env.Redis = s.redis(b)
				return openAsynq(ctx, env, t)
			}})
	}
	for _, conc := range []int{10, 20, 50, 100, 500} {
		for _, enq := range []int{1, 4, 8, 32} {
			asynq(asynqTuning{concurrency: conc, taskCheckInterval: 2 * time.Millisecond, enqueuers: enq, poolSize: max(enq*2, 10)})
		}
	}
	for _, check := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, time.Second} {
		asynq(asynqTuning{concurrency: 100, taskCheckInterval: check, enqueuers: 32, poolSize: 64})
	}
	return out
}

// BenchmarkPeersTuning runs workload a: -peer-tasks tasks in batches of
// -peer-batch; it reports completed/s (first insert to last completion)
// and inserted/s.
func BenchmarkPeersTuning(b *testing.B) {
	s := newPeerBenchServices(b)
	defer s.close()
	for _, c := range peerBenchCandidates() {
		b.Run(c.name, func(b *testing.B) {
			var insert, total time.Duration
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				env := &Env{Dir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), Workers: 2}
				q, err := c.open(ctx, b, s, env)
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				in, tot, err := q.Throughput(ctx, *peerBenchTasks, *peerBenchBatch)
				if cerr := q.Close(); err == nil {
					err = cerr
				}
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				insert += in
				total += tot
			}
			n := float64(*peerBenchTasks * b.N)
			b.ReportMetric(n/total.Seconds(), "completed/s")
			b.ReportMetric(n/insert.Seconds(), "inserted/s")
		})
	}
}

// BenchmarkPeersLatencyTuning runs workload b (500 tasks at 500/s) and
// reports the median enqueue→start latency in milliseconds.
func BenchmarkPeersLatencyTuning(b *testing.B) {
	s := newPeerBenchServices(b)
	defer s.close()
	for _, c := range peerBenchCandidates() {
		b.Run(c.name, func(b *testing.B) {
			var all []time.Duration
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				env := &Env{Dir: b.TempDir(), Workers: 2}
				q, err := c.open(ctx, b, s, env)
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				lat, err := q.Latency(ctx, 500, 500)
				if cerr := q.Close(); err == nil {
					err = cerr
				}
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				all = append(all, lat...)
			}
			slices.Sort(all)
			b.ReportMetric(float64(all[len(all)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100])/1e6, "p99-ms")
		})
	}
}
