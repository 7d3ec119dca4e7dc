package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/sandbox/sandboxtest"
	"github.com/wardhq/ward/internal/server"
)

// scrape is one parsed /metrics answer.
type scrape map[string]*dto.MetricFamily

// getMetrics scrapes url with token ("" for none) and parses the answer
// with the Prometheus text parser; a status other than 200 is returned as
// it is, with no families.
func getMetrics(t *testing.T, url, token string) (scrape, int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, res.StatusCode
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams, http.StatusOK
}

// metric returns the metric of family name whose labels include want
// ("name=value" pairs).
func (s scrape) metric(name string, want ...string) (*dto.Metric, bool) {
	f := s[name]
	if f == nil {
		return nil, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for _, w := range want {
			k, v, _ := strings.Cut(w, "=")
			if have[k] != v {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// value is a counter's or gauge's value; a series not there is 0.
func (s scrape) value(name string, labels ...string) float64 {
	m, ok := s.metric(name, labels...)
	if !ok {
		return 0
	}
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// want checks a counter's or gauge's value.
func (s scrape) want(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	if got := s.value(name, labels...); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// TestMetricsUnderKnownLoad drives a node into a known state — two tasks
// that never end hold both runner slots while tasks of two functions wait
// in the queue and more are delayed — scrapes /metrics and checks the queue
// depth, running and runner figures, the counters and, once the queue has
// drained, the finished counts and the wait histogram.
func TestMetricsUnderKnownLoad(t *testing.T) {
	t.Parallel()
	const budgetMB = 512
	n := startNode(t, t.TempDir(), server.Config{ShutdownGrace: time.Second, Slots: 2, MemoryBudgetMB: budgetMB, MetricsAddr: "127.0.0.1:0"})
	ctx := context.Background()
	p := ward.DefaultProject
	admin, _, err := n.srv.AdminToken(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	url := n.srv.URL() + "/metrics"

	// Functions: spin never ends (two at most at once), echo succeeds,
	// fail exits 3 and is not retried.
	deploy := func(name, module string, spec ward.FunctionSpec) ward.Function {
		t.Helper()
		f, err := n.cl.PutFunction(ctx, p, name, spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.cl.UploadCode(ctx, p, name, sandboxtest.Module(module)); err != nil {
			t.Fatal(err)
		}
		return f
	}
	spin := deploy("spin", "loop", ward.FunctionSpec{Limits: ward.Limits{MaxConcurrency: 2, TimeoutS: 300}})
	deploy("echo", "echo", ward.FunctionSpec{})
	deploy("fail", "exit3", ward.FunctionSpec{Retries: ward.Retries{MaxAttempts: 1}})

	var ids []string
	var spinIDs []string
	for range 2 {
		tk, err := n.cl.Submit(ctx, p, ward.SubmitRequest{Function: "spin"})
		if err != nil {
			t.Fatal(err)
		}
		spinIDs = append(spinIDs, tk.ID)
	}
	for _, id := range spinIDs {
		awaitStatus(t, n.cl, id, ward.StatusRunning)
	}
	// The function is at its max_concurrency: an invoke is refused.
	if _, err := n.cl.Invoke(ctx, p, "spin", []byte("{}")); ward.CodeOf(err) != ward.CodeFunctionBusy {
		t.Fatalf("invoke of a busy function: %v", err)
	}

	// Both slots are taken: what is submitted now waits.
	const echoes, fails, delayed = 5, 2, 3
	var reqs []ward.SubmitRequest
	for range echoes {
		reqs = append(reqs, ward.SubmitRequest{Function: "echo", Payload: []byte(`{"secret":"never a label"}`)})
	}
	for range fails {
		reqs = append(reqs, ward.SubmitRequest{Function: "fail"})
	}
	for range delayed {
		reqs = append(reqs, ward.SubmitRequest{Function: "echo", DelayS: 3600})
	}
	tasks, err := n.cl.SubmitBatch(ctx, p, reqs)
	if err != nil {
		t.Fatal(err)
	}
	heldFrom := time.Now() // every task of the batch was due by now
	for _, tk := range tasks[:echoes+fails] {
		ids = append(ids, tk.ID)
	}

	s, status := getMetrics(t, url, admin)
	if status != http.StatusOK {
		t.Fatalf("admin scrape: %d", status)
	}
	fn := func(name string) []string { return []string{"project=" + p, "function=" + name} }
	s.want(t, echoes, "ward_queue_depth", fn("echo")...)
	s.want(t, fails, "ward_queue_depth", fn("fail")...)
	s.want(t, 0, "ward_queue_depth", fn("spin")...)
	s.want(t, delayed, "ward_tasks_delayed", fn("echo")...)
	s.want(t, 2, "ward_tasks_running", fn("spin")...)
	s.want(t, 0, "ward_tasks_running", fn("echo")...)
	s.want(t, echoes+delayed, "ward_tasks_submitted_total", fn("echo")...)
	s.want(t, fails, "ward_tasks_submitted_total", fn("fail")...)
	s.want(t, 2, "ward_tasks_submitted_total", fn("spin")...)
	s.want(t, 1, "ward_limit_rejections_total", append(fn("spin"), "limit=function_concurrency")...)
	s.want(t, 2, "ward_api_requests_total", "route=POST /v1/projects/{p}/tasks", "status=202")
	s.want(t, 1, "ward_api_requests_total", "route=POST /v1/projects/{p}/tasks/batch", "status=202")
	s.want(t, 1, "ward_api_requests_total", "route=POST /v1/projects/{p}/functions/{fn}/invoke", "status=429")
	s.want(t, budgetMB<<20, "ward_runner_memory_budget_bytes", "runner="+n.srv.Runner.ID())
	s.want(t, float64(2*spin.Spec.Limits.MemoryMB<<20), "ward_runner_memory_in_use_bytes", "runner="+n.srv.Runner.ID())
	s.want(t, 2, "ward_runner_slots")
	s.want(t, 0, "ward_runner_free_slots")
	if _, ok := s.metric("ward_tasks_finished_total"); ok {
		t.Error("a task finished before any could run")
	}
	if m, ok := s.metric("ward_api_request_duration_seconds", "route=POST /v1/projects/{p}/tasks"); !ok || m.GetHistogram().GetSampleCount() != 2 {
		t.Errorf("submit route latency: %v", m)
	}

	// Free the slots: the waiting tasks run.
	releasedAt := time.Now()
	for _, id := range spinIDs {
		if _, err := n.cl.CancelTask(ctx, p, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if _, err := n.cl.AwaitTask(ctx, p, id); err != nil {
			t.Fatal(err)
		}
	}
	doneBy := time.Now()
	// The store's figures are read at most every few seconds: wait for a
	// scrape that shows the queue drained.
	for deadline := time.Now().Add(time.Minute); ; {
		s, _ = getMetrics(t, url, admin)
		if s.value("ward_queue_depth", fn("echo")...) == 0 && s.value("ward_tasks_running", fn("spin")...) == 0 &&
			s.value("ward_runner_free_slots") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue never drained in the metrics: depth %v, running %v, free slots %v",
				s.value("ward_queue_depth", fn("echo")...), s.value("ward_tasks_running", fn("spin")...), s.value("ward_runner_free_slots"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.want(t, 0, "ward_queue_depth", fn("fail")...)
	s.want(t, delayed, "ward_tasks_delayed", fn("echo")...)
	s.want(t, 0, "ward_runner_memory_in_use_bytes")
	s.want(t, echoes, "ward_tasks_finished_total", append(fn("echo"), "status=succeeded", "code=")...)
	s.want(t, fails, "ward_tasks_finished_total", append(fn("fail"), "status=failed", "code=exit_status")...)
	s.want(t, 1, "ward_api_requests_total", "route=POST /v1/projects/{p}/tasks/batch", "status=202")

	// Each echo task waited at least from heldFrom to releasedAt, and at
	// most from its submission to doneBy.
	w, ok := s.metric("ward_task_wait_seconds", fn("echo")...)
	if !ok {
		t.Fatal("no wait histogram of echo")
	}
	h := w.GetHistogram()
	if h.GetSampleCount() != echoes {
		t.Errorf("echo waits counted %d, want %d", h.GetSampleCount(), echoes)
	}
	lo, hi := echoes*releasedAt.Sub(heldFrom).Seconds(), echoes*doneBy.Sub(tasks[0].CreatedAt).Seconds()
	if sum := h.GetSampleSum(); sum < lo || sum > hi {
		t.Errorf("echo waits add up to %.3fs, want between %.3fs and %.3fs", sum, lo, hi)
	}
	if r, ok := s.metric("ward_task_run_seconds", fn("fail")...); !ok || r.GetHistogram().GetSampleCount() != fails {
		t.Errorf("fail run histogram: %v", r)
	}

	// No label value is a task ID, nor anything of a payload.
	for name, f := range s {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.HasPrefix(lp.GetValue(), "t_") || strings.Contains(lp.GetValue(), "secret") {
					t.Errorf("%s has label %s=%q", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}

	// The plain listener serves the same metrics without a token.
	plain, status := getMetrics(t, n.srv.MetricsURL(), "")
	if status != http.StatusOK {
		t.Fatalf("plain listener: %d", status)
	}
	plain.want(t, echoes, "ward_tasks_finished_total", append(fn("echo"), "status=succeeded", "code=")...)
}

// TestMetricsNeedAdmin: project tokens get 403 on /metrics, no token 401;
// they read their project's stats instead.
func TestMetricsNeedAdmin(t *testing.T) {
	t.Parallel()
	n := startNode(t, t.TempDir(), server.Config{ShutdownGrace: time.Second, NoRunner: true})
	ctx := context.Background()
	url := n.srv.URL() + "/metrics"
	if _, err := n.cl.PutFunction(ctx, ward.DefaultProject, "echo", ward.FunctionSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.UploadCode(ctx, ward.DefaultProject, "echo", sandboxtest.Module("echo")); err != nil {
		t.Fatal(err)
	}
	// No runner: both stay queued.
	if _, err := n.cl.SubmitBatch(ctx, ward.DefaultProject, []ward.SubmitRequest{{Function: "echo"}, {Function: "echo"}}); err != nil {
		t.Fatal(err)
	}
	for _, role := range []ward.Role{ward.RoleViewer, ward.RoleDeveloper, ward.RoleOwner} {
		tr, err := n.cl.CreateToken(ctx, ward.DefaultProject, ward.CreateTokenRequest{Role: role})
		if err != nil {
			t.Fatal(err)
		}
		if _, status := getMetrics(t, url, tr.Token); status != http.StatusForbidden {
			t.Errorf("%s token: %d, want 403", role, status)
		}
		cl, err := client.New(n.srv.URL(), tr.Token)
		if err != nil {
			t.Fatal(err)
		}
		st, err := cl.Stats(ctx, ward.DefaultProject, client.StatsOptions{Window: time.Hour})
		if err != nil {
			t.Fatalf("%s token's stats: %v", role, err)
		}
		if len(st.Functions) != 1 || st.Functions[0].Function != "echo" || st.Total.Queued != 2 || st.Total.Submitted != 2 || st.WindowS != 3600 {
			t.Errorf("%s token's stats = %+v", role, st)
		}
	}
	if _, status := getMetrics(t, url, ""); status != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", status)
	}
	if n.srv.MetricsURL() != "" {
		t.Error("a plain metrics listener without MetricsAddr")
	}
	// Without a runner there is no runner figure, and the store's are there.
	admin, _, err := n.srv.AdminToken(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	s, status := getMetrics(t, url, admin)
	if status != http.StatusOK {
		t.Fatalf("admin: %d", status)
	}
	if _, ok := s["ward_runner_slots"]; ok {
		t.Error("runner figures without a runner")
	}
	if _, ok := s["ward_metrics_store_errors_total"]; !ok {
		t.Error("no store error counter")
	}
}

// awaitStatus polls a task until it has status; the node's runner gets to
// it within the poll's bounds or the test fails.
func awaitStatus(t *testing.T, cl *client.Client, id string, want ward.Status) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(time.Minute); ; {
		tk, err := cl.GetTask(ctx, ward.DefaultProject, id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status == want {
			return
		}
		if tk.Status.Terminal() {
			t.Fatalf("task %s is %s (%v), want %s", id, tk.Status, tk.Error, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still %s, want %s", id, tk.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
