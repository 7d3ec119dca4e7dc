package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/store/postgres/pgtest"
)

// buildWard builds the ward binary once per test binary.
var buildWard = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ward-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ward")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ward").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

func wardBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the ward binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	bin, err := buildWard()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// proc is a ward process of a test cluster; its output goes to a log file
// shown when the test fails.
type proc struct {
	t       testing.TB
	name    string
	bin     string
	args    []string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // Wait's, once done is closed
}

func startProc(t testing.TB, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, bin: bin, args: args, logPath: filepath.Join(t.TempDir(), name+".log")}
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- %s (last lines) ---\n%s", p.name, b)
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = append(os.Environ(), "WARD_CONFIG="+filepath.Join(filepath.Dir(p.logPath), "ward-cli.json"))
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// exitCode waits up to d for the process to end and returns its exit code.
func (p *proc) exitCode(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("%s still runs after %s", p.name, d)
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	p.t.Fatalf("%s: %v", p.name, p.err)
	return -1
}

// logCount counts the lines of the process's log that contain s.
func (p *proc) logCount(s string) int {
	f, err := os.Open(p.logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n
}

// waitReady polls url until it answers 200.
func waitReady(t testing.TB, url string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s", url, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testCluster is servers and runners of one cluster, on one store.
type testCluster struct {
	t          testing.TB
	bin, dir   string
	keys       string
	store      string // DSN
	keystore   string // DSN
	admin      *client.Client
	adminToken string
	servers    []*proc
	publicURL  []string
	internal   []string
}

// newCluster runs `ward server init` on the two databases and starts n
// servers.
func newCluster(t testing.TB, bin, storeDSN, keystoreDSN string, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bin: bin, dir: t.TempDir(), store: storeDSN, keystore: keystoreDSN}
	c.keys = filepath.Join(c.dir, "keys")
	out, err := exec.Command(bin, "server", "init", "--keys", c.keys, "--data", filepath.Join(c.dir, "init"),
		"--store", storeDSN, "--keystore", keystoreDSN, "-o", "json").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("server init: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var rep struct{ AdminToken string }
	if err := json.Unmarshal(out, &rep); err != nil || rep.AdminToken == "" {
		t.Fatalf("server init answered %s (%v)", out, err)
	}
	for i := range n {
		pub, internal := freeAddr(t), freeAddr(t)
		c.servers = append(c.servers, startProc(t, bin, fmt.Sprintf("server-%d", i+1), "server",
			"--data", filepath.Join(c.dir, fmt.Sprintf("server-%d", i+1)), "--keys", c.keys,
			"--store", storeDSN, "--keystore", keystoreDSN,
			"--addr", pub, "--internal-addr", internal, "--grace", "1s", "--log-level", "warn"))
		c.publicURL = append(c.publicURL, "http://"+pub)
		c.internal = append(c.internal, "https://"+internal)
	}
	for _, u := range c.publicURL {
		waitReady(t, u+"/readyz", 2*time.Minute)
	}
	c.adminToken = rep.AdminToken
	if c.admin, err = client.New(c.publicURL[0], rep.AdminToken); err != nil {
		t.Fatal(err)
	}
	return c
}

// adminAt is an admin client of server i.
func (c *testCluster) adminAt(i int) *client.Client {
	c.t.Helper()
	cl, err := client.New(c.publicURL[i], c.adminToken)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// runner joins a runner with a fresh token and starts it on the given
// internal URLs with extra flags.
func (c *testCluster) runner(name string, urls []string, flags ...string) (*proc, string) {
	c.t.Helper()
	jt, err := c.admin.CreateJoinToken(context.Background(), "10m")
	if err != nil {
		c.t.Fatal(err)
	}
	dir := filepath.Join(c.dir, name)
	args := append([]string{"runner", "run"}, urls...)
	args = append(args, "--dir", dir, "--join-token", jt.Token, "--log-level", "info")
	args = append(args, flags...)
	return startProc(c.t, c.bin, name, args...), dir
}

// deploy creates function fn with a sandboxtest module as its code.
func (c *testCluster) deploy(fn, module string, spec ward.FunctionSpec) {
	c.t.Helper()
	ctx := context.Background()
	if _, err := c.admin.PutFunction(ctx, ward.DefaultProject, fn, spec); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.admin.UploadCode(ctx, ward.DefaultProject, fn, sandboxtest.Module(module)); err != nil {
		c.t.Fatal(err)
	}
}

// submit submits n tasks of fn in batches, through cl.
func submitMany(t testing.TB, cl *client.Client, fn string, n int) []string {
	t.Helper()
	var ids []string
	for len(ids) < n {
		reqs := make([]ward.SubmitRequest, min(500, n-len(ids)))
		for i := range reqs {
			reqs[i] = ward.SubmitRequest{Function: fn, Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, len(ids)+i))}
		}
		tasks, err := cl.SubmitBatch(context.Background(), ward.DefaultProject, reqs)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			ids = append(ids, tk.ID)
		}
	}
	return ids
}

// counts returns the store's tasks by status, and the sum of their
// attempts, straight from PostgreSQL.
func counts(t testing.TB, dsn string) (map[ward.Status]int, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, 0 // PostgreSQL restarting: the caller polls again
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT status, count(*), coalesce(sum(attempts), 0) FROM tasks GROUP BY status`)
	if err != nil {
		return nil, 0
	}
	defer rows.Close()
	n, attempts := map[ward.Status]int{}, 0
	for rows.Next() {
		var st string
		var c, a int
		if err := rows.Scan(&st, &c, &a); err != nil {
			t.Fatal(err)
		}
		n[ward.Status(st)], attempts = c, attempts+a
	}
	return n, attempts
}

// TestRunnerDrainAndRecycle runs `ward server` with remote `ward runner`
// processes on PostgreSQL: a runner drained with `ward runner drain` (and
// one sent SIGTERM) takes no new task, finishes its running ones and exits
// 0; a `--max-tasks 50` runner exits 0 after 50 tasks.
func TestRunnerDrainAndRecycle(t *testing.T) {
	bin := wardBinary(t)
	c := newCluster(t, bin, pgtest.DSN(t), pgtest.DSN(t), 1)
	c.deploy("sleep", "sleep", ward.FunctionSpec{})
	c.deploy("echo", "echo", ward.FunctionSpec{})
	ctx := context.Background()

	for _, how := range []string{"drain", "SIGTERM"} {
		t.Run(how, func(t *testing.T) {
			r, dir := c.runner("drain-"+strings.ToLower(how), c.internal, "--slots", "4")
			ids := submitMany(t, c.admin, "sleep", 10)
			// Four run (500 ms each); the rest wait.
			var id string
			deadline := time.Now().Add(time.Minute)
			for {
				rs, err := c.admin.ListRunners(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, rn := range rs {
					if rn.Running == 4 && rn.State == ward.RunnerActive && strings.Contains(dir, "drain-") {
						id = rn.ID
					}
				}
				if id != "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the runner never ran 4 tasks: %+v", rs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if how == "drain" {
				out, err := exec.Command(bin, "runner", "drain", id, "--server", c.publicURL[0], "--token", c.adminToken).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "draining") {
					t.Fatalf("ward runner drain: %v\n%s", err, out)
				}
			} else if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := r.exitCode(time.Minute); code != 0 {
				t.Fatalf("drained runner exited %d", code)
			}
			done, queued := 0, 0
			for _, tid := range ids {
				tk, err := c.admin.GetTask(ctx, ward.DefaultProject, tid)
				if err != nil {
					t.Fatal(err)
				}
				switch tk.Status {
				case ward.StatusSucceeded:
					done++
				case ward.StatusQueued:
					queued++
				default:
					t.Fatalf("task %s: %s %+v", tid, tk.Status, tk.Error)
				}
			}
			// The four running at the drain finished; nothing new was
			// leased after it (a lease in flight at that moment may add
			// at most one batch of the free slots, here none: all four
			// were busy).
			if done != 4 || queued != 6 {
				t.Fatalf("after the drain: %d succeeded, %d queued; want 4 and 6", done, queued)
			}
			rn := runnerByID(t, c.admin, id)
			if rn.State != ward.RunnerDrained || rn.Running != 0 {
				t.Fatalf("runner after drain: %+v", rn)
			}
			// Clear the queue for the next case.
			for _, tid := range ids {
				_, _ = c.admin.CancelTask(ctx, ward.DefaultProject, tid)
			}
		})
	}

	t.Run("max-tasks", func(t *testing.T) {
		r, _ := c.runner("recycled", c.internal, "--slots", "8", "--max-tasks", "50")
		ids := submitMany(t, c.admin, "echo", 80)
		if code := r.exitCode(2 * time.Minute); code != 0 {
			t.Fatalf("--max-tasks runner exited %d", code)
		}
		n := map[ward.Status]int{}
		for _, tid := range ids {
			tk, err := c.admin.GetTask(ctx, ward.DefaultProject, tid)
			if err != nil {
				t.Fatal(err)
			}
			n[tk.Status]++
		}
		if n[ward.StatusSucceeded] != 50 || n[ward.StatusQueued] != 30 {
			t.Fatalf("after a --max-tasks 50 runner: %v", n)
		}
		if got := r.logCount(`msg=drained`); got != 1 || r.logCount(`cause="max tasks reached"`) < 1 {
			t.Fatalf("runner log: %d drained lines", got)
		}
	})
}

func runnerByID(t *testing.T, cl *client.Client, id string) ward.Runner {
	t.Helper()
	rs, err := cl.ListRunners(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, rn := range rs {
		if rn.ID == id {
			return rn
		}
	}
	t.Fatalf("runner %s not listed", id)
	return ward.Runner{}
}

// TestFollowLogAcrossServers runs two `ward server` processes on one
// PostgreSQL store and a remote `ward runner` that reports to the first:
// a follower of the second server gets the task's first lines, its secret
// redacted, while the task still runs, then the rest, exactly once.
func TestFollowLogAcrossServers(t *testing.T) {
	bin := wardBinary(t)
	c := newCluster(t, bin, pgtest.DSN(t), pgtest.DSN(t), 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := ward.DefaultProject
	if _, err := c.admin.PutFunction(ctx, p, "slowlog", ward.FunctionSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.UploadCode(ctx, p, "slowlog", sandboxtest.GoModule(t, sandboxtest.GoSlowLog)); err != nil {
		t.Fatal(err)
	}
	const secret = "cluster-live-log-secret"
	if _, err := c.admin.PutSecret(ctx, p, "slowlog", "TOKEN", []byte(secret)); err != nil {
		t.Fatal(err)
	}
	c.runner("log-runner", c.internal[:1])
	tk, err := c.admin.Submit(ctx, p, ward.SubmitRequest{Function: "slowlog", Payload: json.RawMessage(`3000`)})
	if err != nil {
		t.Fatal(err)
	}
	second := c.adminAt(1)
	pr, pw := io.Pipe()
	followed := make(chan error, 1)
	go func() {
		err := second.FollowLog(ctx, p, tk.ID, pw)
		pw.CloseWithError(err)
		followed <- err
	}()
	lines := bufio.NewReader(pr)
	var got strings.Builder
	for _, want := range []string{"first line\n", "secret TOKEN=[REDACTED]\n"} {
		l, err := lines.ReadString('\n')
		if err != nil || l != want {
			t.Fatalf("followed line %q (%v), want %q; so far %q", l, err, want, got.String())
		}
		got.WriteString(l)
	}
	if now, err := second.GetTask(ctx, p, tk.ID); err != nil || now.Status != ward.StatusRunning {
		t.Fatalf("task is %s (%v) once its first lines were followed on the other server, want running", now.Status, err)
	}
	rest, err := io.ReadAll(lines)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-followed; err != nil {
		t.Fatalf("FollowLog: %v", err)
	}
	const want = "first line\nsecret TOKEN=[REDACTED]\nsecond line\n"
	if all := got.String() + string(rest); all != want {
		t.Errorf("followed log = %q, want %q", all, want)
	}
	if done, err := second.GetTask(ctx, p, tk.ID); err != nil || done.Status != ward.StatusSucceeded {
		t.Errorf("task is %s (%v) once the followed log ended, want succeeded", done.Status, err)
	}
}
