package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
)

// metricsText renders a scrape with the figures top reads: functions
// resize and mail of project shop, and one of project other.
func metricsText(finished, failed int, wait [3]int) string {
	return fmt.Sprintf(`# TYPE ward_queue_depth gauge
ward_queue_depth{function="resize",project="shop"} 7
ward_queue_depth{function="mail",project="shop"} 0
ward_queue_depth{function="x",project="other"} 99
# TYPE ward_tasks_running gauge
ward_tasks_running{function="resize",project="shop"} 2
ward_tasks_running{function="mail",project="shop"} 1
# TYPE ward_tasks_finished_total counter
ward_tasks_finished_total{code="",function="resize",project="shop",status="succeeded"} %d
ward_tasks_finished_total{code="exit_status",function="resize",project="shop",status="failed"} %d
ward_tasks_finished_total{code="",function="x",project="other",status="succeeded"} 1000
# TYPE ward_task_wait_seconds histogram
ward_task_wait_seconds_bucket{function="resize",project="shop",le="0.1"} %d
ward_task_wait_seconds_bucket{function="resize",project="shop",le="1"} %d
ward_task_wait_seconds_bucket{function="resize",project="shop",le="+Inf"} %d
ward_task_wait_seconds_sum{function="resize",project="shop"} 1
ward_task_wait_seconds_count{function="resize",project="shop"} %d
`, finished, failed, wait[0], wait[1], wait[2], wait[2])
}

func TestTopRows(t *testing.T) {
	t.Parallel()
	prev, err := parseSnapshot([]byte(metricsText(100, 10, [3]int{50, 100, 110})))
	if err != nil {
		t.Fatal(err)
	}
	// Over 2 s: 40 more finished (10 of them failed); of the 40 waits, 20
	// were under 0.1 s and 20 between 0.1 and 1 s.
	cur, err := parseSnapshot([]byte(metricsText(130, 20, [3]int{70, 140, 150})))
	if err != nil {
		t.Fatal(err)
	}
	rows := topRows(prev, cur, 2*time.Second)
	if len(rows) != 3 || rows[0].project != "other" || rows[0].function != "x" ||
		rows[1].project != "shop" || rows[1].function != "resize" || rows[2].function != "mail" {
		t.Fatalf("rows = %+v, want other/x, shop/resize, shop/mail (by queue depth)", rows)
	}
	if x := rows[0]; x.depth != 99 || x.perSec != 0 || !math.IsNaN(x.waitP95) {
		t.Errorf("other/x = %+v, want depth 99, nothing finished in the interval", x)
	}
	r := rows[1]
	if r.depth != 7 || r.running != 2 || r.perSec != 20 || r.failSec != 5 {
		t.Errorf("resize = %+v, want depth 7, running 2, 20 done/s, 5 failed/s", r)
	}
	// 95% of 40 = rank 38; 20 waits up to 0.1 s, 20 more up to 1 s:
	// 0.1 + 0.9·(38−20)/20 = 0.91 s.
	if math.Abs(r.waitP95-0.91) > 1e-9 {
		t.Errorf("wait p95 = %v, want 0.91", r.waitP95)
	}
	if !math.IsNaN(rows[2].waitP95) {
		t.Errorf("mail wait p95 = %v, want none (nothing finished)", rows[2].waitP95)
	}
	// Waits past the last finite bucket report its bound.
	if q := quantile(0.95, histogram{}, histogram{bounds: []float64{1, math.Inf(1)}, counts: []float64{0, 5}}); q != 1 {
		t.Errorf("quantile beyond the last bucket = %v, want 1", q)
	}
	if _, err := parseSnapshot([]byte("not { metrics")); err == nil {
		t.Error("a scrape that is not the text format was accepted")
	}
}

func TestStatsRows(t *testing.T) {
	t.Parallel()
	p95 := 1234.5
	rows := statsRows(ward.Stats{WindowS: 4, Functions: []ward.FunctionStats{
		{Function: "mail", Queued: 1, Finished: 8, Failed: 2, WaitP95Ms: &p95},
		{Function: "resize", Queued: 5, Running: 3},
	}})
	if len(rows) != 2 || rows[0].function != "resize" || rows[1].function != "mail" {
		t.Fatalf("rows = %+v, want resize (deepest queue) then mail", rows)
	}
	if r := rows[1]; r.depth != 1 || r.perSec != 2 || r.failSec != 0.5 || r.waitP95 != 1.2345 {
		t.Errorf("mail = %+v, want depth 1, 2 done/s, 0.5 failed/s, p95 1.2345s", r)
	}
	if r := rows[0]; r.running != 3 || !math.IsNaN(r.waitP95) || r.perSec != 0 {
		t.Errorf("resize = %+v, want running 3, no wait, nothing done", r)
	}
	for in, want := range map[time.Duration]time.Duration{100 * time.Millisecond: time.Second, 5 * time.Second: 5 * time.Second, 2 * time.Hour: time.Hour} {
		if got := statsWindow(in); got != want {
			t.Errorf("statsWindow(%v) = %v, want %v", in, got, want)
		}
	}
}

// topServer is a canned API: GET /metrics answers metricsStatus (with a
// scrape whose finished counts grow by 10 each time when 200), and GET
// /v1/projects/{p}/stats answers the stats of statsJSON for project shop
// and default. It records the stats queries.
type topServer struct {
	*httptest.Server
	mu            sync.Mutex
	scrapes       int
	statsQueries  []string
	metricsStatus int
}

func newTopServer(t *testing.T, metricsStatus int) *topServer {
	ts := &topServer{metricsStatus: metricsStatus}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		ts.mu.Lock()
		defer ts.mu.Unlock()
		switch r.URL.Path {
		case "/metrics":
			if ts.metricsStatus != http.StatusOK {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(ts.metricsStatus)
				fmt.Fprint(w, `{"error":{"code":"forbidden","message":"the metrics of every project need an admin token"}}`)
				return
			}
			n := ts.scrapes
			ts.scrapes++
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			fmt.Fprint(w, metricsText(100+10*n, 0, [3]int{100 + 10*n, 100 + 10*n, 100 + 10*n}))
		case "/v1/projects/shop/stats", "/v1/projects/default/stats":
			ts.statsQueries = append(ts.statsQueries, r.URL.Path+"?"+r.URL.RawQuery)
			p95 := 250.0
			st := ward.Stats{WindowS: 2, At: time.Now().UTC(), Functions: []ward.FunctionStats{
				{Function: "mail", Queued: 0, Running: 1},
				{Function: "resize", Queued: 7, Delayed: 1, Running: 2, Submitted: 12, Finished: 10, Failed: 4, WaitP95Ms: &p95},
			}, Total: ward.FunctionStats{Queued: 7, Running: 3, Finished: 10, Failed: 4}}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(st)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"project nope not found"}}`)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *topServer) scrapeCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.scrapes
}

func (ts *topServer) queries() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.statsQueries...)
}

// TestTopProject: with a project, top reads its stats (never /metrics),
// over a window of the interval, and prints a frame at once.
func TestTopProject(t *testing.T) {
	t.Parallel()
	srv := newTopServer(t, http.StatusOK)
	c := newCLI(t, srv.URL)
	r := c.run(t, "--project", "shop", "top", "--once", "--interval", "2s")
	r.wantCode(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "project shop") || !strings.Contains(lines[2], "WAIT_P95") || strings.Contains(lines[2], "PROJECT") {
		t.Fatalf("stdout = %q", r.stdout)
	}
	// 10 finished and 4 failed over the 2 s window.
	if f := strings.Fields(lines[3]); len(f) != 6 || f[0] != "resize" || f[1] != "7" || f[2] != "2" || f[3] != "250ms" || f[4] != "5.0" || f[5] != "2.0" {
		t.Errorf("resize line = %q, want resize 7 2 250ms 5.0 2.0", lines[3])
	}
	if f := strings.Fields(lines[4]); len(f) != 6 || f[0] != "mail" || f[3] != "-" {
		t.Errorf("mail line = %q, want mail with no wait", lines[4])
	}
	if q := srv.queries(); len(q) != 1 || q[0] != "/v1/projects/shop/stats?window=2s" {
		t.Errorf("stats queries = %q", q)
	}
	if n := srv.scrapeCount(); n != 0 {
		t.Errorf("%d scrapes of /metrics with a project", n)
	}

	// WARD_PROJECT names a project too; a short interval reads a 1s window.
	c.env["WARD_PROJECT"] = "shop"
	c.run(t, "top", "--once", "--interval", "100ms").wantCode(t, 0)
	if q := srv.queries(); len(q) != 2 || q[1] != "/v1/projects/shop/stats?window=1s" {
		t.Errorf("stats queries = %q", q)
	}

	// A project the token cannot see: the API's error.
	r = c.run(t, "--project", "nope", "top", "--once")
	if r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("project nope: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := c.run(t, "top", "--interval", "1ms"); r.code != 2 {
		t.Errorf("--interval 1ms: exit %d, want 2", r.code)
	}
}

// TestTopAllProjects: without a project, an admin token's top shows every
// project from /metrics, rates over one interval.
func TestTopAllProjects(t *testing.T) {
	t.Parallel()
	srv := newTopServer(t, http.StatusOK)
	c := newCLI(t, srv.URL)
	r := c.run(t, "top", "--once", "--interval", "100ms")
	r.wantCode(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "all projects") || !strings.HasPrefix(lines[2], "PROJECT") {
		t.Fatalf("stdout = %q", r.stdout)
	}
	if f := strings.Fields(lines[3]); len(f) != 7 || f[0] != "other" || f[1] != "x" || f[2] != "99" {
		t.Errorf("first line = %q, want other's x (deepest queue)", lines[3])
	}
	// 10 more finished over the 100 ms interval, every wait within the
	// first bucket: p95 interpolates to 95 ms.
	if f := strings.Fields(lines[4]); len(f) != 7 || f[0] != "shop" || f[1] != "resize" || f[2] != "7" || f[3] != "2" || f[4] != "95ms" || f[5] != "100.0" || f[6] != "0.0" {
		t.Errorf("resize line = %q, want shop resize 7 2 95ms 100.0 0.0", lines[4])
	}
	if len(srv.queries()) != 0 {
		t.Errorf("stats read with an admin token and no project: %q", srv.queries())
	}
}

// TestTopNotAdmin: without a project, a token that may not scrape
// /metrics gets the default project's stats.
func TestTopNotAdmin(t *testing.T) {
	t.Parallel()
	srv := newTopServer(t, http.StatusForbidden)
	c := newCLI(t, srv.URL)
	r := c.run(t, "top", "--once")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "project default") || !strings.Contains(r.stdout, "resize") {
		t.Errorf("stdout = %q", r.stdout)
	}
	if q := srv.queries(); len(q) != 1 || q[0] != "/v1/projects/default/stats?window=1s" {
		t.Errorf("stats queries = %q", q)
	}
}
