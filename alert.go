package ward

import (
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AlertMetric is what an alert rule watches.
type AlertMetric string

// Alert metrics. Queue depth and running are read at each evaluation; the
// others are figures over the last AlertWindow.
const (
	MetricQueueDepth      AlertMetric = "queue_depth"      // queued tasks that are due
	MetricWaitP95         AlertMetric = "wait_p95"         // 95th percentile queue wait, in seconds, of tasks finished in the window
	MetricRunning         AlertMetric = "running"          // running tasks
	MetricFailureRate     AlertMetric = "failure_rate"     // failed / finished tasks in the window, 0–1
	MetricLimitRejections AlertMetric = "limit_rejections" // submissions and invokes refused by a limit in the window
	MetricSubmitRate      AlertMetric = "submit_rate"      // tasks submitted per second, averaged over the window
)

// AlertMetrics lists the metrics, in documentation order.
var AlertMetrics = []AlertMetric{MetricQueueDepth, MetricWaitP95, MetricRunning, MetricFailureRate, MetricLimitRejections, MetricSubmitRate}

// Valid reports whether m is a known metric.
func (m AlertMetric) Valid() bool { return slices.Contains(AlertMetrics, m) }

// metricNames lists AlertMetrics for error messages.
var metricNames = func() string {
	names := make([]string, len(AlertMetrics))
	for i, m := range AlertMetrics {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}()

// AlertWindow is the window of the metrics that are figures over time.
const AlertWindow = time.Minute

// AlertOp compares a metric's value with a rule's threshold.
type AlertOp string

// Comparisons.
const (
	OpGT AlertOp = ">"
	OpGE AlertOp = ">="
	OpLT AlertOp = "<"
	OpLE AlertOp = "<="
)

// Valid reports whether o is a known comparison.
func (o AlertOp) Valid() bool { return o == OpGT || o == OpGE || o == OpLT || o == OpLE }

// Holds reports whether "value o threshold" is true.
func (o AlertOp) Holds(value, threshold float64) bool {
	switch o {
	case OpGT:
		return value > threshold
	case OpGE:
		return value >= threshold
	case OpLT:
		return value < threshold
	case OpLE:
		return value <= threshold
	}
	return false
}

// AlertState is where a rule is in ok → pending → firing → resolved → ok.
type AlertState string

// Alert states.
const (
	AlertOK       AlertState = "ok"       // the condition does not hold
	AlertPending  AlertState = "pending"  // it holds, for less than the rule's for
	AlertFiring   AlertState = "firing"   // it has held for the rule's for
	AlertResolved AlertState = "resolved" // it stopped holding after firing
)

// BuiltinSubmitSurge names the rule every project has without
// configuration: a sudden jump in submissions (see docs/api.md).
const BuiltinSubmitSurge = "builtin:submit-surge"

// Bounds on alert rules.
const (
	MaxAlertsPerProject = 100
	MaxAlertFor         = 24 * time.Hour
	MaxAlertThreshold   = 1e12
	MaxWebhookURL       = 2048
	MinAlertSecret      = 16  // bytes of a caller-chosen signing secret
	MaxAlertSecret      = 256 // bytes
	// MaxAlertEvents is how many history entries a rule keeps; older ones
	// are dropped as new ones come.
	MaxAlertEvents = 1000
)

// AlertRule is the body of PUT /v1/projects/{p}/alerts/{name}: the spec
// and the secret.
type AlertRule struct {
	AlertSpec
	// Secret is the webhook signing secret, write-only: when absent on
	// create, ward makes one and returns it once; when absent on update,
	// the rule keeps its secret.
	Secret string `json:"secret,omitempty"`
}

// Validate fills defaults and checks the rule; minFor is the evaluation
// interval, the shortest for. It returns the parsed for. Errors name the
// field at fault.
func (r *AlertRule) Validate(minFor time.Duration) (time.Duration, error) {
	if r.Op == "" {
		r.Op = OpGT
	}
	switch {
	case !r.Metric.Valid():
		return 0, FieldError("metric", "must be one of %s", metricNames)
	case r.Function != "" && !ValidName(r.Function):
		return 0, FieldError("function", "must be 1-63 lowercase letters, digits or '-', not starting with '-'")
	case !r.Op.Valid():
		return 0, FieldError("op", "must be one of >, >=, <, <=")
	case math.IsNaN(r.Threshold) || r.Threshold < 0 || r.Threshold > MaxAlertThreshold:
		return 0, FieldError("threshold", "must be between 0 and %g", float64(MaxAlertThreshold))
	}
	d, err := time.ParseDuration(r.For)
	switch {
	case r.For == "":
		return 0, FieldError("for", "is required (a duration such as 1m)")
	case err != nil:
		return 0, FieldError("for", "is not a duration (such as 30s or 5m)")
	case d < minFor:
		return 0, FieldError("for", "must be at least the evaluation interval, %v", minFor)
	case d > MaxAlertFor:
		return 0, FieldError("for", "must be at most %v", MaxAlertFor)
	}
	if err := ValidWebhook(r.Webhook); err != nil {
		return 0, err
	}
	if r.Secret != "" && (len(r.Secret) < MinAlertSecret || len(r.Secret) > MaxAlertSecret) {
		return 0, FieldError("secret", "must be %d-%d bytes", MinAlertSecret, MaxAlertSecret)
	}
	return d, nil
}

// ValidWebhook checks a webhook URL: absolute http or https with a host,
// no user information (credentials belong in the signing secret, not in a
// URL that is shown back) and no fragment.
func ValidWebhook(s string) error {
	if s == "" {
		return FieldError("webhook", "is required (an http or https URL)")
	}
	if len(s) > MaxWebhookURL {
		return FieldError("webhook", "must be at most %d bytes", MaxWebhookURL)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return FieldError("webhook", "is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return FieldError("webhook", "must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return FieldError("webhook", "must name a host")
	case u.User != nil:
		return FieldError("webhook", "must not hold user information")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return FieldError("webhook", "must not hold a fragment")
	}
	return nil
}

// AlertSpec is what a rule watches and whom it tells. As stored (and in
// an Alert) it is an AlertRule's, checked, without the secret, with For in
// canonical form.
type AlertSpec struct {
	Metric    AlertMetric `json:"metric"`
	Function  string      `json:"function,omitempty"` // "" = every function of the project
	Op        AlertOp     `json:"op"`                 // "" in an AlertRule = ">"
	Threshold float64     `json:"threshold"`
	For       string      `json:"for"`               // a Go duration, e.g. "1m"; at least the evaluation interval
	Webhook   string      `json:"webhook,omitempty"` // absent only on the builtin rule
}

// Alert is a rule with its current state. No view carries the secret.
type Alert struct {
	Project string `json:"project"`
	Name    string `json:"name"`
	AlertSpec
	// Builtin marks the rule every project has (BuiltinSubmitSurge).
	Builtin bool       `json:"builtin,omitempty"`
	State   AlertState `json:"state"`
	// Value is the metric at the last evaluation.
	Value       float64    `json:"value"`
	Since       *time.Time `json:"since,omitempty"`        // when State was entered
	EvaluatedAt *time.Time `json:"evaluated_at,omitempty"` // the last evaluation
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// PutAlertResponse answers PUT …/alerts/{name}: the rule, and the signing
// secret ward made for it, present only on the answer that created it.
type PutAlertResponse struct {
	Alert
	Secret string `json:"secret,omitempty"`
}

// AlertList answers GET …/alerts.
type AlertList struct {
	Alerts []Alert `json:"alerts"`
}

// AlertEventKind says what an AlertEvent records.
type AlertEventKind string

// Kinds of alert history entries.
const (
	EventState    AlertEventKind = "state"    // the rule changed state
	EventDelivery AlertEventKind = "delivery" // one attempt to deliver a webhook
)

// AlertEvent is one entry of a rule's history.
type AlertEvent struct {
	At    time.Time      `json:"at"`
	Kind  AlertEventKind `json:"kind"`
	State AlertState     `json:"state"` // the state entered, or the state a delivery tells
	Value float64        `json:"value"` // the metric's value at the change
	// Delivery attempts only: the attempt number (1-based), the HTTP status
	// answered (0 when none), the error (no response), and how long it took.
	Attempt    int    `json:"attempt,omitempty"`
	StatusCode int    `json:"status_code,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"duration_ms,omitempty"`
}

// AlertHistory answers GET …/alerts/{name}/history, newest first.
type AlertHistory struct {
	Events []AlertEvent `json:"events"`
}

// AlertNotification is the JSON body of a webhook, sent on each state
// change with header SignatureHeader.
type AlertNotification struct {
	Alert     string      `json:"alert"`
	Project   string      `json:"project"`
	Function  string      `json:"function,omitempty"`
	Metric    AlertMetric `json:"metric"`
	Op        AlertOp     `json:"op"`
	Value     float64     `json:"value"`
	Threshold float64     `json:"threshold"`
	State     AlertState  `json:"state"`
	At        time.Time   `json:"at"`
}

// SignatureHeader carries a webhook's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>" under the
// rule's secret>".
const SignatureHeader = "Ward-Signature"
