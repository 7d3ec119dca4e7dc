package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// SubmitParams is one submission call: a single task or a batch.
type SubmitParams struct {
	Project     string
	SubmittedBy string // token ID
	Requests    []ward.SubmitRequest
	// Batch makes field errors name the request's index (tasks[3].priority).
	Batch bool
	// ParentID links the tasks to the task that submitted them.
	ParentID string
	// List names the batch's list in field errors (default "tasks"; a
	// fan-out's is "functions").
	List string

	// taskID, when set, is the ID of the one task: Invoke waits on it
	// before the task exists.
	taskID string
}

// Submit validates and enqueues tasks in one transaction: all or nothing.
func (s *Service) Submit(ctx context.Context, p *SubmitParams) ([]store.InsertResult, error) {
	if len(p.Requests) == 0 {
		return nil, ward.FieldError("tasks", "at least one task is required")
	}
	if len(p.Requests) > ward.MaxBatch {
		return nil, ward.FieldError("tasks", "at most %d tasks per batch", ward.MaxBatch)
	}
	now := s.now()
	tasks := make([]store.NewTask, len(p.Requests))
	fns := map[string]deployed{}
	bt := &batchTokens{s: s, ctx: ctx, project: p.Project}
	for i := range p.Requests {
		r := &p.Requests[i]
		fn, ok := fns[r.Function]
		if !ok {
			var err error
			fn, err = s.function(ctx, p.Project, r.Function)
			if err != nil {
				return nil, s.fieldErr(p, i, err)
			}
			fns[r.Function] = fn
		}
		t, err := newTask(p, r, fn.Function, now)
		if err != nil {
			return nil, s.fieldErr(p, i, err)
		}
		if p.taskID != "" {
			t.ID = p.taskID
		}
		if err := s.applyInput(&t, fn, bt); err != nil {
			return nil, s.fieldErr(p, i, err)
		}
		if t.Sealed {
			if err := s.checkSealed(ctx, p.Project, fn.Function, t.Payload); err != nil {
				return nil, s.fieldErr(p, i, err)
			}
		}
		tasks[i] = t
	}
	counts := make(map[string]int, len(fns))
	var bytes int64
	for i := range tasks {
		counts[tasks[i].Function]++
		bytes += int64(len(tasks[i].Payload))
	}
	if err := s.checkLimits(ctx, p.Project, fns, counts, bytes, now); err != nil {
		return nil, err
	}
	res, err := s.st.InsertTasks(ctx, &store.InsertTasksParams{Tasks: tasks, Tokens: bt.entries, Now: now})
	if err != nil {
		return nil, err
	}
	s.vaulted.written(bt.entries, now)
	s.workAvailable(ctx)
	for name, n := range counts {
		s.obs.Submitted(p.Project, name, n)
	}
	return res, nil
}

// function returns a deployed function with code, for submission.
func (s *Service) function(ctx context.Context, project, name string) (deployed, error) {
	if !ward.ValidName(name) {
		return deployed{}, ward.FieldError("function", "must be 1-63 lowercase letters, digits or '-'")
	}
	fn, err := s.funcs.get(ctx, projectKey{project, name})
	if err != nil {
		if errors.Is(err, ward.ErrNotFound) {
			return deployed{}, &ward.Error{Code: ward.CodeNotFound, Field: "function", Message: fmt.Sprintf("function %s not found", name)}
		}
		return deployed{}, err
	}
	if fn.CodeDigest == "" {
		return deployed{}, &ward.Error{Code: ward.CodeNoCode, Field: "function", Message: fmt.Sprintf("function %s has no code; upload it first", name)}
	}
	return fn, nil
}

// fieldErr prefixes a field error with the batch index.
func (s *Service) fieldErr(p *SubmitParams, i int, err error) error {
	var we *ward.Error
	if !p.Batch || !errors.As(err, &we) {
		return err
	}
	e := *we
	list := p.List
	if list == "" {
		list = "tasks"
	}
	prefix := fmt.Sprintf("%s[%d]", list, i)
	if e.Field != "" {
		e.Field = prefix + "." + e.Field
	} else {
		e.Field = prefix
	}
	e.Message = prefix + ": " + e.Message
	return &e
}

// newTask validates one request against its function and fills defaults.
func newTask(p *SubmitParams, r *ward.SubmitRequest, fn ward.Function, now time.Time) (store.NewTask, error) {
	spec := fn.Spec.WithDefaults()
	payload, err := payloadBytes(r)
	if err != nil {
		return store.NewTask{}, err
	}
	if max := spec.Limits.MaxPayloadKB * 1024; len(payload) > max {
		return store.NewTask{}, &ward.Error{Code: ward.CodePayloadTooLarge, Field: "payload",
			Message: fmt.Sprintf("payload is %d bytes; function %s accepts at most %d", len(payload), fn.Name, max)}
	}
	if r.Priority < ward.MinPriority || r.Priority > ward.MaxPriority {
		return store.NewTask{}, ward.FieldError("priority", "must be between %d and %d", ward.MinPriority, ward.MaxPriority)
	}
	if r.DelayS < 0 || r.DelayS > ward.MaxDelayS {
		return store.NewTask{}, ward.FieldError("delay_s", "must be between 0 and %d", ward.MaxDelayS)
	}
	timeout := spec.Limits.TimeoutS
	if r.TimeoutS != 0 {
		if r.TimeoutS < 1 || r.TimeoutS > spec.Limits.TimeoutS {
			return store.NewTask{}, ward.FieldError("timeout_s", "must be between 1 and the function's timeout_s (%d)", spec.Limits.TimeoutS)
		}
		timeout = r.TimeoutS
	}
	attempts := spec.Retries.MaxAttempts
	if r.MaxAttempts != 0 {
		if r.MaxAttempts < 1 || r.MaxAttempts > ward.MaxAttempts {
			return store.NewTask{}, ward.FieldError("max_attempts", "must be between 1 and %d", ward.MaxAttempts)
		}
		attempts = r.MaxAttempts
	}
	if err := validLabels(r.Labels); err != nil {
		return store.NewTask{}, err
	}
	if len(r.IdempotencyKey) > ward.MaxIdemKeyLen {
		return store.NewTask{}, ward.FieldError("idempotency_key", "at most %d bytes", ward.MaxIdemKeyLen)
	}
	return store.NewTask{
		ID:             NewTaskID(),
		Project:        p.Project,
		Function:       fn.Name,
		CodeDigest:     fn.CodeDigest,
		Runtime:        spec.Runtime,
		Priority:       r.Priority,
		RunAt:          now.Add(time.Duration(r.DelayS) * time.Second),
		TimeoutS:       timeout,
		MemoryMB:       spec.Limits.MemoryMB,
		MaxAttempts:    attempts,
		BackoffS:       spec.Retries.BackoffS,
		Labels:         r.Labels,
		ParentID:       p.ParentID,
		IdempotencyKey: r.IdempotencyKey,
		SubmittedBy:    p.SubmittedBy,
		Payload:        payload,
		Sealed:         r.Sealed != nil,
	}, nil
}

// payloadBytes returns the payload of a request: the JSON value as sent, or
// the decoded payload_b64 or sealed bytes.
func payloadBytes(r *ward.SubmitRequest) ([]byte, error) {
	hasJSON := len(r.Payload) > 0 && string(r.Payload) != "null"
	n := 0
	for _, set := range []bool{hasJSON, r.PayloadB64 != nil, r.Sealed != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, ward.FieldError("payload", "set one of payload, payload_b64 and sealed")
	case r.Sealed != nil:
		return r.Sealed, nil
	case hasJSON:
		if !json.Valid(r.Payload) {
			return nil, ward.FieldError("payload", "is not valid JSON")
		}
		return []byte(r.Payload), nil
	default:
		return r.PayloadB64, nil
	}
}

func validLabels(labels map[string]string) error {
	if len(labels) > ward.MaxLabels {
		return ward.FieldError("labels", "at most %d labels", ward.MaxLabels)
	}
	for k, v := range labels {
		if k == "" || len(k) > 63 {
			return ward.FieldError("labels", "keys must be 1-63 bytes")
		}
		if len(v) > ward.MaxLabelLen {
			return ward.FieldError("labels", "values must be at most %d bytes", ward.MaxLabelLen)
		}
	}
	return nil
}

// Get returns one task.
func (s *Service) Get(ctx context.Context, project, id string) (store.TaskRecord, error) {
	return s.st.GetTask(ctx, project, id)
}

// Wait returns the task once it is terminal, or as it is after d.
func (s *Service) Wait(ctx context.Context, project, id string, d time.Duration) (store.TaskRecord, error) {
	return s.wait(ctx, project, id, d, nil)
}

// wait is Wait; ch, when not nil, is a waiter on id registered before the
// task could finish, so that the first read of the task is skipped.
func (s *Service) wait(ctx context.Context, project, id string, d time.Duration, ch chan struct{}) (store.TaskRecord, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	// Another server may finish the task; poll now and then as well.
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	var t store.TaskRecord
	for {
		if ch == nil {
			ch = s.waiters.add(id)
			var err error
			t, err = s.st.GetTask(ctx, project, id)
			if err != nil || t.Status.Terminal() || d <= 0 {
				s.waiters.remove(id, ch)
				return t, err
			}
		}
		select {
		case <-ch: // notify removed it
		case <-poll.C:
			s.waiters.remove(id, ch)
		case <-deadline.C:
			s.waiters.remove(id, ch)
			return s.st.GetTask(ctx, project, id)
		case <-ctx.Done():
			s.waiters.remove(id, ch)
			return t, ctx.Err()
		}
		ch = nil
	}
}

// List lists a project's tasks, newest first.
func (s *Service) List(ctx context.Context, p *store.ListTasksParams) ([]store.TaskRecord, error) {
	return s.st.ListTasks(ctx, p)
}

// Body returns a task's payload, result or log.
func (s *Service) Body(ctx context.Context, project, id string, b store.Body) ([]byte, error) {
	return s.st.GetTaskBody(ctx, project, id, b)
}

// Cancel cancels a queued or running task. A running task's runner learns
// of it at its next heartbeat and kills the run.
func (s *Service) Cancel(ctx context.Context, project, id string) (store.TaskRecord, error) {
	t, err := s.st.CancelTask(ctx, &store.CancelParams{Project: project, ID: id, Now: s.now()})
	if err != nil {
		return t, err
	}
	s.waiters.notify(id)
	s.workAvailable(ctx) // a running task's slot is freed
	s.cancelled(&t)
	return t, nil
}

// Retry re-queues a finished task with a fresh attempt budget.
func (s *Service) Retry(ctx context.Context, project, id string) (store.TaskRecord, error) {
	t, err := s.st.RetryTask(ctx, &store.RetryParams{Project: project, ID: id, Now: s.now()})
	if err != nil {
		return t, err
	}
	s.workAvailable(ctx)
	return t, nil
}

// InvokeParams is a synchronous invocation.
type InvokeParams struct {
	Project     string
	Function    string
	SubmittedBy string
	Payload     []byte
	TimeoutS    int // 0 = the function's
}

// Invoke runs a task synchronously at the highest priority and waits for it.
// A full max_concurrency answers ward.ErrFunctionBusy at once, and a project
// at its quotas.max_running project_running_quota. A task that
// fails is returned with its record and a nil error; a context that ends
// first returns the record as it is together with the context's error.
func (s *Service) Invoke(ctx context.Context, p *InvokeParams) (store.TaskRecord, []byte, error) {
	fn, err := s.function(ctx, p.Project, p.Function)
	if err != nil {
		return store.TaskRecord{}, nil, err
	}
	if max := fn.Spec.Limits.MaxConcurrency; max > 0 {
		n, err := s.st.CountRunning(ctx, p.Project, p.Function)
		if err != nil {
			return store.TaskRecord{}, nil, err
		}
		if n >= max {
			s.obs.Rejected(p.Project, p.Function, ward.CodeFunctionBusy)
			return store.TaskRecord{}, nil, &ward.Error{Code: ward.CodeFunctionBusy, RetryAfter: time.Second,
				Message: fmt.Sprintf("function %s is at its max_concurrency (%d)", p.Function, max)}
		}
	}
	if err := s.checkRunning(ctx, p.Project, p.Function); err != nil {
		return store.TaskRecord{}, nil, err
	}
	req := ward.SubmitRequest{Function: p.Function, PayloadB64: p.Payload, Priority: ward.MaxPriority, TimeoutS: p.TimeoutS, MaxAttempts: 1}
	if req.PayloadB64 == nil {
		req.PayloadB64 = []byte{}
	}
	// The waiter is registered before the task exists, so the wait needs
	// not read the task it has just inserted.
	id := NewTaskID()
	ch := s.waiters.add(id)
	res, err := s.Submit(ctx, &SubmitParams{Project: p.Project, SubmittedBy: p.SubmittedBy, Requests: []ward.SubmitRequest{req}, taskID: id})
	if err != nil {
		s.waiters.remove(id, ch)
		return store.TaskRecord{}, nil, err
	}
	// Wait for the run (including a platform retry) plus a margin.
	wait := time.Duration(res[0].Task.TimeoutS)*time.Second + 5*time.Second
	t, err := s.wait(ctx, p.Project, id, wait, ch)
	if err != nil || !t.Status.Terminal() {
		// Nobody waits for the answer any more: make sure it never runs late.
		if _, cerr := s.Cancel(context.WithoutCancel(ctx), p.Project, id); cerr != nil && !errors.Is(cerr, ward.ErrInvalidState) {
			s.log.Error("cancel abandoned invoke", "task", id, "err", cerr)
		}
		if err == nil {
			err = ward.Errorf(ward.CodeTimeout, "task %s did not finish in time", id)
		}
		return t, nil, err
	}
	if t.Status != ward.StatusSucceeded {
		return t, nil, nil
	}
	body, err := s.st.GetTaskBody(ctx, p.Project, id, store.BodyResult)
	return t, body, err
}
