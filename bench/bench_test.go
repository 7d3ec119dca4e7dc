package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

func echoModule(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "internal", "sandbox", "sandboxtest", "modules", "echo.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFigures(t *testing.T) {
	t.Parallel()
	var f figure
	if f.rate() != "–" || f.millis() != "–" || !math.IsNaN(f.median()) {
		t.Fatalf("empty figure: %q %q %v", f.rate(), f.millis(), f.median())
	}
	for _, v := range []float64{3000.4, 1000, 2000} {
		f.add(v)
	}
	if f.median() != 2000 || f.rate() != "2,000 (1,000–3,000)" {
		t.Fatalf("median %v, rate %q", f.median(), f.rate())
	}
	f.add(4000)
	if f.median() != 2500.2 {
		t.Fatalf("median of four = %v", f.median())
	}
	var d figure
	d.add(0.002)
	d.add(0.046)
	if got := d.millis(); got != "24.0 ms (2.00–46.0)" {
		t.Fatalf("millis = %q", got)
	}
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
	var a, b figure
	a.add(3)
	if ratio(&a, &b) != "–" {
		t.Fatal("ratio with a missing figure")
	}
	b.add(2)
	if got := ratio(&a, &b); got != "1.50×" {
		t.Fatalf("ratio = %q", got)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]float64{50: 0.050, 99: 0.099, 100: 0.100, 1: 0.001} {
		if got := percentile(d, p); math.Abs(got-want) > 1e-9 {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if d[0] != 100*time.Millisecond {
		t.Fatal("percentile sorted its argument")
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Fatal("percentile of nothing")
	}
}

// TestCustomSection checks that a module with the appended section is still
// valid wasm, under another digest.
func TestCustomSection(t *testing.T) {
	t.Parallel()
	mod := echoModule(t)
	a := withCustomSection(mod, "ward-bench", []byte("one"))
	b := withCustomSection(mod, "ward-bench", []byte(strings.Repeat("x", 300))) // a two-byte section size
	if sha256.Sum256(a) == sha256.Sum256(mod) || sha256.Sum256(a) == sha256.Sum256(b) {
		t.Fatal("the digest did not change")
	}
	rt := wazero.NewRuntime(t.Context())
	defer rt.Close(t.Context())
	for _, m := range [][]byte{a, b} {
		if _, err := rt.CompileModule(t.Context(), m); err != nil {
			t.Fatalf("module with a custom section: %v", err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"-quick"}, io.Discard)
	if err != nil || o.runs != 1 || o.tasks != 2000 {
		t.Fatalf("-quick = %+v, %v", o, err)
	}
	for _, args := range [][]string{
		{"-runs", "0"}, {"-latency-rate", "-1"}, {"-workloads", "a,e"}, {"-systems", "ward-sqlite,sidekiq"}, {"extra"}, {"-nope"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// TestWard runs every workload on ward, small, and checks the figures make
// sense.
func TestWard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mod := echoModule(t)
	env := &Env{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), Workers: 2}
	n, err := openWard(ctx, env, false, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	insert, total, err := n.Throughput(ctx, 300, 100)
	if err != nil || insert <= 0 || total < insert {
		t.Fatalf("Throughput = %v, %v, %v", insert, total, err)
	}
	lat, err := n.Latency(ctx, 20, 200)
	if err != nil || len(lat) != 20 {
		t.Fatalf("Latency = %d latencies, %v", len(lat), err)
	}
	for _, l := range lat {
		if l <= 0 {
			t.Fatalf("latency %v", l)
		}
	}
	fixed, err := n.invokeFixed(ctx, 20, 200)
	if err != nil || len(fixed) != 20 || percentile(fixed, 50) <= 0 {
		t.Fatalf("invokeFixed = %v, %v", fixed, err)
	}
	rate, sat, err := n.invokeSaturated(ctx, 4, 200*time.Millisecond)
	if err != nil || rate <= 0 || len(sat) == 0 {
		t.Fatalf("invokeSaturated = %v, %d, %v", rate, len(sat), err)
	}
	up, first, err := n.coldStart(ctx, mod, 2)
	if err != nil || len(up) != 2 || len(first) != 2 {
		t.Fatalf("coldStart = %v, %v, %v", up, first, err)
	}
}

func TestRawRunners(t *testing.T) {
	t.Parallel()
	mod := echoModule(t)
	for _, rr := range rawRunners {
		d, err := runRaw(t.Context(), rr, mod, 50, 2)
		if err != nil || d <= 0 {
			t.Errorf("%s: %v, %v", rr.name, d, err)
		}
	}
	// A run that fails stops the loop with its error.
	calls := 0
	_, err := rawLoop(t.Context(), func(ctx context.Context, p []byte) error {
		calls++
		return errors.New("no echo")
	}, 10, 1)
	if err == nil || err.Error() != "no echo" || calls != 1 {
		t.Fatalf("rawLoop with a failing run = %v after %d calls", err, calls)
	}
}
