package telemetry

import (
	"testing"

	"github.com/wardhq/ward"
)

func TestRejections(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	m.Rejected("p", "f", ward.CodeFunctionRate)
	m.Rejected("p", "f", ward.CodeFunctionBusy)
	m.Rejected("p", "g", ward.CodeProjectQueued)
	m.Rejected("q", "f", ward.CodeFunctionRate)
	for _, c := range []struct {
		project, function string
		want              float64
	}{{"p", "f", 2}, {"p", "g", 1}, {"p", "", 3}, {"q", "", 1}, {"r", "", 0}, {"p", "h", 0}} {
		if got := m.Rejections(c.project, c.function); got != c.want {
			t.Errorf("Rejections(%s, %s) = %v, want %v", c.project, c.function, got, c.want)
		}
	}
}
