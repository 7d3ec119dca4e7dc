package queue

import (
	"sync"
	"time"

	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

// runs holds what this server keeps of each run it leased, by task ID,
// from the lease until the run's end is recorded: its live log, and what
// the Observer is told when it ends (a runner's result names neither the
// function nor when the task became due). A run not heard of (a log chunk
// or a heartbeat through this server) for two lease TTLs is dropped, in
// case its end was recorded by another server; that end, should it reach
// this server, is read from the store instead.
type runs struct {
	mu sync.Mutex
	m  map[string]*leasedRun
}

// leasedRun is one run leased by this server.
type leasedRun struct {
	leaseID       string
	project       string
	function      string
	due           time.Time // run_at when leased: the task was due from then
	started       time.Time // the lease: the run's start
	platformTries int       // at the lease; a reaped task with as many as ward.PlatformRetries fails
	log           *LiveLog
	watchedUntil  time.Time // another server follows the live log until then
}

// open records the run of a lease granted at now; an older run of the
// same task ends.
func (r *runs) open(l *store.Lease, now time.Time) {
	t := &l.Task
	started := now
	if t.StartedAt != nil {
		started = *t.StartedAt
	}
	run := &leasedRun{
		leaseID: l.LeaseID, project: t.Project, function: t.Function,
		due: t.RunAt, started: started, platformTries: t.PlatformTries,
		log: newLiveLog(now),
	}
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string]*leasedRun{}
	}
	old := r.m[t.ID]
	r.m[t.ID] = run
	r.mu.Unlock()
	if old != nil {
		old.log.close()
	}
}

// log returns the live log of taskID's run holding leaseID, or nil.
func (r *runs) log(taskID, leaseID string) *LiveLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	if run := r.m[taskID]; run != nil && run.leaseID == leaseID {
		return run.log
	}
	return nil
}

// live returns the live log of taskID's run holding leaseID, or nil, and
// whether another server follows it at now.
func (r *runs) live(taskID, leaseID string, now time.Time) (*LiveLog, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if run := r.m[taskID]; run != nil && run.leaseID == leaseID {
		return run.log, now.Before(run.watchedUntil)
	}
	return nil, false
}

// watched marks taskID's run holding leaseID as followed by another
// server until until, and returns its project and live log (nil: no such
// run).
func (r *runs) watched(taskID, leaseID string, until time.Time) (string, *LiveLog) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if run := r.m[taskID]; run != nil && run.leaseID == leaseID {
		run.watchedUntil = until
		return run.project, run.log
	}
	return "", nil
}

// take ends taskID's run and returns it; with leaseID set, only that
// lease's run.
func (r *runs) take(taskID, leaseID string) *leasedRun {
	r.mu.Lock()
	run := r.m[taskID]
	if run == nil || (leaseID != "" && run.leaseID != leaseID) {
		r.mu.Unlock()
		return nil
	}
	delete(r.m, taskID)
	r.mu.Unlock()
	run.log.close()
	return run
}

// touch marks the named runs as heard of at now.
func (r *runs) touch(refs []runner.LeaseRef, now time.Time) {
	for _, ref := range refs {
		if lg := r.log(ref.TaskID, ref.LeaseID); lg != nil {
			lg.mu.Lock()
			lg.touched = now
			lg.mu.Unlock()
		}
	}
}

// sweep ends the runs not heard of since before.
func (r *runs) sweep(before time.Time) {
	r.mu.Lock()
	var stale []*leasedRun
	for id, run := range r.m {
		run.log.mu.Lock()
		old := run.log.touched.Before(before)
		run.log.mu.Unlock()
		if old {
			stale = append(stale, run)
			delete(r.m, id)
		}
	}
	r.mu.Unlock()
	for _, run := range stale {
		run.log.close()
	}
}
