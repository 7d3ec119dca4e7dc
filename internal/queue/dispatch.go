package queue

import (
	"context"
	"errors"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/seal/box"
	"github.com/wardhq/ward/internal/store"
)

// The Service is the in-process runner.Source.
var _ runner.Source = (*Service)(nil)

// maxLeaseBatch bounds one lease call.
const maxLeaseBatch = 256

// Lease implements runner.Source: it leases due tasks of req.Runtimes (all
// runtimes when empty), or waits for a submission, a freed slot or the
// next delayed task, up to req.Wait. A cancelled ctx ends only the wait; a
// lease already granted is returned. Runtimes that name "" or too many →
// invalid_argument.
func (s *Service) Lease(ctx context.Context, req *runner.LeaseRequest) ([]runner.Job, error) {
	names, err := store.RuntimeNames(req.Runtimes)
	if err != nil {
		return nil, err
	}
	key := runtimesKey(names)
	if err := s.checkActive(context.WithoutCancel(ctx), req.RunnerID); err != nil {
		return nil, err
	}
	var deadline <-chan time.Time
	if req.Wait > 0 {
		t := time.NewTimer(req.Wait)
		defer t.Stop()
		deadline = t.C
	}
	for {
		woken, gen := s.wake.wait()
		now := s.now()
		next := maxIdle
		if until, idle := s.idle.idle(key, gen, now); idle {
			// Nothing was due when last looked, and nothing has changed.
			if req.Wait <= 0 {
				return nil, nil
			}
			next = until.Sub(now)
		} else {
			max := min(req.Max, maxLeaseBatch)
			// Not cancelled with ctx: a lease granted must reach the runner.
			leases, err := s.st.LeaseTasks(context.WithoutCancel(ctx), &store.LeaseParams{
				RunnerID:     req.RunnerID,
				Max:          max,
				FreeMemoryMB: req.FreeMemoryMB,
				Runtimes:     req.Runtimes,
				TTL:          s.leaseTTL,
				Now:          now,
			})
			if err != nil {
				return nil, err
			}
			if len(leases) < max {
				// The scan took what it could: note whether anything of
				// these runtimes is left due, so that the next call for
				// them need not scan again.
				at, queued, err := s.st.NextRunAt(ctx, req.Runtimes...)
				if err == nil {
					s.idle.record(key, gen, now, at, queued)
					if d := at.Sub(now); queued && d > 0 && d < next {
						next = d
					}
				}
			}
			if len(leases) > 0 {
				// If this fails (the store is failing), the leases expire and the
				// tasks run again as a platform retry.
				return s.jobs(context.WithoutCancel(ctx), leases)
			}
			if req.Wait <= 0 {
				return nil, nil
			}
		}
		// Sleep until woken, the next delayed task is due, or a poll tick
		// (another server may have enqueued). Due tasks that could not be
		// leased (budget or concurrency) wait for a wake too.
		tick := time.NewTimer(next)
		select {
		case <-woken:
		case <-tick.C:
		case <-deadline:
			tick.Stop()
			return nil, nil
		case <-ctx.Done():
			tick.Stop()
			return nil, ctx.Err()
		}
		tick.Stop()
	}
}

// jobs builds the runner's jobs from leases. A sealed payload that is not
// sealed to the function's current sealing key (replaced since submission)
// cannot be opened by the task: that task fails at once with
// sealed_key_mismatch instead of running.
func (s *Service) jobs(ctx context.Context, leases []store.Lease) ([]runner.Job, error) {
	jobs := make([]runner.Job, 0, len(leases))
	var failed []store.Completion
	now := s.now()
	for i := range leases {
		l := &leases[i]
		t := l.Task
		s.runs.open(l, now)
		env, err := s.env.get(ctx, projectKey{t.Project, t.Function})
		if err != nil {
			return nil, err
		}
		if t.Sealed {
			if msg := sealedMismatch(env, l.Payload); msg != "" {
				failed = append(failed, store.Completion{
					TaskID: t.ID, LeaseID: l.LeaseID, Project: t.Project, Status: ward.StatusFailed, Now: s.now(),
					Error: &ward.TaskError{Code: box.CodeKeyMismatch, Message: msg},
				})
				continue
			}
		}
		jobs = append(jobs, runner.Job{
			TaskID:     t.ID,
			LeaseID:    l.LeaseID,
			Project:    t.Project,
			Function:   t.Function,
			CodeDigest: t.CodeDigest,
			Runtime:    t.Runtime,
			Retry: runner.RetryState{
				Attempt:       t.Attempts,
				MaxAttempts:   t.MaxAttempts,
				PlatformTries: t.PlatformTries,
				BackoffS:      t.BackoffS,
			},
			MemoryMB:    t.MemoryMB,
			Timeout:     time.Duration(t.TimeoutS) * time.Second,
			Payload:     l.Payload,
			Sealed:      t.Sealed,
			Config:      env.config,
			ResultLimit: env.resultLimit,
			LogLimit:    env.logLimit,
			Secrets:     env.secrets,
			QueuedAt:    t.RunAt,
		})
	}
	if len(failed) > 0 {
		errs, err := s.st.CompleteTasks(ctx, &store.CompleteParams{Completions: failed})
		if err != nil {
			// The leases expire and the reaper brings the tasks back.
			s.log.Error("fail sealed tasks", "tasks", len(failed), "err", err)
		} else {
			s.finishRuns(ctx, failed, errs, failed[0].Now)
		}
		for _, c := range failed {
			s.waiters.notify(c.TaskID)
		}
	}
	return jobs, nil
}

// sealedMismatch explains why a sealed payload cannot be opened with the
// function's sealing key, or returns "".
func sealedMismatch(env funcEnv, payload []byte) string {
	h, err := box.Parse(payload)
	switch {
	case err != nil:
		return "the sealed payload is not a sealed envelope"
	case env.sealing == nil:
		return "the function has no sealing key"
	case h.KeyID != env.sealing.KeyID:
		return "the payload was sealed to key " + h.KeyID + ", but the function's sealing key is now " + env.sealing.KeyID
	}
	return ""
}

// checkActive refuses work to a registered runner that is not active. A
// runner the store does not know (one driven directly, as in tests) may
// lease.
func (s *Service) checkActive(ctx context.Context, runnerID string) error {
	rn, err := s.st.GetRunner(ctx, runnerID)
	switch {
	case errors.Is(err, ward.ErrNotFound):
		return nil
	case err != nil:
		return err
	case rn.State != ward.RunnerActive:
		return ward.Errorf(ward.CodeRunnerDraining, "runner %s is %s", runnerID, rn.State)
	}
	return nil
}

// Register implements runner.Source.
func (s *Service) Register(ctx context.Context, info ward.Runner) error {
	_, err := s.st.RegisterRunner(ctx, &store.RegisterRunnerParams{Runner: info, Now: s.now()})
	return err
}

// Heartbeat implements runner.Source.
func (s *Service) Heartbeat(ctx context.Context, runnerID string, refs []runner.LeaseRef) (runner.HeartbeatReply, error) {
	var reply runner.HeartbeatReply
	rn, err := s.st.TouchRunner(ctx, runnerID, s.now())
	switch {
	case err == nil:
		reply.State = rn.State
	case !errors.Is(err, ward.ErrNotFound):
		return reply, err
	}
	if len(refs) == 0 {
		return reply, nil
	}
	lr := make([]store.LeaseRef, len(refs))
	for i, r := range refs {
		lr[i] = store.LeaseRef{TaskID: r.TaskID, LeaseID: r.LeaseID}
	}
	now := s.now()
	reply.Lost, err = s.st.Heartbeat(ctx, &store.HeartbeatParams{RunnerID: runnerID, Leases: lr, TTL: s.leaseTTL, Now: now})
	s.runs.touch(refs, now)
	for _, id := range reply.Lost {
		s.runs.take(id, "")
	}
	return reply, err
}

// Drained implements runner.Source.
func (s *Service) Drained(ctx context.Context, runnerID string) error {
	_, err := s.st.SetRunnerState(ctx, &store.SetRunnerStateParams{ID: runnerID, State: ward.RunnerDrained, Now: s.now()})
	if errors.Is(err, ward.ErrNotFound) {
		return nil
	}
	return err
}

// DrainRunner asks a runner to drain: it learns it at its next heartbeat or
// lease call.
func (s *Service) DrainRunner(ctx context.Context, id string) (ward.Runner, error) {
	return s.st.SetRunnerState(ctx, &store.SetRunnerStateParams{ID: id, State: ward.RunnerDraining, Now: s.now()})
}

// Complete implements runner.Source: it chooses each run's next state and
// applies them in one store transaction.
func (s *Service) Complete(ctx context.Context, results []runner.Result) ([]error, error) {
	now := s.now()
	cs := make([]store.Completion, len(results))
	for i, r := range results {
		cs[i] = s.completion(r, now)
	}
	errs, err := s.st.CompleteTasks(ctx, &store.CompleteParams{Completions: cs})
	if err != nil {
		return nil, err
	}
	s.finishRuns(ctx, cs, errs, now)
	requeued := false
	for i, c := range cs {
		if errs[i] == nil && c.Status.Terminal() {
			s.waiters.notify(c.TaskID)
		}
		requeued = requeued || (errs[i] == nil && c.Status == ward.StatusQueued)
	}
	// A freed slot matters to due tasks held back by a budget or a
	// concurrency limit, and a retry is new work; when nothing was due for
	// any runtimes leased and nothing was requeued there is nobody to wake.
	_, gen := s.wake.wait()
	if !s.idle.allIdle(gen, now) || requeued {
		s.workAvailable(ctx)
	}
	return errs, nil
}

// completion applies the retry policy to one finished run.
func (s *Service) completion(r runner.Result, now time.Time) store.Completion {
	rs := r.Retry
	c := store.Completion{
		TaskID:   r.TaskID,
		LeaseID:  r.LeaseID,
		Project:  r.Project,
		ExitCode: r.ExitCode,
		Usage:    &r.Usage,
		Log:      r.Stderr,
		Now:      now,
	}
	if r.Code == "" {
		c.Status = ward.StatusSucceeded
		c.Result = r.Stdout
		return c
	}
	c.Error = &ward.TaskError{Code: r.Code, Message: r.Message}
	switch {
	case r.Code.PlatformFailure():
		if rs.PlatformTries < ward.PlatformRetries {
			c.Status, c.RunAt, c.PlatformRetry = ward.StatusQueued, now, true
			return c
		}
	default:
		userAttempts := rs.Attempt - rs.PlatformTries
		if userAttempts < rs.MaxAttempts {
			c.Status = ward.StatusQueued
			c.RunAt = now.Add(backoff(time.Duration(rs.BackoffS)*time.Second, userAttempts, s.maxBackoff))
			return c
		}
	}
	c.Status = ward.StatusFailed
	return c
}

// Release implements runner.Source: every lease of the runner goes back to
// the queue without using an attempt.
func (s *Service) Release(ctx context.Context, runnerID string) error {
	ids, err := s.st.RequeueRunner(ctx, &store.RequeueRunnerParams{RunnerID: runnerID, Now: s.now()})
	if err != nil {
		return err
	}
	for _, id := range ids {
		s.runs.take(id, "")
	}
	if len(ids) > 0 {
		s.log.Info("released leases", "runner", runnerID, "tasks", len(ids))
		s.workAvailable(ctx)
	}
	return nil
}

// Code implements runner.Source.
func (s *Service) Code(ctx context.Context, project, digest string) ([]byte, error) {
	return s.st.GetCode(ctx, project, digest)
}

// ConfigChanged drops the cached config, secrets and function records of a
// project; call it after any write to the project's config, secrets,
// functions or code.
func (s *Service) ConfigChanged(project string) {
	s.env.forget(project)
	s.funcs.forget(project)
	s.projects.forget(project)
}
