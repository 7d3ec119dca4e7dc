package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// figure is one measured quantity over several runs.
type figure struct {
	runs []float64
}

func (f *figure) add(v float64) { f.runs = append(f.runs, v) }

func (f *figure) ok() bool { return len(f.runs) > 0 }

// median of the runs.
func (f *figure) median() float64 {
	if len(f.runs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(f.runs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rate formats a per-second figure: "21,530 (20,900–22,100)".
func (f *figure) rate() string {
	if !f.ok() {
		return "–"
	}
	return f.format(func(v float64) string { return thousands(v) })
}

// millis formats a duration figure held in seconds as milliseconds.
func (f *figure) millis() string {
	if !f.ok() {
		return "–"
	}
	s := ms(f.median()) + " ms"
	if len(f.runs) > 1 {
		s += " (" + ms(slices.Min(f.runs)) + "–" + ms(slices.Max(f.runs)) + ")"
	}
	return s
}

func (f *figure) format(one func(float64) string) string {
	s := one(f.median())
	if len(f.runs) > 1 {
		s += " (" + one(slices.Min(f.runs)) + "–" + one(slices.Max(f.runs)) + ")"
	}
	return s
}

// ms formats seconds as milliseconds with a precision fitting the size.
func ms(sec float64) string {
	v := sec * 1000
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// thousands formats v rounded, with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ratio formats a/b as "1.23×", or "–" when either is missing.
func ratio(a, b *figure) string {
	if !a.ok() || !b.ok() || b.median() == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a.median()/b.median())
}

// percentile returns the p-th percentile (0 < p < 100) of d, by the
// nearest-rank method, in seconds.
func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(d))
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))].Seconds()
}
