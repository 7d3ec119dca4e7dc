package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/server"
)

// hookReceiver is a webhook endpoint that checks each delivery as
// docs/api.md tells receivers to: the Ward-Signature header's timestamp is
// within five minutes, and its v1 is the HMAC-SHA256 of "<t>.<body>" under
// the rule's secret. It answers the statuses of script first, then 200.
type hookReceiver struct {
	t      *testing.T
	mu     sync.Mutex
	secret string
	script []int
	got    []ward.AlertNotification
	bad    []string
	notify chan struct{}
	srv    *httptest.Server
}

func newHookReceiver(t *testing.T, secret string, script ...int) *hookReceiver {
	h := &hookReceiver{t: t, secret: secret, script: script, notify: make(chan struct{}, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) setSecret(s string) {
	h.mu.Lock()
	h.secret = s
	h.mu.Unlock()
}

// verify checks a signature the way a receiver written from the docs does.
func verifySignature(secret, header string, body []byte, now time.Time) bool {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(sig), []byte(want))
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		!verifySignature(h.secret, r.Header.Get(ward.SignatureHeader), body, time.Now()) {
		h.bad = append(h.bad, r.Header.Get(ward.SignatureHeader))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if len(h.script) > 0 {
		w.WriteHeader(h.script[0])
		h.script = h.script[1:]
		return
	}
	var n ward.AlertNotification
	if err := json.Unmarshal(body, &n); err != nil {
		h.bad = append(h.bad, "body: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.got = append(h.got, n)
	h.notify <- struct{}{}
}

// await waits until the receiver got a notification of state, and returns
// the states it got so far.
func (h *hookReceiver) await(state ward.AlertState) []ward.AlertState {
	h.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		h.mu.Lock()
		var states []ward.AlertState
		for _, n := range h.got {
			states = append(states, n.State)
		}
		bad := h.bad
		h.mu.Unlock()
		if len(bad) > 0 {
			h.t.Fatalf("deliveries failed verification: %q", bad)
		}
		for _, s := range states {
			if s == state {
				return states
			}
		}
		select {
		case <-h.notify:
		case <-deadline:
			h.t.Fatalf("no %s notification; got %v", state, states)
		}
	}
}

// An alert rule on queue depth fires once tasks pile up with no runner to
// take them and resolves once the queue drains; every webhook is signed. A
// receiver answering 500 gets the webhook again, and one that hangs holds
// up neither the server nor the evaluation of other rules.
func TestAlertsEndToEnd(t *testing.T) {
	t.Parallel()
	n := startNode(t, t.TempDir(), server.Config{NoRunner: true, AlertInterval: 200 * time.Millisecond, AlertTimeout: time.Second})
	ctx := context.Background()
	p := ward.DefaultProject
	deployEcho(t, n.cl, "slow")

	// A receiver that hangs until the test ends, with a rule that fires at
	// once: its deliveries time out, in the background.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	if _, _, err := n.cl.PutAlert(ctx, p, "hangs", ward.AlertRule{AlertSpec: ward.AlertSpec{Metric: ward.MetricRunning, Op: ward.OpGE, Threshold: 0, For: "200ms", Webhook: hang.URL}}); err != nil {
		t.Fatal(err)
	}

	// Queue depth over 2 for 1s.
	deep := newHookReceiver(t, "")
	resp, created, err := n.cl.PutAlert(ctx, p, "deep", ward.AlertRule{AlertSpec: ward.AlertSpec{Metric: ward.MetricQueueDepth, Function: "slow", Threshold: 2, For: "1s", Webhook: deep.srv.URL}})
	if err != nil || !created || resp.Secret == "" || resp.Op != ward.OpGT {
		t.Fatalf("PutAlert = %+v, %v, %v", resp, created, err)
	}
	deep.setSecret(resp.Secret)
	var ids []string
	for range 3 {
		tk, err := n.cl.Submit(ctx, p, ward.SubmitRequest{Function: "slow", Payload: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	states := deep.await(ward.AlertFiring)
	if len(states) != 2 || states[0] != ward.AlertPending {
		t.Fatalf("before firing the receiver got %v, want pending then firing", states)
	}
	deep.mu.Lock()
	fired := deep.got[1]
	deep.mu.Unlock()
	if fired.Alert != "deep" || fired.Project != p || fired.Function != "slow" || fired.Metric != ward.MetricQueueDepth || fired.Value != 3 || fired.Threshold != 2 {
		t.Fatalf("firing notification = %+v", fired)
	}
	// Drain the queue.
	for _, id := range ids {
		if _, err := n.cl.CancelTask(ctx, p, id); err != nil {
			t.Fatal(err)
		}
	}
	states = deep.await(ward.AlertResolved)
	if want := []ward.AlertState{ward.AlertPending, ward.AlertFiring, ward.AlertResolved}; strings.Join(stateStrings(states), " ") != strings.Join(stateStrings(want), " ") {
		t.Fatalf("the receiver got %v, want %v", states, want)
	}

	// 500, then 200: delivered on the second attempt; the history shows both.
	const secret = "retry-receiver-secret-0"
	flaky := newHookReceiver(t, secret, http.StatusInternalServerError)
	if _, _, err := n.cl.PutAlert(ctx, p, "flaky", ward.AlertRule{AlertSpec: ward.AlertSpec{Metric: ward.MetricRunning, Op: ward.OpGE, Threshold: 0, For: "1h", Webhook: flaky.srv.URL}, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	flaky.await(ward.AlertPending)
	hist := awaitHistory(t, n, "flaky", func(evs []ward.AlertEvent) bool { return len(deliveries(evs)) >= 2 })
	ds := deliveries(hist)
	if ds[1].Attempt != 1 || ds[1].StatusCode != 500 || ds[1].Error == "" || ds[0].Attempt != 2 || ds[0].StatusCode != 200 || ds[0].Error != "" {
		t.Fatalf("flaky deliveries (newest first) = %+v", ds)
	}

	// The hanging receiver's attempts time out; meanwhile the server
	// answered everything above, and answers now, promptly.
	hist = awaitHistory(t, n, "hangs", func(evs []ward.AlertEvent) bool { return len(deliveries(evs)) >= 1 })
	if d := deliveries(hist)[0]; d.Error != "timeout" || d.StatusCode != 0 {
		t.Fatalf("a hanging receiver's delivery = %+v", d)
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := n.cl.ListAlerts(qctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ward.AlertState{}
	for _, a := range list {
		got[a.Name] = a.State
	}
	if got["hangs"] != ward.AlertFiring || got[ward.BuiltinSubmitSurge] != ward.AlertOK || len(list) != 4 {
		t.Fatalf("alerts = %v", got)
	}
}

func stateStrings(ss []ward.AlertState) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func deliveries(evs []ward.AlertEvent) []ward.AlertEvent {
	var out []ward.AlertEvent
	for _, ev := range evs {
		if ev.Kind == ward.EventDelivery {
			out = append(out, ev)
		}
	}
	return out
}

// awaitHistory polls a rule's history until ok holds.
func awaitHistory(t *testing.T, n *node, name string, ok func([]ward.AlertEvent) bool) []ward.AlertEvent {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs, err := n.cl.AlertHistory(context.Background(), ward.DefaultProject, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ok(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("history of %s: %+v", name, evs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
