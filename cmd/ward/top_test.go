package main

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
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
	prev, err := parseSnapshot([]byte(metricsText(100, 10, [3]int{50, 100, 110})), "shop")
	if err != nil {
		t.Fatal(err)
	}
	// Over 2 s: 40 more finished (10 of them failed); of the 40 waits, 20
	// were under 0.1 s and 20 between 0.1 and 1 s.
	cur, err := parseSnapshot([]byte(metricsText(130, 20, [3]int{70, 140, 150})), "shop")
	if err != nil {
		t.Fatal(err)
	}
	rows := topRows(prev, cur, 2*time.Second)
	if len(rows) != 2 || rows[0].function != "resize" || rows[1].function != "mail" {
		t.Fatalf("rows = %+v, want resize (deepest queue) then mail, and nothing of project other", rows)
	}
	r := rows[0]
	if r.depth != 7 || r.running != 2 || r.perSec != 20 || r.failSec != 5 {
		t.Errorf("resize = %+v, want depth 7, running 2, 20 done/s, 5 failed/s", r)
	}
	// 95% of 40 = rank 38; 20 waits up to 0.1 s, 20 more up to 1 s:
	// 0.1 + 0.9·(38−20)/20 = 0.91 s.
	if math.Abs(r.waitP95-0.91) > 1e-9 {
		t.Errorf("wait p95 = %v, want 0.91", r.waitP95)
	}
	if !math.IsNaN(rows[1].waitP95) {
		t.Errorf("mail wait p95 = %v, want none (nothing finished)", rows[1].waitP95)
	}
	// Waits past the last finite bucket report its bound.
	if q := quantile(0.95, histogram{}, histogram{bounds: []float64{1, math.Inf(1)}, counts: []float64{0, 5}}); q != 1 {
		t.Errorf("quantile beyond the last bucket = %v, want 1", q)
	}
	if _, err := parseSnapshot([]byte("not { metrics"), "shop"); err == nil {
		t.Error("a scrape that is not the text format was accepted")
	}
}

func TestTopOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	scrapes := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || r.Header.Get("Authorization") == "" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		mu.Lock()
		n := scrapes
		scrapes++
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, metricsText(100+10*n, 0, [3]int{100 + 10*n, 100 + 10*n, 100 + 10*n}))
	}))
	t.Cleanup(srv.Close)
	c := newCLI(t, srv.URL)
	r := c.run(t, "--project", "shop", "top", "--once", "--interval", "100ms")
	r.wantCode(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 4 || !strings.Contains(lines[0], "project shop") || !strings.Contains(lines[2], "WAIT_P95") {
		t.Fatalf("stdout = %q", r.stdout)
	}
	// 10 more finished over the 100 ms interval, every wait within the
	// first bucket: p95 interpolates to 95 ms.
	if f := strings.Fields(lines[3]); len(f) != 6 || f[0] != "resize" || f[1] != "7" || f[2] != "2" || f[3] != "95ms" || f[4] != "100.0" || f[5] != "0.0" {
		t.Errorf("resize line = %q, want resize 7 2 95ms 100.0 0.0", lines[3])
	}
	if r := c.run(t, "top", "--interval", "1ms"); r.code != 2 {
		t.Errorf("--interval 1ms: exit %d, want 2", r.code)
	}
}
