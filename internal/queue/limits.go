package queue

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/wardhq/ward"
)

// quotaRetryAfter is the Retry-After of a full queue quota: queued tasks
// drain as runners take them, so a retry soon may pass.
const quotaRetryAfter = time.Second

// rates holds a token bucket per function with a submit_rate: it fills at
// the rate and holds at most one second's worth, so a function takes at most
// rate tasks in any second, and at most rate×t over t seconds. A bucket
// whose rate changed starts full at the new rate.
type rates struct {
	mu      sync.Mutex
	buckets map[projectKey]*bucket
}

type bucket struct {
	rate   int
	tokens float64
	at     time.Time
}

func newRates() *rates { return &rates{buckets: map[projectKey]*bucket{}} }

// take takes n tokens from k's bucket at rate per second. When there are
// not enough it takes none and returns how long until there will be.
func (r *rates) take(k projectKey, rate, n int, now time.Time) (bool, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[k]
	if b == nil || b.rate != rate {
		b = &bucket{rate: rate, tokens: float64(rate), at: now}
		r.buckets[k] = b
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(float64(rate), b.tokens+d.Seconds()*float64(rate))
		b.at = now
	}
	if need := float64(n); b.tokens < need {
		return false, time.Duration((need - b.tokens) / float64(rate) * float64(time.Second))
	}
	b.tokens -= float64(n)
	return true, 0
}

// checkLimits applies the limits to one submission: each function's
// submit_rate and the project's max_queued (which say "later") and
// max_stored_mb. counts holds the submission's task count per function,
// bytes the size of its payloads. A refusal is a *ward.Error with the
// limit's code (and RetryAfter, for a limit that says "later"), and is
// told to the observer.
func (s *Service) checkLimits(ctx context.Context, project string, fns map[string]deployed, counts map[string]int, bytes int64, now time.Time) error {
	total := 0
	for name, n := range counts {
		total += n
		rate := fns[name].Spec.Limits.SubmitRate
		if rate <= 0 {
			continue
		}
		if n > rate {
			s.obs.Rejected(project, name, ward.CodeFunctionRate)
			return &ward.Error{Code: ward.CodeFunctionRate, RetryAfter: time.Second,
				Message: fmt.Sprintf("%d tasks of function %s in one call exceed its submit_rate of %d per second; send fewer at a time", n, name, rate)}
		}
		if ok, wait := s.rates.take(projectKey{project, name}, rate, n, now); !ok {
			s.obs.Rejected(project, name, ward.CodeFunctionRate)
			return &ward.Error{Code: ward.CodeFunctionRate, RetryAfter: wait,
				Message: fmt.Sprintf("function %s takes at most %d tasks per second (submit_rate)", name, rate)}
		}
	}
	p, err := s.projects.get(ctx, projectKey{project: project})
	if err != nil {
		return err
	}
	if max := p.Quotas.MaxQueued; max > 0 {
		n, err := s.st.CountQueued(ctx, project, max)
		if err != nil {
			return err
		}
		if n+total > max {
			for name := range counts {
				s.obs.Rejected(project, name, ward.CodeProjectQueued)
			}
			return &ward.Error{Code: ward.CodeProjectQueued, RetryAfter: quotaRetryAfter,
				Message: fmt.Sprintf("project %s holds at most %d queued tasks (quotas.max_queued); %d are queued", project, max, n)}
		}
	}
	if err := s.checkStorage(ctx, p, bytes); err != nil {
		for name := range counts {
			s.obs.Rejected(project, name, ward.CodeProjectStorage)
		}
		return err
	}
	return nil
}

// checkStorage refuses to add bytes to a project whose stored bytes would
// then pass its quotas.max_stored_mb. The quota comes from p (cached); the
// stored bytes are read afresh. Concurrent calls may each pass where
// together they pass the quota: the check bounds what is stored, not to
// the byte.
func (s *Service) checkStorage(ctx context.Context, p ward.Project, bytes int64) error {
	limit := p.Quotas.StoredBytesLimit()
	if limit == 0 {
		return nil
	}
	cur, err := s.st.GetProject(ctx, p.Name)
	if err != nil {
		return err
	}
	used := cur.Usage.StoredBytes
	if used+bytes <= limit {
		return nil
	}
	return ward.Errorf(ward.CodeProjectStorage,
		"project %s stores at most %d MiB (quotas.max_stored_mb); it stores %d bytes, and this request adds %d",
		p.Name, p.Quotas.MaxStoredMB, used, bytes)
}

// CheckStorage refuses, with project_storage_quota, to store n more bytes
// for a function of a project at its quotas.max_stored_mb (a code
// upload); the refusal is told to the observer.
func (s *Service) CheckStorage(ctx context.Context, project, function string, n int64) error {
	p, err := s.projects.get(ctx, projectKey{project: project})
	if err != nil {
		return err
	}
	if err := s.checkStorage(ctx, p, n); err != nil {
		s.obs.Rejected(project, function, ward.CodeProjectStorage)
		return err
	}
	return nil
}

// checkRunning refuses, with project_running_quota, an invoke in a
// project that has its quotas.max_running tasks running.
func (s *Service) checkRunning(ctx context.Context, project, function string) error {
	p, err := s.projects.get(ctx, projectKey{project: project})
	if err != nil {
		return err
	}
	max := p.Quotas.MaxRunning
	if max == 0 {
		return nil
	}
	n, err := s.st.CountRunning(ctx, project, "")
	if err != nil {
		return err
	}
	if n < max {
		return nil
	}
	s.obs.Rejected(project, function, ward.CodeProjectRunning)
	return &ward.Error{Code: ward.CodeProjectRunning, RetryAfter: quotaRetryAfter,
		Message: fmt.Sprintf("project %s runs at most %d tasks at once (quotas.max_running); %d are running", project, max, n)}
}

// loadProject reads a project for the limits cache.
func (s *Service) loadProject(ctx context.Context, k projectKey) (ward.Project, error) {
	return s.st.GetProject(ctx, k.project)
}
