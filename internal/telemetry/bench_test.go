package telemetry

import (
	"net/http"
	"testing"
	"time"

	"github.com/wardhq/ward"
)

// BenchmarkTaskPath is what one task costs the metrics on the hot paths:
// its submission, its submit request, its end.
func BenchmarkTaskPath(b *testing.B) {
	m := New(Options{})
	for b.Loop() {
		m.Request("POST /v1/projects/{p}/tasks", http.StatusAccepted, time.Millisecond)
		m.Submitted("default", "echo", 1)
		m.Finished("default", "echo", ward.StatusSucceeded, "", 3*time.Millisecond, time.Millisecond)
	}
}

// BenchmarkTaskPathParallel is BenchmarkTaskPath from every CPU at once.
func BenchmarkTaskPathParallel(b *testing.B) {
	m := New(Options{})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("POST /v1/projects/{p}/tasks", http.StatusAccepted, time.Millisecond)
			m.Submitted("default", "echo", 1)
			m.Finished("default", "echo", ward.StatusSucceeded, "", 3*time.Millisecond, time.Millisecond)
		}
	})
}
