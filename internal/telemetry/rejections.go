package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Rejections returns how many submissions and invokes of a project's
// function (function "" = all of the project's) limits refused since this
// process started, summed over the limits. Alert rules read it.
func (m *Metrics) Rejections(project, function string) float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		m.rejections.Collect(ch)
		close(ch)
	}()
	var sum float64
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err != nil || d.Counter == nil {
			continue
		}
		var p, f string
		for _, l := range d.Label {
			switch l.GetName() {
			case "project":
				p = l.GetValue()
			case "function":
				f = l.GetValue()
			}
		}
		if p == project && (function == "" || f == function) {
			sum += d.Counter.GetValue()
		}
	}
	return sum
}
