package store

import (
	"slices"
	"time"

	"github.com/wardhq/ward"
)

// The checks below are the parts of the Store contract that do not depend
// on how an adapter keeps its data: every adapter runs them first, so the
// same bad argument gets the same invalid_argument everywhere.

// MaxGetTokens is the most tokens one GetTokens call may name.
const MaxGetTokens = ward.MaxDetokenize

// Check validates a batch: every task has an ID and a priority in range,
// every token vault entry a token.
func (p *InsertTasksParams) Check() error {
	for i := range p.Tasks {
		t := &p.Tasks[i]
		switch {
		case t.ID == "":
			return ward.FieldError("id", "task %d has no ID", i)
		case t.Priority < ward.MinPriority || t.Priority > ward.MaxPriority:
			return ward.FieldError("priority", "must be between %d and %d", ward.MinPriority, ward.MaxPriority)
		}
	}
	for i := range p.Tokens {
		if p.Tokens[i].Token == "" {
			return ward.FieldError("token", "token %d is empty", i)
		}
	}
	return nil
}

// PageSize checks a listing and returns its page size: Limit 0 means
// ward.DefaultPageSize, and it is capped at ward.MaxPageSize.
func (p *ListTasksParams) PageSize() (int, error) {
	if p.Status != "" && !p.Status.Valid() {
		return 0, ward.FieldError("status", "unknown status %q", p.Status)
	}
	switch {
	case p.Limit < 0:
		return 0, ward.FieldError("limit", "must not be negative")
	case p.Limit == 0:
		return ward.DefaultPageSize, nil
	}
	return min(p.Limit, ward.MaxPageSize), nil
}

// MaxLeaseRuntimes is the most distinct runtimes a lease or a NextRunAt
// probe may name.
const MaxLeaseRuntimes = 8

// Check validates a lease request but for its runtimes, which the
// adapter checks as it reads them with RuntimeNames.
func (p *LeaseParams) Check() error {
	if p.RunnerID == "" {
		return ward.FieldError("runner_id", "is required")
	}
	return CheckTTL(p.TTL)
}

// RuntimeNames returns the distinct runtimes of a lease or a NextRunAt
// probe as strings, sorted; nil when there are none (every runtime). An
// empty runtime, or more than MaxLeaseRuntimes distinct ones →
// invalid_argument.
func RuntimeNames(runtimes []ward.Runtime) ([]string, error) {
	if len(runtimes) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(runtimes))
	for i, r := range runtimes {
		if r == "" {
			return nil, ward.FieldError("runtimes", "runtime %d is empty", i)
		}
		names = append(names, string(r))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > MaxLeaseRuntimes {
		return nil, ward.FieldError("runtimes", "at most %d runtimes, got %d", MaxLeaseRuntimes, len(names))
	}
	return names, nil
}

// CheckTTL validates a lease's time to live.
func CheckTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return ward.FieldError("ttl", "must be positive")
	}
	return nil
}

// CheckLimit validates the Limit of a purge: 0 means no limit.
func CheckLimit(limit int) error {
	if limit < 0 {
		return ward.FieldError("limit", "must not be negative")
	}
	return nil
}

// Check validates a code upload.
func (p *PutCodeParams) Check() error {
	switch {
	case p.Digest == "":
		return ward.FieldError("digest", "is required")
	case p.Size < 0:
		return ward.FieldError("size", "must not be negative")
	}
	return nil
}

// Check validates a secret write.
func (p *PutSecretParams) Check() error {
	switch {
	case p.Name == "":
		return ward.FieldError("name", "is required")
	case p.Size < 0:
		return ward.FieldError("size", "must not be negative")
	}
	return nil
}

// CheckTokens validates the tokens of a GetTokens call.
func CheckTokens(tokens []string) error {
	if len(tokens) > MaxGetTokens {
		return ward.FieldError("tokens", "at most %d per call, got %d", MaxGetTokens, len(tokens))
	}
	return nil
}

// Check validates a completion's target state: succeeded, failed, or
// queued (a retry).
func (c *Completion) Check() error {
	switch c.Status {
	case ward.StatusSucceeded, ward.StatusFailed, ward.StatusQueued:
		return nil
	}
	return ward.FieldError("status", "task %s: cannot complete with status %q", c.TaskID, c.Status)
}

// Check validates a registration: an ID and no negative capacity.
func (p *RegisterRunnerParams) Check() error {
	r := &p.Runner
	switch {
	case r.ID == "":
		return ward.FieldError("id", "is required")
	case r.Slots < 0:
		return ward.FieldError("slots", "must not be negative")
	case r.MemoryMB < 0:
		return ward.FieldError("memory_mb", "must not be negative")
	case r.MaxTasks < 0:
		return ward.FieldError("max_tasks", "must not be negative")
	case r.MaxAgeS < 0:
		return ward.FieldError("max_age_s", "must not be negative")
	}
	return nil
}

// Check validates a new join token: an ID and a hash.
func (p *CreateJoinTokenParams) Check() error {
	switch {
	case p.ID == "":
		return ward.FieldError("id", "is required")
	case len(p.Hash) == 0:
		return ward.FieldError("hash", "is required")
	}
	return nil
}

// Check validates a join: the runner it admits is named.
func (p *ConsumeJoinTokenParams) Check() error {
	if p.RunnerID == "" {
		return ward.FieldError("runner_id", "is required")
	}
	return nil
}

// InvalidJoinToken is the one answer to a refused join token, whatever
// the reason.
func InvalidJoinToken() error {
	return ward.Errorf(ward.CodeJoinTokenInvalid, "the join token is not valid")
}

// Check validates the state asked for: a known one.
func (p *SetRunnerStateParams) Check() error {
	if _, ok := runnerStateRank(p.State); !ok {
		return ward.FieldError("state", "unknown runner state %q", p.State)
	}
	return nil
}

// Move decides a runner's move from state from to p.State along
// active → draining → drained: change is false when it is there already,
// and a move back → invalid_state.
func (p *SetRunnerStateParams) Move(from ward.RunnerState) (change bool, err error) {
	f, _ := runnerStateRank(from)
	to, _ := runnerStateRank(p.State)
	switch {
	case to == f:
		return false, nil
	case to < f:
		return false, ward.Errorf(ward.CodeInvalidState, "runner %s is %s; it cannot become %s", p.ID, from, p.State)
	}
	return true, nil
}

// runnerStateRank orders the runner states along a runner's life; an
// unknown state has none.
func runnerStateRank(st ward.RunnerState) (int, bool) {
	switch st {
	case ward.RunnerActive:
		return 0, true
	case ward.RunnerDraining:
		return 1, true
	case ward.RunnerDrained:
		return 2, true
	}
	return 0, false
}

// RunnerNotFound is the error for an unknown runner.
func RunnerNotFound(id string) error {
	return ward.Errorf(ward.CodeNotFound, "runner %s not found", id)
}
