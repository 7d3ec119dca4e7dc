package telemetry

import "sync"

// rejectionCounts counts limit rejections by project and function beside
// the ward_limit_rejections_total counter, so that the alert rules read
// their figure without collecting the counter vector.
type rejectionCounts struct {
	mu sync.Mutex
	n  map[string]map[string]float64 // project → function → rejections
}

func (r *rejectionCounts) add(project, function string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]map[string]float64{}
	}
	fs := r.n[project]
	if fs == nil {
		fs = map[string]float64{}
		r.n[project] = fs
	}
	fs[function]++
}

// Rejections returns how many submissions and invokes of a project's
// function (function "" = all of the project's) limits refused since this
// process started, summed over the limits. Alert rules read it.
func (m *Metrics) Rejections(project, function string) float64 {
	r := &m.rejected
	r.mu.Lock()
	defer r.mu.Unlock()
	if function != "" {
		return r.n[project][function]
	}
	var sum float64
	for _, v := range r.n[project] {
		sum += v
	}
	return sum
}
