// Package store defines the persistence seam of ward: one Store interface,
// implemented by store/sqlite (and later store/postgres), and checked by the
// storetest conformance suite. A Store applies state transitions atomically;
// the policy that chooses them (backoff, retry limits) lives in internal/queue.
package store

import (
	"context"
	"time"

	"github.com/wardhq/ward"
)

// Store is the one source of truth for projects, tokens, functions, code,
// config and the task queue. Methods return *ward.Error values with codes
// not_found, already_exists, invalid_state or stale_lease where those apply.
type Store interface {
	CreateProject(ctx context.Context, p *CreateProjectParams) (ward.Project, error)
	// GetProject returns a project with its usage: its stored bytes are
	// the length of its task bodies (payloads, results, logs) and code
	// blobs as the store holds them, kept exact by the transactions that
	// write and delete them.
	GetProject(ctx context.Context, name string) (ward.Project, error)
	ListProjects(ctx context.Context) ([]ward.Project, error)
	// SetRetention sets a project's retention_days.
	SetRetention(ctx context.Context, project string, days int) (ward.Project, error)
	// SetQuotas sets the project's quotas the patch gives, in one
	// statement (concurrent patches of different quotas both hold), and
	// returns the project. Out of range → invalid_argument; a missing
	// project → not_found.
	SetQuotas(ctx context.Context, project string, q ward.QuotasPatch) (ward.Project, error)
	// CountQueued returns how many tasks of the project are queued (due or
	// delayed), counting no further than limit.
	CountQueued(ctx context.Context, project string, limit int) (int, error)
	// DeleteProject removes the project and everything it owns: API tokens,
	// functions, code, config, secrets, the token vault and tasks with their
	// bodies.
	DeleteProject(ctx context.Context, name string) error

	CreateToken(ctx context.Context, p *CreateTokenParams) (ward.Token, error)
	GetToken(ctx context.Context, id string) (ward.Token, error)
	// RevokeToken marks a token revoked; project "" matches admin tokens.
	RevokeToken(ctx context.Context, p *RevokeTokenParams) error
	CountTokens(ctx context.Context) (int, error)

	// PutFunction creates or updates a function's spec, keeping its code.
	PutFunction(ctx context.Context, p *PutFunctionParams) (ward.Function, error)
	GetFunction(ctx context.Context, project, name string) (ward.Function, error)
	ListFunctions(ctx context.Context, project string) ([]ward.Function, error)
	// DeleteFunction removes the function; its tasks and code blobs stay.
	DeleteFunction(ctx context.Context, project, name string) error
	// PutCode stores the blob under (project, digest), once, and points the
	// function at it, bumping its code version. The function must exist.
	// A blob stored adds its length to the project's stored bytes.
	PutCode(ctx context.Context, p *PutCodeParams) (ward.Function, error)
	// GetCode returns a project's code blob by digest.
	GetCode(ctx context.Context, project, digest string) ([]byte, error)

	// PutConfig replaces a config object; Function "" is the project's global one.
	PutConfig(ctx context.Context, p *PutConfigParams) error
	GetConfig(ctx context.Context, project, function string) (ward.Config, error)

	// PutSecret creates or replaces a secret (Function "" = project-global),
	// bumping its version. With IfAbsent, an existing secret is kept and
	// returned with Existing = true.
	PutSecret(ctx context.Context, p *PutSecretParams) (PutSecretResult, error)
	// ListSecrets returns the secrets of one scope, by name, without values.
	ListSecrets(ctx context.Context, project, function string) ([]ward.Secret, error)
	// GetSecrets returns the secrets a function's tasks see, values included:
	// the project's global ones and the function's local ones (both scopes,
	// not yet merged).
	GetSecrets(ctx context.Context, project, function string) ([]SecretValue, error)
	// DeleteSecret removes one secret; a missing one → not_found.
	DeleteSecret(ctx context.Context, project, function, name string) error

	// InsertTasks inserts tasks in one transaction, with the token vault
	// entries their payloads need (upserted: a token written again gets the
	// new value and time). A task whose idempotency key was used in its
	// project within IdempotencyTTL is not inserted; its result holds the
	// first task and Existing = true.
	InsertTasks(ctx context.Context, p *InsertTasksParams) ([]InsertResult, error)
	GetTask(ctx context.Context, project, id string) (TaskRecord, error)
	ListTasks(ctx context.Context, p *ListTasksParams) ([]TaskRecord, error)
	// GetTaskBody returns one of a task's bodies (payload, result or log).
	GetTaskBody(ctx context.Context, project, id string, body Body) ([]byte, error)

	// LeaseTasks atomically moves up to Max due queued tasks to running for one
	// runner, highest priority first, FIFO within a priority, honouring the
	// runner's free memory, each function's max_concurrency and each
	// project's quotas.max_running across the store.
	LeaseTasks(ctx context.Context, p *LeaseParams) ([]Lease, error)
	// Heartbeat extends held leases and returns the task IDs whose lease is no
	// longer held (cancelled, expired, re-leased): their runs must stop.
	Heartbeat(ctx context.Context, p *HeartbeatParams) (lost []string, err error)
	// CompleteTasks applies finished runs in one transaction. A completion whose
	// lease is no longer held is ignored and reported with ward.ErrStaleLease.
	CompleteTasks(ctx context.Context, p *CompleteParams) ([]error, error)
	// ExpireLeases puts running tasks whose lease expired before Now back in the
	// queue (a platform retry) or fails them with lease_expired once
	// PlatformRetries is used up. It returns the affected task IDs.
	ExpireLeases(ctx context.Context, p *ExpireParams) ([]string, error)
	// RequeueRunner releases every lease held by a runner (graceful shutdown):
	// its running tasks go back to queued without using an attempt.
	RequeueRunner(ctx context.Context, p *RequeueRunnerParams) ([]string, error)
	// CancelTask cancels a queued or running task; a finished one → invalid_state.
	CancelTask(ctx context.Context, p *CancelParams) (TaskRecord, error)
	// RetryTask re-queues a finished (failed, cancelled or succeeded) task with a
	// fresh attempt budget; a queued or running one → invalid_state.
	RetryTask(ctx context.Context, p *RetryParams) (TaskRecord, error)
	// CountRunning returns the running tasks of a function, or of the whole
	// project when function is "" (for admission checks).
	CountRunning(ctx context.Context, project, function string) (int, error)
	// TaskCounts returns, by project and function, the queued tasks due at
	// Now, the queued tasks not yet due and the running tasks, in project
	// and function order. Every function is listed, with zeros when it has
	// no such task, and so is a deleted function that still has some.
	TaskCounts(ctx context.Context, p *TaskCountsParams) ([]TaskCount, error)
	// GetTokens returns the originals of the project's tokens it holds (a
	// token it does not hold is absent from the map).
	GetTokens(ctx context.Context, project string, tokens []string) (map[string][]byte, error)
	// PurgeTokens deletes up to Limit (0 = all) of a project's token vault
	// entries last written before UpdatedBefore; it returns how many.
	PurgeTokens(ctx context.Context, p *PurgeTokensParams) (int, error)
	// NextRunAt returns the earliest run_at of a queued task of one of
	// runtimes, or ok=false when there is none. No runtimes means every
	// runtime; the runtimes are those of LeaseParams.Runtimes, so that a
	// runner's lease and its probe for the next due task see the same
	// tasks, and a task of a runtime the runner lacks never looks due to it.
	NextRunAt(ctx context.Context, runtimes ...ward.Runtime) (t time.Time, ok bool, err error)
	// PurgeTasks deletes up to Limit finished tasks (succeeded, failed,
	// cancelled) of a project, and their bodies, that finished before
	// FinishedBefore; Function narrows it to one function. It returns how
	// many it deleted.
	PurgeTasks(ctx context.Context, p *PurgeParams) (int, error)

	// RegisterRunner records a runner starting: a new one is inserted, a
	// known one (a restart under the same identity) is replaced by this
	// incarnation. Either way it is active, registered and seen at Now.
	RegisterRunner(ctx context.Context, p *RegisterRunnerParams) (ward.Runner, error)
	// GetRunner returns one runner with its Running count.
	GetRunner(ctx context.Context, id string) (ward.Runner, error)
	// ListRunners returns every runner, by ID, with Running counts.
	ListRunners(ctx context.Context) ([]ward.Runner, error)
	// TouchRunner marks a runner seen at Now and returns it (its State tells
	// a runner it is asked to drain).
	TouchRunner(ctx context.Context, id string, now time.Time) (ward.Runner, error)
	// SetRunnerState moves a runner along active → draining → drained.
	// Setting the state it is in is a no-op; going back (drained → draining,
	// draining → active) → invalid_state; an unknown runner → not_found.
	SetRunnerState(ctx context.Context, p *SetRunnerStateParams) (ward.Runner, error)
	// CreateJoinToken records a one-time runner join token by its ID and the
	// hash of its secret.
	CreateJoinToken(ctx context.Context, p *CreateJoinTokenParams) error
	// ConsumeJoinToken uses a join token once: it must exist, be unused and
	// unexpired at Now, and its hash must equal Hash; otherwise nothing
	// changes and the error is ward.ErrJoinTokenInvalid, whatever the
	// reason. Two concurrent calls for one token: exactly one succeeds.
	ConsumeJoinToken(ctx context.Context, p *ConsumeJoinTokenParams) error

	// Alert rules, their state and history (see alert.go).
	AlertStore

	Close() error
}

// RegisterRunnerParams records a runner starting. Runner.State, Running,
// RegisteredAt and LastSeenAt are ignored: the store sets them.
type RegisterRunnerParams struct {
	Runner ward.Runner
	Now    time.Time
}

// SetRunnerStateParams changes a runner's state.
type SetRunnerStateParams struct {
	ID    string
	State ward.RunnerState
	Now   time.Time
}

// CreateJoinTokenParams records a join token.
type CreateJoinTokenParams struct {
	ID        string
	Hash      []byte // SHA-256 of the token's secret
	CreatedBy string // token ID of the admin who made it
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ConsumeJoinTokenParams uses a join token for a runner.
type ConsumeJoinTokenParams struct {
	ID       string
	Hash     []byte
	RunnerID string // the runner it admits, recorded with the use
	Now      time.Time
}

// Body names a task body.
type Body string

// Task bodies.
const (
	BodyPayload Body = "payload"
	BodyResult  Body = "result"
	BodyLog     Body = "log"
)

// TaskRecord is a task with the fields only the platform sees.
type TaskRecord struct {
	ward.Task
	Runtime        ward.Runtime // the sandbox runtime the task runs in
	SubmittedBy    string       // token ID of the submitter
	MemoryMB       int
	BackoffS       int
	PlatformTries  int // platform retries used so far
	LeaseID        string
	RunnerID       string
	LeaseExpiresAt time.Time
}

// CreateProjectParams creates a project.
type CreateProjectParams struct {
	Name          string
	RetentionDays int // 0 = ward.DefaultRetentionDays
	Now           time.Time
}

// CreateTokenParams records a minted token.
type CreateTokenParams struct {
	Token ward.Token
}

// RevokeTokenParams revokes a token of a project ("" for admin tokens).
type RevokeTokenParams struct {
	Project string
	ID      string
	Now     time.Time
}

// PutFunctionParams creates or updates a function.
type PutFunctionParams struct {
	Project string
	Name    string
	Spec    ward.FunctionSpec
	Now     time.Time
}

// PutCodeParams uploads code for a function.
type PutCodeParams struct {
	Project  string
	Function string
	Digest   string // "sha256:<hex>" of the code as uploaded
	Code     []byte
	// Size is the code's size as uploaded, when Code holds it transformed
	// (encrypted); 0 means len(Code).
	Size int
	Now  time.Time
}

// PutConfigParams replaces a config object.
type PutConfigParams struct {
	Project  string
	Function string // "" = global
	Config   ward.Config
	Now      time.Time
}

// PutSecretParams writes a secret. Value is what the store keeps (the
// sealed adapter hands the store an envelope); Size is the plaintext's size
// when Value holds it transformed (0 means len(Value)).
type PutSecretParams struct {
	Project  string
	Function string // "" = global
	Name     string
	Value    []byte
	Size     int
	IfAbsent bool
	Now      time.Time
}

// PutSecretResult is the outcome of PutSecret.
type PutSecretResult struct {
	Secret   ward.Secret
	Existing bool // IfAbsent found one; nothing was written
}

// SecretValue is a secret with its value, for delivery to tasks.
type SecretValue struct {
	ward.Secret
	Value []byte
}

// PurgeParams selects finished tasks to delete.
type PurgeParams struct {
	Project        string
	Function       string // optional
	FinishedBefore time.Time
	Limit          int // 0 = no limit
}

// NewTask is one task to insert; the caller has validated and defaulted it.
type NewTask struct {
	ID         string
	Project    string
	Function   string
	CodeDigest string
	// Runtime is the sandbox runtime the task runs in: its function's
	// spec.runtime. "" means ward.RuntimeWasm.
	Runtime        ward.Runtime
	Priority       int
	RunAt          time.Time
	TimeoutS       int
	MemoryMB       int
	MaxAttempts    int
	BackoffS       int
	Labels         map[string]string
	ParentID       string
	IdempotencyKey string
	SubmittedBy    string
	Payload        []byte
	Sealed         bool              // Payload is a client-sealed envelope
	Input          *ward.PayloadInfo // what projection and tokenization left, for functions with input rules
	// PayloadSize is the payload's size as submitted, when Payload holds it
	// transformed (encrypted); 0 means len(Payload).
	PayloadSize int
}

// InsertTasksParams inserts a batch.
type InsertTasksParams struct {
	Tasks  []NewTask
	Tokens []TokenValue // token vault entries to write with the batch
	Now    time.Time
}

// TokenValue is one token vault entry: a token and the original value it
// stands for (the sealed adapter hands the store an envelope).
type TokenValue struct {
	Project string
	Token   string
	Value   []byte
}

// PurgeTokensParams selects token vault entries to delete.
type PurgeTokensParams struct {
	Project       string
	UpdatedBefore time.Time
	Limit         int // 0 = no limit
}

// InsertResult is the outcome of one NewTask.
type InsertResult struct {
	Task     TaskRecord
	Existing bool // an earlier task with the same idempotency key
}

// ListTasksParams filters and pages a project's tasks, newest first.
type ListTasksParams struct {
	Project  string
	Function string      // optional
	Status   ward.Status // optional
	Limit    int
	// Before, when set, lists tasks older than this task ID (the cursor).
	Before string
}

// LeaseParams asks for work for one runner.
type LeaseParams struct {
	RunnerID     string
	Max          int // free slots
	FreeMemoryMB int // free memory budget; each leased task's memory_mb must fit
	// Runtimes are the runtimes the runner can run: only tasks of one of
	// them are leased. Empty means every runtime. At most
	// MaxLeaseRuntimes distinct ones, none of them "".
	Runtimes []ward.Runtime
	TTL      time.Duration
	Now      time.Time
}

// Lease is a leased task with what the runner needs to run it.
type Lease struct {
	Task      TaskRecord
	LeaseID   string
	ExpiresAt time.Time
	Payload   []byte
}

// HeartbeatParams extends a runner's leases.
type HeartbeatParams struct {
	RunnerID string
	Leases   []LeaseRef
	TTL      time.Duration
	Now      time.Time
}

// LeaseRef names a held lease.
type LeaseRef struct {
	TaskID  string
	LeaseID string
}

// Completion is the transition chosen for a finished run.
type Completion struct {
	TaskID  string
	LeaseID string
	Project string // the task's project (for stores that encrypt bodies per project)
	// Status is succeeded, failed, or queued (a retry at RunAt).
	Status        ward.Status
	RunAt         time.Time
	Error         *ward.TaskError
	ExitCode      *int
	Usage         *ward.Usage
	Result        []byte
	Log           []byte
	PlatformRetry bool // the retry is a platform retry (does not use an attempt)
	Now           time.Time
}

// CompleteParams applies completions.
type CompleteParams struct {
	Completions []Completion
}

// ExpireParams reaps expired leases.
type ExpireParams struct {
	Now             time.Time
	PlatformRetries int
	// ExpiredBy reaps the leases expiring before it; zero means Now. A later
	// time also reaps live leases: only for a store no live runner uses, such
	// as the single-node store of `ward dev` when it starts.
	ExpiredBy time.Time
}

// RequeueRunnerParams releases a runner's leases.
type RequeueRunnerParams struct {
	RunnerID string
	Now      time.Time
}

// CancelParams cancels a task.
type CancelParams struct {
	Project string
	ID      string
	Now     time.Time
}

// TaskCountsParams asks for the task counts of every function.
type TaskCountsParams struct {
	Now time.Time // a queued task is due when its run_at is not after Now
}

// TaskCount is how many tasks of one function wait and run.
type TaskCount struct {
	Project  string
	Function string
	Due      int // queued and due
	Delayed  int // queued with a later run_at
	Running  int
}

// RetryParams re-queues a finished task.
type RetryParams struct {
	Project string
	ID      string
	Now     time.Time
}

// Notifier is implemented by stores several servers share: Listen calls
// wake whenever another server (or this one) may have made work available
// — tasks inserted, finished or put back in the queue — until ctx ends. A
// lost connection is re-established, and wake is called once then, since
// notifications may have been missed meanwhile.
type Notifier interface {
	Listen(ctx context.Context, wake func()) error
	// Notify tells every listener that work may be available. It is best
	// effort: a server that misses it finds the work at its next poll.
	Notify(ctx context.Context)
}

// Broadcaster is implemented by stores several servers share: it carries
// short messages between the servers, for what they keep in memory only
// (the live logs of running tasks). It is best effort: a message may be
// lost (a subscriber that was disconnected misses what was broadcast
// meanwhile), and messages of different publishers may arrive in any
// order; one publisher's messages, sent one after another, arrive in order.
type Broadcaster interface {
	// Broadcast sends msg, at most MaxBroadcast bytes of any content, to
	// every subscriber, the publisher's own included.
	Broadcast(ctx context.Context, msg []byte) error
	// Subscribe calls fn with every message broadcast, one at a time, until
	// ctx ends. A lost connection is re-established. fn must not keep msg.
	Subscribe(ctx context.Context, fn func(msg []byte)) error
}

// MaxBroadcast is the largest message a Broadcaster carries.
const MaxBroadcast = 5000
