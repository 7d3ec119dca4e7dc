package queue

import (
	"context"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// observed reports whether an Observer listens (the default one does not).
func (s *Service) observed() bool {
	_, nop := s.obs.(nopObserver)
	return !nop
}

// finishedRun tells the Observer that run ended its task at now with
// status and error code.
func (s *Service) finishedRun(run *leasedRun, status ward.Status, code ward.Code, now time.Time) {
	s.obs.Finished(run.project, run.function, status, code, nonNegative(run.started.Sub(run.due)), nonNegative(now.Sub(run.started)))
}

// finishedRecord tells the Observer of a task that has ended, from its
// record: a task that ran waited from run_at to started_at and ran until
// finished_at; one that never started (cancelled while queued) waited until
// it ended, and ran for no time.
func (s *Service) finishedRecord(t *store.TaskRecord) {
	if !t.Status.Terminal() {
		return
	}
	end := s.now()
	if t.FinishedAt != nil {
		end = *t.FinishedAt
	}
	var code ward.Code
	if t.Error != nil {
		code = t.Error.Code
	}
	wait, run := end.Sub(t.RunAt), time.Duration(0)
	if t.StartedAt != nil {
		wait, run = t.StartedAt.Sub(t.RunAt), end.Sub(*t.StartedAt)
	}
	s.obs.Finished(t.Project, t.Function, t.Status, code, nonNegative(wait), nonNegative(run))
}

// finishRuns ends the runs of completions the store has applied (or
// refused): their live logs close — after the store write, so that a
// follower woken by the end reads the new state — and, with an Observer,
// each task that ended is told: from its run when this server leased it,
// else (leased through another server, or dropped) from the store.
func (s *Service) finishRuns(ctx context.Context, cs []store.Completion, errs []error, now time.Time) {
	var unknown []store.Completion
	for i := range cs {
		c := &cs[i]
		run := s.runs.take(c.TaskID, c.LeaseID)
		if errs[i] != nil || !c.Status.Terminal() || !s.observed() {
			continue
		}
		if run == nil {
			unknown = append(unknown, *c)
			continue
		}
		var code ward.Code
		if c.Error != nil {
			code = c.Error.Code
		}
		s.finishedRun(run, c.Status, code, now)
	}
	for _, c := range unknown {
		t, err := s.st.GetTask(ctx, c.Project, c.TaskID)
		if err != nil {
			// Counted nowhere; the task itself is fine.
			s.log.Warn("read a finished task for metrics", "task", c.TaskID, "err", err)
			continue
		}
		s.finishedRecord(&t)
	}
}

// reaped ends the runs whose lease expired at now, and drops those not
// heard of for two lease TTLs. With an Observer, a task that used its
// platform retries and so failed with lease_expired is told; one leased
// through another server is not.
func (s *Service) reaped(ids []string, now time.Time) {
	for _, id := range ids {
		run := s.runs.take(id, "")
		if run != nil && s.observed() && run.platformTries >= ward.PlatformRetries {
			s.finishedRun(run, ward.StatusFailed, ward.CodeLeaseExpired, now)
		}
	}
	s.runs.sweep(now.Add(-2 * s.leaseTTL))
}

// cancelled ends the run of a task Cancel ended (t as CancelTask returned
// it) and observes the task.
func (s *Service) cancelled(t *store.TaskRecord) {
	s.runs.take(t.ID, "")
	if s.observed() {
		s.finishedRecord(t)
	}
}

func nonNegative(d time.Duration) time.Duration { return max(d, 0) }
