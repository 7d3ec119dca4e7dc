package ward

import (
	"testing"
	"time"
)

func TestParseStatsWindow(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"1s": time.Second, "90s": 90 * time.Second, "1h": time.Hour, "1.5s": 1500 * time.Millisecond, "59m60s": time.Hour} {
		if got, err := ParseStatsWindow(in); err != nil || got != want {
			t.Errorf("ParseStatsWindow(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "60", "999ms", "1h1ns", "-1m", "1x", "1e3s"} {
		_, err := ParseStatsWindow(in)
		if CodeOf(err) != CodeInvalidArgument {
			t.Errorf("ParseStatsWindow(%q): %v, want invalid_argument", in, err)
			continue
		}
		if e := err.(*Error); e.Field != "window" {
			t.Errorf("ParseStatsWindow(%q) names field %q", in, e.Field)
		}
	}
}

// FuzzParseStatsWindow: whatever the input, a window is accepted only
// within bounds, and an error names the field.
func FuzzParseStatsWindow(f *testing.F) {
	for _, s := range []string{"60s", "1h", "999ms", "", "1h0m0.000000001s", "9223372036854775807ns", "-0s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseStatsWindow(s)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Code != CodeInvalidArgument || e.Field != "window" {
				t.Fatalf("ParseStatsWindow(%q) error %v", s, err)
			}
			return
		}
		if d < MinStatsWindow || d > MaxStatsWindow {
			t.Fatalf("ParseStatsWindow(%q) = %v, out of bounds", s, d)
		}
	})
}
