package ward

import "time"

// The window of a project's stats (GET /v1/projects/{p}/stats?window=).
const (
	DefaultStatsWindow = time.Minute
	MinStatsWindow     = time.Second
	MaxStatsWindow     = time.Hour
)

// MaxStatsFunctions bounds the function rows of a project's stats: a
// project with more functions gets those with the most tasks queued and
// running (Stats.Truncated says so); ?function= reads any one.
const MaxStatsFunctions = 200

// ParseStatsWindow parses a stats window: a Go duration ("30s", "5m")
// from MinStatsWindow to MaxStatsWindow.
func ParseStatsWindow(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < MinStatsWindow || d > MaxStatsWindow {
		return 0, FieldError("window", "must be a duration from %s to %s, like 30s or 5m", MinStatsWindow, MaxStatsWindow)
	}
	return d, nil
}

// Stats answers GET /v1/projects/{p}/stats: a project's tasks by function,
// read from the store the cluster shares, so every server answers the same.
type Stats struct {
	// WindowS is the window of the Submitted, Finished, Failed and wait
	// figures, in seconds: [At − window, At).
	WindowS float64   `json:"window_s"`
	At      time.Time `json:"at"`
	// Functions are the project's functions by name (only the one asked
	// for with ?function=), at most MaxStatsFunctions.
	Functions []FunctionStats `json:"functions"`
	// Total is the whole project's (Function ""), every function counted.
	Total FunctionStats `json:"total"`
	// Truncated says the project has more functions than Functions lists.
	Truncated bool `json:"truncated,omitempty"`
}

// FunctionStats are one function's figures, or a project's total.
type FunctionStats struct {
	Function string `json:"function,omitempty"`
	// Now (read at most once a second per server): queued tasks that are
	// due, queued tasks whose run_at is ahead, running tasks.
	Queued  int `json:"queued"`
	Delayed int `json:"delayed"`
	Running int `json:"running"`
	// Over the window: tasks submitted, tasks that finished (succeeded,
	// failed or cancelled) and those of them that failed.
	Submitted int `json:"submitted"`
	Finished  int `json:"finished"`
	Failed    int `json:"failed"`
	// The median and 95th percentile queue wait (from run_at to the start
	// of the last run) of the tasks finished in the window, in
	// milliseconds; absent when none of them ran.
	WaitP50Ms *float64 `json:"wait_p50_ms,omitempty"`
	WaitP95Ms *float64 `json:"wait_p95_ms,omitempty"`
	// Capped says the window held more tasks than were read: Submitted or
	// Finished is a floor, and the waits are those of the newest finished.
	Capped bool `json:"capped,omitempty"`
}
