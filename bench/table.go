package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// print writes the report as Markdown: the tables, the targets and the
// settings of every system.
func (r *report) print(w io.Writer) {
	o := r.o
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("# ward benchmark, %s", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	p("")
	p("- Machine: %s", machine())
	p("- Go %s; %s", strings.TrimPrefix(runtime.Version(), "go"), versions())
	for _, s := range r.services {
		p("- %s", s)
	}
	p("- Command: `go run . %s` (in bench/)", strings.Join(os.Args[1:], " "))
	p("- Every figure: the median of %d run(s), the range in brackets.", o.runs)

	wardOn := map[string]*queueFigures{}
	for _, q := range r.queues {
		if q.sys.Name == "ward" {
			wardOn[q.sys.Store] = q
		}
	}
	ws, wp := wardOn["SQLite"], wardOn["PostgreSQL"]
	fig := func(q *queueFigures, f func(*queueFigures) *figure) *figure {
		if q == nil {
			return &figure{}
		}
		return f(q)
	}
	completed := func(q *queueFigures) *figure { return &q.completed }
	p50 := func(q *queueFigures) *figure { return &q.p50 }
	p99 := func(q *queueFigures) *figure { return &q.p99 }

	if o.has(o.workloads, "a") {
		p("")
		p("## a. Throughput: %s tasks inserted in batches of %s, workers running", thousands(float64(o.tasks)), thousands(float64(o.batch)))
		p("")
		p("| system | store | inserted/s | completed/s | ward on SQLite ÷ this | ward on PostgreSQL ÷ this |")
		p("|---|---|---|---|---|---|")
		for _, q := range r.queues {
			p("| %s | %s | %s | %s | %s | %s |", q.sys.Name, q.sys.Store, q.inserted.rate(), q.completed.rate(),
				ratio(fig(ws, completed), &q.completed), ratio(fig(wp, completed), &q.completed))
		}
		for _, rr := range rawRunners {
			if f := r.raw[rr.name]; f != nil {
				p("| raw: %s | – | – | %s | %s | %s |", rr.name, f.rate(), ratio(fig(ws, completed), f), ratio(fig(wp, completed), f))
			}
		}
	}
	if o.has(o.workloads, "b") {
		p("")
		p("## b. Enqueue→start latency: %s tasks enqueued one at a time at %s/s", thousands(float64(o.latencyTasks)), thousands(o.latencyRate))
		p("")
		p("| system | store | p50 | p99 | ward on PostgreSQL ÷ this: p50, p99 |")
		p("|---|---|---|---|---|")
		for _, q := range r.queues {
			p("| %s | %s | %s | %s | %s, %s |", q.sys.Name, q.sys.Store, q.p50.millis(), q.p99.millis(),
				ratio(fig(wp, p50), &q.p50), ratio(fig(wp, p99), &q.p99))
		}
	}
	if o.has(o.workloads, "c") {
		p("")
		p("## c. Sync invoke of the trivial function over HTTP (ward on SQLite)")
		p("")
		p("| at %s/s: p50 | p99 | saturated (%d clients): requests/s | p50 | p99 |", thousands(o.invokeRate), o.invokeClients)
		p("|---|---|---|---|---|")
		iv := &r.invoke
		p("| %s | %s | %s | %s | %s |", iv.p50.millis(), iv.p99.millis(), iv.satRate.rate(), iv.satP50.millis(), iv.satP99.millis())
	}
	if o.has(o.workloads, "d") {
		p("")
		p("## d. Cold start: a new module uploaded, then invoked once (ward on SQLite, %d modules per run, p50 of each run)", o.cold)
		p("")
		p("| upload | first result after the upload |")
		p("|---|---|")
		p("| %s | %s |", r.cold.upload.millis(), r.cold.first.millis())
	}
	r.printTargets(p, ws, wp)
	p("")
	p("## Settings")
	p("")
	for _, q := range r.queues {
		p("- %s on %s: %s", q.sys.Name, q.sys.Store, strings.Join(q.sys.Settings, ", "))
	}
	if len(r.raw) > 0 {
		p("- raw: the echo module run %s times on %d goroutines: in ward's sandbox with the spec a runner gives a task; with wazero alone (WASI, stdin, stdout)", thousands(float64(o.tasks)), runtime.NumCPU())
	}
}

// printTargets says, for each target of docs/benchmarks.md, whether this
// run met it.
func (r *report) printTargets(p func(string, ...any), ws, wp *queueFigures) {
	peer := map[string]*queueFigures{}
	for _, q := range r.queues {
		if q.sys.Name != "ward" {
			peer[q.id] = q
		}
	}
	var lines []string
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**missed**"
	}
	atLeast := func(what string, a, b *figure, factor float64) {
		if a.ok() && b.ok() {
			lines = append(lines, fmt.Sprintf("%s: %s against %s (%.2f×) — %s", what, thousands(a.median()), thousands(b.median()),
				a.median()/b.median(), verdict(a.median() >= factor*b.median())))
		}
	}
	if ws != nil && peer["river-sqlite"] != nil {
		atLeast("Throughput ≥ River's, on SQLite (completed/s)", &ws.completed, &peer["river-sqlite"].completed, 1)
	}
	if wp != nil && peer["river-pgx"] != nil {
		atLeast("Throughput ≥ River's, on PostgreSQL (completed/s)", &wp.completed, &peer["river-pgx"].completed, 1)
		rp := peer["river-pgx"]
		if wp.p50.ok() && rp.p50.ok() {
			lines = append(lines, fmt.Sprintf("Enqueue→start no worse than River's on PostgreSQL: p50 %s against %s ms, p99 %s against %s ms — %s",
				ms(wp.p50.median()), ms(rp.p50.median()), ms(wp.p99.median()), ms(rp.p99.median()),
				verdict(wp.p50.median() <= rp.p50.median() && wp.p99.median() <= rp.p99.median())))
		}
	}
	if raw := r.raw["sandbox (wasm)"]; raw != nil && ws != nil {
		atLeast("End-to-end rate ≥ half the raw sandbox's (ward on SQLite, completed/s)", &ws.completed, raw, 0.5)
	}
	if iv := &r.invoke; iv.p50.ok() {
		lines = append(lines, fmt.Sprintf("Sync invoke at %s/s: p50 %s ms (≤ 1), p99 %s ms (≤ 5) — %s", thousands(r.o.invokeRate),
			ms(iv.p50.median()), ms(iv.p99.median()), verdict(iv.p50.median() <= 0.001 && iv.p99.median() <= 0.005)))
	}
	if c := &r.cold; c.first.ok() {
		lines = append(lines, fmt.Sprintf("Cold start, first result after upload: p50 %s ms (≤ 20) — %s", ms(c.first.median()), verdict(c.first.median() <= 0.020)))
	}
	if len(lines) == 0 {
		return
	}
	p("")
	p("## Targets")
	p("")
	for _, l := range lines {
		p("- %s", l)
	}
}

// machine describes the CPU, memory and kernel.
func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	s := fmt.Sprintf("%s, %d CPUs (GOMAXPROCS %d)", model, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, ok := strings.Cut(string(b), "\n"); ok {
			s += ", " + strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ") + " memory"
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		s += ", Linux " + strings.TrimSpace(string(b))
	}
	return s
}

// versions lists the versions of the libraries under test, from the build.
func versions() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "library versions unknown"
	}
	var out []string
	for _, m := range bi.Deps {
		switch m.Path {
		case "github.com/riverqueue/river", "github.com/riverqueue/river/riverdriver/riversqlite", "github.com/hibiken/asynq",
			"github.com/tetratelabs/wazero", "github.com/jackc/pgx/v5", "modernc.org/sqlite", "github.com/redis/go-redis/v9":
			out = append(out, m.Path+" "+m.Version)
		}
	}
	return strings.Join(out, ", ")
}
