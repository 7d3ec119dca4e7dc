package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

// series gathers m and returns each series of family name as
// "label=value,… value" lines, sorted; histograms give count and sum.
func series(t *testing.T, m *Metrics, name string) []string {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			out = append(out, line(mt))
		}
	}
	sort.Strings(out)
	return out
}

func line(m *dto.Metric) string {
	var ls []string
	for _, lp := range m.GetLabel() {
		ls = append(ls, lp.GetName()+"="+lp.GetValue())
	}
	var v string
	switch {
	case m.GetCounter() != nil:
		v = fmt.Sprint(m.GetCounter().GetValue())
	case m.GetGauge() != nil:
		v = fmt.Sprint(m.GetGauge().GetValue())
	case m.GetHistogram() != nil:
		v = fmt.Sprintf("count=%d sum=%g", m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum())
	}
	return strings.Join(ls, ",") + " " + v
}

func wantSeries(t *testing.T, m *Metrics, name string, want ...string) {
	t.Helper()
	got := series(t, m, name)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n\t%s\nwant\n\t%s", name, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func TestQueueObserver(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	m.Submitted("p", "a", 3)
	m.Submitted("p", "a", 2)
	m.Submitted("p", "b", 0) // nothing submitted: no series
	m.Submitted("q", "a", 1)
	m.Rejected("p", "a", ward.CodeFunctionBusy)
	m.Rejected("p", "a", ward.CodeFunctionBusy)
	m.Rejected("p", "b", ward.CodeFunctionRate)
	m.Finished("p", "a", ward.StatusSucceeded, "", 2*time.Second, 500*time.Millisecond)
	m.Finished("p", "a", ward.StatusSucceeded, "", 1*time.Second, 250*time.Millisecond)
	m.Finished("p", "a", ward.StatusFailed, ward.CodeExitStatus, 0, time.Second)
	m.Finished("p", "a", ward.StatusCancelled, ward.CodeCancelled, 4*time.Second, 0)         // never started
	m.Finished("p", "a", ward.StatusCancelled, ward.CodeCancelled, time.Second, time.Second) // ran

	wantSeries(t, m, "ward_tasks_submitted_total", "function=a,project=p 5", "function=a,project=q 1")
	wantSeries(t, m, "ward_limit_rejections_total",
		"function=a,limit=function_concurrency,project=p 2", "function=b,limit=function_rate,project=p 1")
	wantSeries(t, m, "ward_tasks_finished_total",
		"code=,function=a,project=p,status=succeeded 2",
		"code=cancelled,function=a,project=p,status=cancelled 2",
		"code=exit_status,function=a,project=p,status=failed 1")
	// The task cancelled before it started is in neither histogram.
	wantSeries(t, m, "ward_task_wait_seconds", "function=a,project=p count=4 sum=4")
	wantSeries(t, m, "ward_task_run_seconds", "function=a,project=p count=4 sum=2.75")
}

func TestRequestsAndColdStarts(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	m.Request("POST /v1/projects/{p}/tasks", http.StatusAccepted, 10*time.Millisecond)
	m.Request("POST /v1/projects/{p}/tasks", http.StatusAccepted, 30*time.Millisecond)
	m.Request("POST /v1/projects/{p}/tasks", http.StatusTooManyRequests, 0)
	m.Request("", http.StatusNotFound, 0)
	m.ColdStart(ward.RuntimeWasm, 2*time.Second)
	m.ColdStart(ward.RuntimeOCI, time.Second)
	m.ColdStart(ward.RuntimeOCI, 3*time.Second)
	wantSeries(t, m, "ward_api_requests_total",
		"route=POST /v1/projects/{p}/tasks,status=202 2",
		"route=POST /v1/projects/{p}/tasks,status=429 1",
		"route=unmatched,status=404 1")
	wantSeries(t, m, "ward_api_request_duration_seconds",
		"route=POST /v1/projects/{p}/tasks count=3 sum=0.04",
		"route=unmatched count=1 sum=0")
	wantSeries(t, m, "ward_sandbox_cold_starts_total", "runtime=oci 2", "runtime=wasm 1")
	wantSeries(t, m, "ward_sandbox_prepare_seconds", "runtime=oci count=2 sum=4", "runtime=wasm count=1 sum=2")
}

func TestStatusLabel(t *testing.T) {
	t.Parallel()
	for _, s := range []int{200, 201, 202, 204, 400, 401, 403, 404, 413, 429, 500, 503} {
		if got := statusLabel(s); got != fmt.Sprint(s) {
			t.Errorf("statusLabel(%d) = %q", s, got)
		}
	}
}

// TestCodeLabels: error codes become labels only in code shape, and only
// up to maxCodes distinct ones; anything else is "other".
func TestCodeLabels(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	m.Finished("p", "f", ward.StatusFailed, "Not A Code", 0, 0)
	m.Finished("p", "f", ward.StatusFailed, ward.Code(strings.Repeat("x", 65)), 0, 0)
	for i := range maxCodes + 10 {
		m.Finished("p", "f", ward.StatusFailed, ward.Code(fmt.Sprintf("code_%d", i)), 0, 0)
	}
	codes := map[string]bool{}
	for _, s := range series(t, m, "ward_tasks_finished_total") {
		_, rest, _ := strings.Cut(s, "code=")
		code, _, _ := strings.Cut(rest, ",")
		codes[code] = true
	}
	if len(codes) != maxCodes+1 || !codes["other"] || !codes["code_0"] || codes[fmt.Sprintf("code_%d", maxCodes)] {
		t.Fatalf("%d code labels (other: %v)", len(codes), codes["other"])
	}
	// A code seen before the cap keeps its label after it.
	m.Rejected("p", "f", "code_1")
	wantSeries(t, m, "ward_limit_rejections_total", "function=f,limit=code_1,project=p 1")
}

func FuzzCodeLabel(f *testing.F) {
	for _, s := range []string{"", "exit_status", "EXIT", "a b", "é", strings.Repeat("a", 70), "t_0123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s := labelSet{max: 2}
		for _, w := range []string{v, "a", "b", "c", v} {
			got := s.label(w)
			if got != w && got != "other" {
				t.Fatalf("label(%q) = %q", w, got)
			}
			if got == w && !codeShaped(w) {
				t.Fatalf("label(%q) kept a value not in code shape", w)
			}
		}
		if n := s.n.Load(); n > 2 {
			t.Fatalf("%d values admitted, max 2", n)
		}
	})
}

// counter is a TaskCounter with a settable answer that counts its reads.
type counter struct {
	reads  atomic.Int64
	mu     sync.Mutex
	counts []store.TaskCount
	err    error
	at     time.Time // Now of the last read
}

func (c *counter) TaskCounts(_ context.Context, p *store.TaskCountsParams) ([]store.TaskCount, error) {
	c.reads.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = p.Now
	return c.counts, c.err
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestStoreGauges: the store's counts become gauges; one read serves the
// scrapes within CountsMaxAge; a failed read leaves the gauges out and is
// counted.
func TestStoreGauges(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	src := &counter{counts: []store.TaskCount{
		{Project: "p", Function: "a", Due: 7, Delayed: 2, Running: 3},
		{Project: "p", Function: "idle"},
	}}
	m := New(Options{Counts: src, Now: clk.now, CountsMaxAge: 5 * time.Second})
	wantSeries(t, m, "ward_queue_depth", "function=a,project=p 7", "function=idle,project=p 0")
	wantSeries(t, m, "ward_tasks_delayed", "function=a,project=p 2", "function=idle,project=p 0")
	wantSeries(t, m, "ward_tasks_running", "function=a,project=p 3", "function=idle,project=p 0")
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("%d reads for three scrapes within the max age", n)
	}
	if !src.at.Equal(clk.now()) {
		t.Errorf("read at %v, want the clock's %v", src.at, clk.now())
	}

	clk.add(5 * time.Second)
	src.mu.Lock()
	src.counts = []store.TaskCount{{Project: "p", Function: "a", Due: 1}}
	src.mu.Unlock()
	wantSeries(t, m, "ward_queue_depth", "function=a,project=p 1")
	if n := src.reads.Load(); n != 2 {
		t.Fatalf("%d reads, want a second once the first is too old", n)
	}

	clk.add(5 * time.Second)
	src.mu.Lock()
	src.err = errors.New("store down")
	src.mu.Unlock()
	wantSeries(t, m, "ward_queue_depth")
	wantSeries(t, m, "ward_metrics_store_errors_total", " 2") // one read per scrape while failing
}

// TestStoreGaugesConcurrentScrapes: scrapes at once share one read.
func TestStoreGaugesConcurrentScrapes(t *testing.T) {
	t.Parallel()
	src := &counter{counts: []store.TaskCount{{Project: "p", Function: "a", Due: 1}}}
	m := New(Options{Counts: src, CountsMaxAge: time.Hour})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := m.Gatherer().Gather(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("%d reads for concurrent scrapes", n)
	}
}

type fakeRunner struct {
	id string
	st runner.Stats
}

func (f fakeRunner) ID() string          { return f.id }
func (f fakeRunner) Stats() runner.Stats { return f.st }

func TestRunnerGauges(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	wantSeries(t, m, "ward_runner_slots")
	m.WatchRunner(fakeRunner{"r_1", runner.Stats{MemoryBudgetMB: 1024, MemoryInUseMB: 96, Slots: 8, FreeSlots: 5}})
	m.WatchRunner(fakeRunner{"r_2", runner.Stats{MemoryBudgetMB: 2, Slots: 1, FreeSlots: 1}})
	wantSeries(t, m, "ward_runner_memory_budget_bytes", "runner=r_1 1.073741824e+09", "runner=r_2 2.097152e+06")
	wantSeries(t, m, "ward_runner_memory_in_use_bytes", "runner=r_1 1.00663296e+08", "runner=r_2 0")
	wantSeries(t, m, "ward_runner_slots", "runner=r_1 8", "runner=r_2 1")
	wantSeries(t, m, "ward_runner_free_slots", "runner=r_1 5", "runner=r_2 1")
}

// TestHandler: the handler's answer parses with the Prometheus text parser
// and holds the figures, the Go runtime's included.
func TestHandler(t *testing.T) {
	t.Parallel()
	m := New(Options{Counts: &counter{counts: []store.TaskCount{{Project: "p", Function: "a", Due: 4}}}})
	m.Finished("p", "a", ward.StatusSucceeded, "", 3*time.Millisecond, time.Hour)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if f := fams["ward_queue_depth"]; f == nil || f.GetMetric()[0].GetGauge().GetValue() != 4 {
		t.Errorf("queue depth: %v", f)
	}
	h := fams["ward_task_run_seconds"].GetMetric()[0].GetHistogram()
	// An hour falls in the last finite bucket.
	for _, b := range h.GetBucket() {
		if want := uint64(0); b.GetUpperBound() < 3600 && b.GetCumulativeCount() != want {
			t.Errorf("bucket ≤ %gs holds %d", b.GetUpperBound(), b.GetCumulativeCount())
		}
		if b.GetUpperBound() == 3600 && b.GetCumulativeCount() != 1 {
			t.Errorf("the hour bucket holds %d", b.GetCumulativeCount())
		}
	}
	if fams["go_goroutines"] == nil {
		t.Error("no Go runtime metrics")
	}
}

func TestBuckets(t *testing.T) {
	t.Parallel()
	for name, b := range map[string][]float64{"task": taskBuckets, "request": requestBuckets, "prepare": prepareBuckets} {
		for i := 1; i < len(b); i++ {
			if b[i] <= b[i-1] {
				t.Errorf("%s buckets not strictly increasing: %v", name, b)
			}
		}
	}
	if taskBuckets[0] > .001 || taskBuckets[len(taskBuckets)-1] < 3600 {
		t.Errorf("task buckets %v do not span a millisecond to an hour", taskBuckets)
	}
}

// slowCounter takes at least delay per read.
type slowCounter struct {
	counter
	delay time.Duration
}

func (c *slowCounter) TaskCounts(ctx context.Context, p *store.TaskCountsParams) ([]store.TaskCount, error) {
	time.Sleep(c.delay)
	return c.counter.TaskCounts(ctx, p)
}

// TestSlowStoreReadLessOften: a read that takes d serves the scrapes for
// twenty times d, however short CountsMaxAge is.
func TestSlowStoreReadLessOften(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	src := &slowCounter{delay: 10 * time.Millisecond}
	m := New(Options{Counts: src, Now: clk.now, CountsMaxAge: time.Nanosecond})
	series(t, m, "ward_queue_depth")
	clk.add(100 * time.Millisecond) // under 20 × 10ms
	series(t, m, "ward_queue_depth")
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("%d reads within twenty times a slow read's duration", n)
	}
	clk.add(time.Hour)
	series(t, m, "ward_queue_depth")
	if n := src.reads.Load(); n != 2 {
		t.Fatalf("%d reads, want a second an hour later", n)
	}
}

// TestCountsShared: Metrics.Counts is the gauges' cache: a Read and the
// scrapes within CountsMaxAge share one store read, and a Read whose
// context is already cancelled still reads (others may wait on it).
func TestCountsShared(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	src := &counter{counts: []store.TaskCount{{Project: "p", Function: "a", Due: 2, Running: 1}}}
	m := New(Options{Counts: src, Now: clk.now, CountsMaxAge: time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got, err := m.Counts().Read(ctx)
	if err != nil || len(got) != 1 || got[0].Due != 2 {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	wantSeries(t, m, "ward_queue_depth", "function=a,project=p 2")
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("%d store reads for a Read and a scrape within the max age", n)
	}
	clk.add(time.Second)
	src.mu.Lock()
	src.err = errors.New("store down")
	src.mu.Unlock()
	if _, err := m.Counts().Read(t.Context()); err == nil {
		t.Error("a failed read returned no error")
	}
	wantSeries(t, m, "ward_metrics_store_errors_total", " 2") // the Read's failure and the scrape's
	if New(Options{}).Counts() != nil {
		t.Error("Metrics without a counts source has a Counts")
	}
}
