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

// checkLimits applies the limits that say "later" to one submission: each
// function's submit_rate and the project's max_queued. counts holds the
// submission's task count per function. A refusal is a *ward.Error with
// the limit's code and RetryAfter, and is told to the observer.
func (s *Service) checkLimits(ctx context.Context, project string, fns map[string]deployed, counts map[string]int, now time.Time) error {
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
	return nil
}

// loadProject reads a project for the limits cache.
func (s *Service) loadProject(ctx context.Context, k projectKey) (ward.Project, error) {
	return s.st.GetProject(ctx, k.project)
}
