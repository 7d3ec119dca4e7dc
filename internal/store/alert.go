package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wardhq/ward"
)

// AlertStore keeps alert rules, their state and their history, the task
// figures over a window that rules watch, and the lock that lets one
// server of a cluster evaluate them. A rule's signing secret is what the
// store keeps (the sealed adapter hands it an envelope); views that list
// rules for people (ward.Alert) never carry it.
type AlertStore interface {
	// PutAlert creates or replaces a rule. With KeepSecret an existing
	// rule keeps its secret and Secret is used only on create. The project
	// must exist (not_found).
	PutAlert(ctx context.Context, p *PutAlertParams) (PutAlertResult, error)
	// GetAlert returns one rule with its state and secret; a missing one →
	// not_found.
	GetAlert(ctx context.Context, project, name string) (AlertRecord, error)
	// ListAlerts returns the rules of a project ("" = every project), by
	// project and name, with state and secrets.
	ListAlerts(ctx context.Context, project string) ([]AlertRecord, error)
	// CountAlerts returns how many rules a project has.
	CountAlerts(ctx context.Context, project string) (int, error)
	// DeleteAlert removes a rule with its state and history; a missing one
	// → not_found.
	DeleteAlert(ctx context.Context, project, name string) error
	// GetAlertState returns the state kept under a name; one never set is
	// ok, never evaluated (Found false).
	GetAlertState(ctx context.Context, project, name string) (AlertStateRecord, error)
	// SetAlertStates records evaluations in one transaction: each state is
	// upserted and its event, if any, appended to the history. A rule
	// deleted meanwhile (a name without a rule, other than a builtin one
	// starting with "builtin:") is skipped, as is a project gone.
	SetAlertStates(ctx context.Context, p *SetAlertStatesParams) error
	// AddAlertEvent appends one entry to a rule's history (a webhook
	// delivery attempt), keeping the newest ward.MaxAlertEvents. A rule
	// gone meanwhile → not_found.
	AddAlertEvent(ctx context.Context, p *AddAlertEventParams) error
	// ListAlertEvents returns a rule's history, newest first.
	ListAlertEvents(ctx context.Context, p *ListAlertEventsParams) ([]ward.AlertEvent, error)
	// TaskWindows returns figures of a project's tasks submitted and
	// finished in [Since, Until), by function, in one pass over the
	// window: each function with a task in it, in function order (with
	// Function set, that one only). Limit caps the submitted and the
	// finished tasks read in all, the newest kept. SumWindows adds them
	// up for the whole project.
	TaskWindows(ctx context.Context, p *TaskWindowParams) ([]FunctionWindow, error)
	// AcquireLock takes or renews a named lock for Holder until Now+TTL.
	// It succeeds when the lock is free, expired, or Holder's already.
	AcquireLock(ctx context.Context, p *AcquireLockParams) (bool, error)
}

// PutAlertParams creates or replaces a rule.
type PutAlertParams struct {
	Project    string
	Name       string
	Spec       ward.AlertSpec // checked by the caller
	ForMs      int64          // Spec.For, parsed
	Secret     []byte
	KeepSecret bool
	Now        time.Time
}

// PutAlertResult is the rule written and whether it was new.
type PutAlertResult struct {
	Alert   ward.Alert
	Created bool
}

// AlertRecord is a rule with what only the platform sees.
type AlertRecord struct {
	ward.Alert
	ForMs  int64
	Secret []byte
}

// For is the rule's for as a duration.
func (r *AlertRecord) For() time.Duration { return time.Duration(r.ForMs) * time.Millisecond }

// AlertStateRecord is a rule's kept state.
type AlertStateRecord struct {
	State       ward.AlertState
	Value       float64
	Since       time.Time // zero when never set
	EvaluatedAt time.Time
	Found       bool
}

// AlertStateUpdate is one rule's evaluation.
type AlertStateUpdate struct {
	Project     string
	Name        string
	State       ward.AlertState
	Since       time.Time
	Value       float64
	EvaluatedAt time.Time
	Event       *ward.AlertEvent // the state change, if any
}

// SetAlertStatesParams records evaluations.
type SetAlertStatesParams struct {
	States []AlertStateUpdate
}

// AddAlertEventParams appends one history entry.
type AddAlertEventParams struct {
	Project string
	Name    string
	Event   ward.AlertEvent
}

// ListAlertEventsParams selects a rule's newest history entries.
type ListAlertEventsParams struct {
	Project string
	Name    string
	Limit   int // 0 or more than ward.MaxAlertEvents = ward.MaxAlertEvents
}

// TaskWindowParams selects tasks of a project over a window.
type TaskWindowParams struct {
	Project  string
	Function string // optional
	Since    time.Time
	Until    time.Time
	Limit    int // caps the tasks read: 0 = DefaultWindowLimit
	// SubmittedOnly counts the submitted tasks only, reading no finished
	// ones.
	SubmittedOnly bool
}

// DefaultWindowLimit caps TaskWindows' reads when Limit is 0.
const DefaultWindowLimit = 100_000

// TaskWindow is what TaskWindows counts of one function, or SumWindows
// of several.
type TaskWindow struct {
	Submitted int // created in the window
	Finished  int // succeeded, failed or cancelled in the window
	Failed    int // failed in the window
	// Waits are the queue waits (started_at − run_at, at least 0) of
	// tasks finished in the window that started: of one function, newest
	// first.
	Waits []time.Duration
}

// Window reads TaskWindows and adds the functions up: the figures of the
// project, or of p.Function.
func Window(ctx context.Context, s AlertStore, p *TaskWindowParams) (TaskWindow, error) {
	ws, err := s.TaskWindows(ctx, p)
	if err != nil {
		return TaskWindow{}, err
	}
	return SumWindows(ws), nil
}

// SumWindows adds up the figures of several functions.
func SumWindows(ws []FunctionWindow) TaskWindow {
	var all TaskWindow
	for _, w := range ws {
		all.Submitted += w.Submitted
		all.Finished += w.Finished
		all.Failed += w.Failed
		all.Waits = append(all.Waits, w.Waits...)
	}
	return all
}

// FunctionWindow is one function's TaskWindow.
type FunctionWindow struct {
	Function string
	TaskWindow
}

// WindowsBuilder adds up the tasks an adapter reads for TaskWindows.
type WindowsBuilder struct{ m map[string]*FunctionWindow }

func (b *WindowsBuilder) function(name string) *FunctionWindow {
	if b.m == nil {
		b.m = map[string]*FunctionWindow{}
	}
	w := b.m[name]
	if w == nil {
		w = &FunctionWindow{Function: name}
		b.m[name] = w
	}
	return w
}

// Submitted counts n tasks of function created in the window.
func (b *WindowsBuilder) Submitted(function string, n int) { b.function(function).Submitted += n }

// Finished counts a task of function finished in the window with status,
// which started at started (nil: never started) and was due at runAt.
func (b *WindowsBuilder) Finished(function string, status ward.Status, started *time.Time, runAt time.Time) {
	w := b.function(function)
	w.Finished++
	if status == ward.StatusFailed {
		w.Failed++
	}
	if started != nil {
		w.Waits = append(w.Waits, max(0, started.Sub(runAt)))
	}
}

// Windows returns the figures by function, in function order.
func (b *WindowsBuilder) Windows() []FunctionWindow {
	out := make([]FunctionWindow, 0, len(b.m))
	for _, w := range b.m {
		out = append(out, *w)
	}
	slices.SortFunc(out, func(a, b FunctionWindow) int { return strings.Compare(a.Function, b.Function) })
	return out
}

// AcquireLockParams takes or renews a lock.
type AcquireLockParams struct {
	Name   string
	Holder string
	TTL    time.Duration
	Now    time.Time
}

// AlertNotFound is the error for a missing rule.
func AlertNotFound(name string) error {
	return ward.Errorf(ward.CodeNotFound, "alert %s not found", name)
}

// AlertCols are the columns ScanAlert reads, in order: a rule (alias r)
// left-joined with its state (alias s).
const AlertCols = `r.project, r.name, r.spec, r.for_ms, r.secret, r.created_at, r.updated_at,
	coalesce(s.state, 'ok'), coalesce(s.value, 0.0), s.since, s.evaluated_at`

// AlertFrom is the FROM clause of AlertCols.
const AlertFrom = ` FROM alert_rules r LEFT JOIN alert_states s ON s.project = r.project AND s.name = r.name`

// ScanAlert reads a row of AlertCols.
func ScanAlert(sc Scanner) (AlertRecord, error) {
	var (
		a                AlertRecord
		spec             string
		created, updated int64
		since, evaluated *int64
	)
	if err := sc.Scan(&a.Project, &a.Name, &spec, &a.ForMs, &a.Secret, &created, &updated,
		&a.State, &a.Value, &since, &evaluated); err != nil {
		return AlertRecord{}, err
	}
	if err := json.Unmarshal([]byte(spec), &a.AlertSpec); err != nil {
		return AlertRecord{}, fmt.Errorf("alert %s: decode spec: %w", a.Name, err)
	}
	a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
	if since != nil {
		t := fromMicros(*since)
		a.Since = &t
	}
	if evaluated != nil {
		t := fromMicros(*evaluated)
		a.EvaluatedAt = &t
	}
	return a, nil
}

// AlertStateCols are the columns ScanAlertState reads, in order.
const AlertStateCols = `state, value, since, evaluated_at`

// ScanAlertState reads a row of AlertStateCols.
func ScanAlertState(sc Scanner) (AlertStateRecord, error) {
	var st AlertStateRecord
	var since, evaluated int64
	if err := sc.Scan(&st.State, &st.Value, &since, &evaluated); err != nil {
		return AlertStateRecord{}, err
	}
	st.Since, st.EvaluatedAt, st.Found = fromMicros(since), fromMicros(evaluated), true
	return st, nil
}

// AlertEventCols are the columns ScanAlertEvent reads, in order.
const AlertEventCols = `at, kind, state, value, attempt, status_code, error, duration_ms`

// ScanAlertEvent reads a row of AlertEventCols.
func ScanAlertEvent(sc Scanner) (ward.AlertEvent, error) {
	var ev ward.AlertEvent
	var at int64
	if err := sc.Scan(&at, &ev.Kind, &ev.State, &ev.Value, &ev.Attempt, &ev.StatusCode, &ev.Error, &ev.DurationMs); err != nil {
		return ward.AlertEvent{}, err
	}
	ev.At = fromMicros(at)
	return ev, nil
}

// EncodeAlertSpec is a spec as stored (JSON).
func EncodeAlertSpec(spec ward.AlertSpec) (string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return "", fmt.Errorf("encode alert spec: %w", err)
	}
	return string(b), nil
}

// Check checks what every adapter relies on.
func (p *PutAlertParams) Check() error {
	switch {
	case p.Project == "" || p.Name == "":
		return ward.Errorf(ward.CodeInvalidArgument, "an alert needs a project and a name")
	case !p.Spec.Metric.Valid() || !p.Spec.Op.Valid():
		return ward.Errorf(ward.CodeInvalidArgument, "alert %s: unchecked spec", p.Name)
	case len(p.Secret) == 0:
		return ward.FieldError("secret", "is required")
	}
	return nil
}

// EventLimit is ListAlertEventsParams.Limit bounded to ward.MaxAlertEvents.
func (p *ListAlertEventsParams) EventLimit() int {
	if p.Limit <= 0 || p.Limit > ward.MaxAlertEvents {
		return ward.MaxAlertEvents
	}
	return p.Limit
}

// WindowLimit is TaskWindowParams.Limit or DefaultWindowLimit.
func (p *TaskWindowParams) WindowLimit() int {
	if p.Limit <= 0 {
		return DefaultWindowLimit
	}
	return p.Limit
}

// IsBuiltinAlert reports whether name is a builtin rule's (it has no row).
func IsBuiltinAlert(name string) bool { return strings.HasPrefix(name, "builtin:") }
