package ward

import "time"

// RunnerState is where a runner is in its life: active runners lease work;
// a draining one takes no new lease and finishes what it runs; a drained one
// has finished and left (it may register again as a new incarnation).
type RunnerState string

// Runner states.
const (
	RunnerActive   RunnerState = "active"
	RunnerDraining RunnerState = "draining"
	RunnerDrained  RunnerState = "drained"
)

// CodeJoinTokenInvalid answers a runner join whose token is unknown, used,
// expired or wrong; which of these it was is not told.
const CodeJoinTokenInvalid Code = "join_token_invalid"

// ErrJoinTokenInvalid identifies a refused join token.
var ErrJoinTokenInvalid = &Error{Code: CodeJoinTokenInvalid}

// Runner is a registered runner, as GET /v1/runners lists it.
type Runner struct {
	ID       string      `json:"id"`
	Name     string      `json:"name,omitempty"` // host name, for people
	State    RunnerState `json:"state"`
	Version  string      `json:"version,omitempty"`
	Drivers  []string    `json:"drivers"` // sandboxes it runs: "wasm", "oci"
	Slots    int         `json:"slots"`
	MemoryMB int         `json:"memory_mb"` // memory budget
	// MaxTasks and MaxAgeS are the recycling limits it was started with
	// (0 = none): after that many leased tasks or seconds it drains itself.
	MaxTasks     int       `json:"max_tasks,omitempty"`
	MaxAgeS      int       `json:"max_age_s,omitempty"`
	Running      int       `json:"running"` // tasks it holds a lease on now
	RegisteredAt time.Time `json:"registered_at"`
	LastSeenAt   time.Time `json:"last_seen_at"`
	// Remote is false for the runner inside a server process.
	Remote bool `json:"remote"`
}

// JoinTokenRequest is the body of POST /v1/runners/join-tokens. TTL is a Go
// duration ("1h"); empty means the server default.
type JoinTokenRequest struct {
	TTL string `json:"ttl,omitempty"`
}

// JoinTokenResponse is the answer to POST /v1/runners/join-tokens: the
// token, shown once, for `ward runner join`.
type JoinTokenResponse struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CodeRunnerDraining answers a lease request of a runner that is not
// active: it must finish what it runs and take no more.
const CodeRunnerDraining Code = "runner_draining"

// ErrRunnerDraining identifies a lease refused to a draining runner.
var ErrRunnerDraining = &Error{Code: CodeRunnerDraining}
