package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// SurgeEvery is how often the builtin rule is evaluated (its figures read
// up to SurgeLimit tasks per project).
const (
	SurgeEvery = 30 * time.Second
	SurgeLimit = 100_000
)

// evaluateSurge evaluates every project's builtin submit-surge rule, at
// most every SurgeEvery.
func (e *Evaluator) evaluateSurge(ctx context.Context, now time.Time) ([]store.AlertStateUpdate, error) {
	projects, err := e.st.ListProjects(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.AlertStateUpdate
	for _, p := range projects {
		e.mu.Lock()
		cur, ok := e.surge[p.Name]
		e.mu.Unlock()
		if !ok {
			if cur, err = e.st.GetAlertState(ctx, p.Name, ward.BuiltinSubmitSurge); err != nil {
				return out, err
			}
		}
		if cur.Found && now.Sub(cur.EvaluatedAt) < SurgeEvery && now.After(cur.EvaluatedAt) {
			continue
		}
		last, err := store.Window(ctx, e.st, &store.TaskWindowParams{Project: p.Name, Since: now.Add(-time.Minute), Until: now, Limit: SurgeLimit, SubmittedOnly: true})
		if err != nil {
			return out, err
		}
		base, err := store.Window(ctx, e.st, &store.TaskWindowParams{Project: p.Name, Since: now.Add(-time.Minute - SurgeBaseline), Until: now.Add(-time.Minute), Limit: SurgeLimit, SubmittedOnly: true})
		if err != nil {
			return out, err
		}
		u := transition(p.Name, ward.BuiltinSubmitSurge, cur, Surging(last.Submitted, base.Submitted), 0, float64(last.Submitted), now)
		out = append(out, u)
	}
	return out, nil
}

// Surging reports whether last (the last minute's submissions) is a surge
// over baseline (the SurgeBaseline's before it): over SurgeFloor and over
// SurgeFactor times baseline's per-minute average.
func Surging(last, baseline int) bool {
	perMinute := float64(baseline) / SurgeBaseline.Minutes()
	return last > SurgeFloor && float64(last) > SurgeFactor*perMinute
}

// surgeChanged logs a change of a builtin rule and tells OnSurge.
func (e *Evaluator) surgeChanged(ctx context.Context, u store.AlertStateUpdate) {
	lvl := e.log.Info
	if u.State == ward.AlertFiring {
		lvl = e.log.Warn
	}
	lvl("submission surge", "project", u.Project, "alert", u.Name, "state", u.State, "submitted_last_minute", u.Value)
	if e.onSurge != nil {
		e.onSurge(ctx, ward.AlertNotification{Alert: u.Name, Project: u.Project, Metric: ward.MetricSubmitRate, Op: ward.OpGT,
			Value: u.Value, Threshold: SurgeFloor, State: u.State, At: u.EvaluatedAt.UTC()})
	}
}

// delivery is one webhook to send.
type delivery struct {
	rule store.AlertRecord
	n    ward.AlertNotification
}

// enqueue hands a delivery to the workers without waiting; a full queue
// drops it, and the drop is recorded in the rule's history.
func (e *Evaluator) enqueue(ctx context.Context, d delivery) {
	select {
	case e.queue <- d:
	default:
		e.log.Warn("alert webhook queue full; delivery dropped", "project", d.rule.Project, "alert", d.rule.Name, "state", d.n.State)
		e.record(ctx, d, ward.AlertEvent{At: e.now(), Kind: ward.EventDelivery, State: d.n.State, Value: d.n.Value, Error: "delivery queue full"})
	}
}

// deliverLoop delivers queued webhooks until ctx ends.
func (e *Evaluator) deliverLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-e.queue:
			e.deliver(ctx, d)
		}
	}
}

// deliver sends one webhook, retrying a failed attempt (no answer, or an
// answer other than 2xx) after Backoff, then twice that, and so on, up to
// Attempts; each attempt is recorded in the rule's history.
func (e *Evaluator) deliver(ctx context.Context, d delivery) {
	body, err := json.Marshal(d.n)
	if err != nil {
		e.log.Error("alert webhook body", "err", err)
		return
	}
	wait := e.backoff
	for attempt := 1; attempt <= e.attempts; attempt++ {
		start := time.Now()
		status, err := e.post(ctx, d.rule.Webhook, d.rule.Secret, body)
		ev := ward.AlertEvent{At: e.now(), Kind: ward.EventDelivery, State: d.n.State, Value: d.n.Value, Attempt: attempt,
			StatusCode: status, DurationMs: time.Since(start).Milliseconds()}
		if err != nil {
			ev.Error = describe(err)
		} else if status < 200 || status > 299 {
			ev.Error = fmt.Sprintf("answered %d", status)
		}
		if ctx.Err() != nil {
			return
		}
		e.record(ctx, d, ev)
		if ev.Error == "" {
			return
		}
		if attempt == e.attempts {
			e.log.Warn("alert webhook not delivered", "project", d.rule.Project, "alert", d.rule.Name, "state", d.n.State, "attempts", attempt, "err", ev.Error)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait *= 2
	}
}

// post sends one signed attempt and returns the status answered.
func (e *Evaluator) post(ctx context.Context, webhook string, secret, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ward-alerts/"+ward.Version())
	req.Header.Set(ward.SignatureHeader, Sign(secret, e.now(), body))
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

// describe is an attempt's error for the history: what went wrong, without
// the URL (which the rule shows anyway) or anything the receiver sent.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// record appends a delivery event to the rule's history; a rule deleted
// meanwhile has none.
func (e *Evaluator) record(ctx context.Context, d delivery, ev ward.AlertEvent) {
	err := e.st.AddAlertEvent(context.WithoutCancel(ctx), &store.AddAlertEventParams{Project: d.rule.Project, Name: d.rule.Name, Event: ev})
	if err != nil && !errors.Is(err, ward.ErrNotFound) {
		e.log.Warn("alert history", "project", d.rule.Project, "alert", d.rule.Name, "err", err)
	}
}
