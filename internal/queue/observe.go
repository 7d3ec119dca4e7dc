package queue

import (
	"context"
	"sync"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

// flight is what the queue keeps of a task it leased, so that the end of
// its run can be observed without reading the task again: a runner's result
// names neither the function nor when the task became due.
type flight struct {
	leaseID       string
	project       string
	function      string
	due           time.Time // run_at when leased: the task was due from then
	started       time.Time // the lease: the run's start
	platformTries int       // at the lease; a reaped task with as many as ward.PlatformRetries fails
	seen          time.Time // the lease or its last heartbeat through this server
}

// flights are the leases this server granted, by task ID, while an
// Observer listens. A lease that ends elsewhere (expired on another server,
// its runner heartbeating through another one) is forgotten once it has not
// been seen for two lease TTLs; its end, if it reaches this server, is then
// read from the store.
type flights struct {
	mu sync.Mutex
	m  map[string]flight
}

func (f *flights) add(taskID string, fl flight) {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]flight{}
	}
	f.m[taskID] = fl
	f.mu.Unlock()
}

// take removes and returns the flight of a task's lease; another lease's
// flight (a newer lease of the same task) stays.
func (f *flights) take(taskID, leaseID string) (flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.m[taskID]
	if !ok || fl.leaseID != leaseID {
		return flight{}, false
	}
	delete(f.m, taskID)
	return fl, true
}

// takeAny removes and returns a task's flight, whatever its lease.
func (f *flights) takeAny(taskID string) (flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.m[taskID]
	if ok {
		delete(f.m, taskID)
	}
	return fl, ok
}

// touch marks the flights of held leases seen at now.
func (f *flights) touch(refs []runner.LeaseRef, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range refs {
		if fl, ok := f.m[r.TaskID]; ok && fl.leaseID == r.LeaseID {
			fl.seen = now
			f.m[r.TaskID] = fl
		}
	}
}

// forget drops the flights of tasks whose lease is gone.
func (f *flights) forget(taskIDs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range taskIDs {
		delete(f.m, id)
	}
}

// prune drops the flights not seen since before.
func (f *flights) prune(before time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, fl := range f.m {
		if fl.seen.Before(before) {
			delete(f.m, id)
		}
	}
}

// size is the number of flights kept.
func (f *flights) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// observed reports whether an Observer listens (the default one does not).
func (s *Service) observed() bool {
	_, nop := s.obs.(nopObserver)
	return !nop
}

// leased records the flight of a lease granted at now.
func (s *Service) leased(l *store.Lease, now time.Time) {
	t := &l.Task
	started := now
	if t.StartedAt != nil {
		started = *t.StartedAt
	}
	s.flights.add(t.ID, flight{
		leaseID: l.LeaseID, project: t.Project, function: t.Function,
		due: t.RunAt, started: started, platformTries: t.PlatformTries, seen: now,
	})
}

// finishedFlight tells the Observer that the run of fl ended the task at
// now with status and error code.
func (s *Service) finishedFlight(fl flight, status ward.Status, code ward.Code, now time.Time) {
	s.obs.Finished(fl.project, fl.function, status, code, nonNegative(fl.started.Sub(fl.due)), nonNegative(now.Sub(fl.started)))
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

// completed observes the completions that applied (errs[i] == nil) at now:
// a task whose flight this server keeps is told at once; the others
// (leased through another server, or forgotten) are read from the store.
func (s *Service) completed(ctx context.Context, cs []store.Completion, errs []error, now time.Time) {
	var unknown []store.Completion
	for i := range cs {
		c := &cs[i]
		fl, ok := s.flights.take(c.TaskID, c.LeaseID)
		if errs[i] != nil || !c.Status.Terminal() {
			continue
		}
		if !ok {
			unknown = append(unknown, *c)
			continue
		}
		var code ward.Code
		if c.Error != nil {
			code = c.Error.Code
		}
		s.finishedFlight(fl, c.Status, code, now)
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

// reaped observes the tasks whose lease expired at now: those that used
// their platform retries failed with lease_expired. A task leased through
// another server is not observed here.
func (s *Service) reaped(ids []string, now time.Time) {
	for _, id := range ids {
		fl, ok := s.flights.takeAny(id)
		if ok && fl.platformTries >= ward.PlatformRetries {
			s.finishedFlight(fl, ward.StatusFailed, ward.CodeLeaseExpired, now)
		}
	}
	s.flights.prune(now.Add(-2 * s.leaseTTL))
}

// cancelled observes a task Cancel ended (t as CancelTask returned it); its
// lease, if it ran, is gone.
func (s *Service) cancelled(t *store.TaskRecord) {
	if !s.observed() {
		return
	}
	s.flights.forget([]string{t.ID})
	s.finishedRecord(t)
}

func nonNegative(d time.Duration) time.Duration { return max(d, 0) }
