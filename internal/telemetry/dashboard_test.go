package telemetry

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

// TestDashboardNamesMetrics keeps deploy/grafana/ward.json in step with the
// metrics: every ward_ metric its queries name exists, and every ward_
// metric is on it.
func TestDashboardNamesMetrics(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../deploy/grafana/ward.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}

	// One of everything, so that every family is gathered.
	m := New(Options{Counts: &counter{counts: []store.TaskCount{{Project: "p", Function: "f"}}}})
	m.Submitted("p", "f", 1)
	m.Rejected("p", "f", ward.CodeFunctionRate)
	m.Finished("p", "f", ward.StatusSucceeded, "", time.Second, time.Second)
	m.Request("GET /healthz", 200, time.Millisecond)
	m.ColdStart(ward.RuntimeWasm, time.Second)
	m.WatchRunner(fakeRunner{"r", runner.Stats{Slots: 1}})
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "ward_") {
			have[f.GetName()] = true
		}
	}

	name := regexp.MustCompile(`ward_[a-z_]+`)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base := strings.TrimSuffix(n, suffix); base != n && have[base] {
						n = base
					}
				}
				if !have[n] {
					t.Errorf("panel %q queries %s, which ward does not export", p.Title, n)
				}
				used[n] = true
			}
		}
	}
	for n := range have {
		if !used[n] && n != "ward_metrics_store_errors_total" {
			t.Errorf("%s is on no panel of the dashboard", n)
		}
	}
}
