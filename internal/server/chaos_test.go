package server_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/pki"
)

// privatePostgres is a PostgreSQL server of one test, started by
// .ci/postgres.sh in a directory of its own so that the test may restart it.
type privatePostgres struct {
	t      *testing.T
	script string
	env    []string
	url    string
}

func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	script, err := filepath.Abs("../../.ci/postgres.sh")
	if err != nil {
		t.Fatal(err)
	}
	// Not under t.TempDir: the server may run as another user, who must be
	// able to reach the directory.
	dir, err := os.MkdirTemp("", "ward-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	pg := &privatePostgres{t: t, script: script, env: append(os.Environ(), "WARD_PG_DIR="+filepath.Join(dir, "pg"), "WARD_PG_PORT="+port)}
	pg.url = strings.TrimSpace(pg.run())
	t.Cleanup(func() {
		pg.run("stop")
		os.RemoveAll(dir)
	})
	return pg
}

func (pg *privatePostgres) run(args ...string) string {
	pg.t.Helper()
	cmd := exec.Command(pg.script, args...)
	cmd.Env = pg.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		pg.t.Fatalf("postgres.sh %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// runnerIDIn waits for a runner to join and returns its ID.
func runnerIDIn(t *testing.T, dir string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		id, err := pki.LoadIdentity(dir)
		if err == nil {
			return id.RunnerID
		}
		if time.Now().After(deadline) {
			t.Fatalf("no runner identity in %s: %v", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runningOf counts the tasks a runner holds a lease on, in PostgreSQL.
func runningOf(t *testing.T, dsn, runnerID string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE status = 'running' AND runner_id = $1`, runnerID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// restart stops the server (fast: connections are cut) and starts it again.
func (pg *privatePostgres) restart() {
	pg.t.Helper()
	pg.run("stop")
	pg.run()
}

// database creates a database and returns its URL.
func (pg *privatePostgres) database(name string) string {
	pg.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.url)
	if err != nil {
		pg.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		pg.t.Fatal(err)
	}
	u, err := url.Parse(pg.url)
	if err != nil {
		pg.t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestChaos runs 5,000 tasks on a cluster of two `ward server` and two
// `ward runner` processes on PostgreSQL, and meanwhile kills one server and
// one runner with SIGKILL — while that runner holds leases, which must expire
// and their tasks run again — and starts them again, then restarts
// PostgreSQL. Every 50th task sleeps 500 ms, so leases are held at any time.
// Every task must end succeeded, exactly once: its recorded result is the
// one of its last attempt. The number of re-executions is printed.
//
// It starts a PostgreSQL server of its own (with .ci/postgres.sh), so it
// runs only with WARD_TEST_CHAOS=1, as .ci/run sets it.
func TestChaos(t *testing.T) {
	if os.Getenv("WARD_TEST_CHAOS") == "" {
		t.Skip("set WARD_TEST_CHAOS=1 to run the chaos test (it starts and restarts a PostgreSQL server of its own)")
	}
	bin := wardBinary(t)
	pg := startPrivatePostgres(t)
	storeDSN, keystoreDSN := pg.database("ward_store"), pg.database("ward_keys")
	c := newCluster(t, bin, storeDSN, keystoreDSN, 2)
	c.deploy("env", "env", ward.FunctionSpec{})
	c.deploy("sleep", "sleep", ward.FunctionSpec{})
	r1, r1Dir := c.runner("runner-1", []string{c.internal[0], c.internal[1]}, "--slots", "16")
	r2, _ := c.runner("runner-2", []string{c.internal[1], c.internal[0]}, "--slots", "16")

	r1ID := runnerIDIn(t, r1Dir)
	const total = 5000
	start := time.Now()
	// Every 50th task sleeps: at any moment each runner holds some leases.
	var ids, sleepIDs []string
	for len(ids)+len(sleepIDs) < total {
		reqs := make([]ward.SubmitRequest, 500)
		for i := range reqs {
			reqs[i] = ward.SubmitRequest{Function: "env"}
			if (len(ids)+len(sleepIDs)+i)%50 == 0 {
				reqs[i].Function = "sleep"
			}
		}
		tasks, err := c.admin.SubmitBatch(context.Background(), ward.DefaultProject, reqs)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			if tk.Function == "sleep" {
				sleepIDs = append(sleepIDs, tk.ID)
			} else {
				ids = append(ids, tk.ID)
			}
		}
	}
	t.Logf("submitted %d tasks in %s", total, time.Since(start).Round(time.Millisecond))

	succeeded := func() int {
		n, _ := counts(t, storeDSN)
		return n[ward.StatusSucceeded]
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				n, _ := counts(t, storeDSN)
				t.Fatalf("waiting for %s: %v", what, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Kill runner-1 while it holds leases, so that their expiry is tested.
	waitFor("1,000 tasks and leases held by runner-1", func() bool {
		return succeeded() >= 1000 && runningOf(t, storeDSN, r1ID) > 0
	})
	t.Logf("SIGKILL runner-1 and server-1 with %d tasks succeeded", succeeded())
	r1.kill()
	c.servers[0].kill()
	held := runningOf(t, storeDSN, r1ID)
	t.Logf("runner-1 held %d leases when it was killed", held)
	if n := succeeded(); n >= total || held == 0 {
		t.Fatalf("at the kill, %d tasks had succeeded and runner-1 held %d leases; the test proves nothing", n, held)
	}
	c.servers[0].start()
	r1.start()
	waitReady(t, c.publicURL[0]+"/readyz", 2*time.Minute)

	waitFor("2,500 tasks", func() bool { return succeeded() >= 2500 })
	if n := succeeded(); n >= total {
		t.Fatal("all tasks ended before PostgreSQL restarted; the test proves nothing")
	}
	t.Logf("restarting PostgreSQL with %d tasks succeeded", succeeded())
	pg.restart()

	waitFor("every task to end", func() bool {
		n, _ := counts(t, storeDSN)
		return n[ward.StatusSucceeded]+n[ward.StatusFailed]+n[ward.StatusCancelled] == total
	})
	elapsed := time.Since(start)
	n, attempts := counts(t, storeDSN)
	if n[ward.StatusSucceeded] != total {
		t.Fatalf("tasks by status: %v; want all %d succeeded", n, total)
	}

	// Each result is the last attempt's own: a run fenced off after its
	// lease was lost never overwrote it.
	cl := c.adminAt(1)
	ctx := context.Background()
	for _, id := range ids {
		tk, err := cl.GetTask(ctx, ward.DefaultProject, id)
		if err != nil {
			t.Fatal(err)
		}
		res, err := cl.Result(ctx, ward.DefaultProject, id)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, line := range strings.Split(string(res), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		if env["WARD_TASK_ID"] != id || env["WARD_ATTEMPT"] != strconv.Itoa(tk.Attempts) {
			t.Fatalf("task %s (attempts %d) holds the result of %s attempt %s", id, tk.Attempts, env["WARD_TASK_ID"], env["WARD_ATTEMPT"])
		}
	}
	for _, id := range sleepIDs {
		if res, err := cl.Result(ctx, ward.DefaultProject, id); err != nil || string(res) != "slept\n" {
			t.Fatalf("sleep task %s: result %q, %v", id, res, err)
		}
	}
	fenced := r1.logCount("result of a lost lease ignored") + r2.logCount("result of a lost lease ignored")
	summary := fmt.Sprintf("chaos: %d tasks succeeded in %s; %d re-executions (%d attempts in all), %d results of lost leases refused",
		total, elapsed.Round(time.Millisecond), attempts-total, attempts, fenced)
	t.Log(summary)
	fmt.Println(summary)
	// The leases the killed runner held expired and their tasks ran again.
	if attempts-total < held {
		t.Fatalf("%d re-executions, but the killed runner held %d leases", attempts-total, held)
	}
}
