// Command bench runs the same workloads on ward and on the job queues its
// users would pick instead — River on SQLite and on PostgreSQL, Asynq on
// Redis — and on the bare wasm sandbox, in one invocation on one machine,
// and prints a table of the figures and their ratios.
//
// It lives in its own module so that the peers' libraries never enter
// ward's. Run it from this directory:
//
//	go run . [flags]
//
// It starts PostgreSQL (with the repository's .ci/postgres.sh) and Redis
// where -postgres and -redis do not name running servers, installing them
// with apt-get where it must, and stops them and removes its files when it
// ends. See docs/benchmarks.md for the workloads and the figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	runs           int
	tasks, batch   int
	latencyTasks   int
	latencyRate    float64
	invokeRate     float64
	invokeCount    int
	invokeClients  int
	invokeFor      time.Duration
	cold           int
	workloads      string
	systems        string
	postgres       string
	redis          string
	repo           string
	quick, verbose bool
	cpuProfile     string
}

const usage = `usage: go run . [flags]

Runs workloads on ward and its peers and prints a table (docs/benchmarks.md):
  a  throughput: -tasks tasks inserted in batches of -batch while workers run;
     insert rate and completed tasks/s (ward, River, Asynq, raw sandbox)
  b  latency: -latency-tasks tasks enqueued one at a time at -latency-rate/s;
     enqueue→start p50 and p99 (ward, River, Asynq)
  c  sync invoke over HTTP of a trivial function (ward): p50/p99 at
     -invoke-rate/s, and the rate at saturation (-invoke-clients clients)
  d  cold start (ward): upload a new module, time to its first result
Every figure is the median of -runs runs, with the range in brackets.

Systems (-systems): ward-sqlite, ward-postgres, river-sqlite, river-pgx,
asynq, raw. PostgreSQL and Redis are started, and installed where missing,
unless -postgres or -redis name servers to use.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.IntVar(&o.runs, "runs", 3, "runs of each workload on each system (the figure is their median)")
	fs.IntVar(&o.tasks, "tasks", 50000, "workload a: tasks per run")
	fs.IntVar(&o.batch, "batch", 1000, "workload a: tasks per insert call")
	fs.IntVar(&o.latencyTasks, "latency-tasks", 2000, "workload b: tasks per run")
	fs.Float64Var(&o.latencyRate, "latency-rate", 500, "workload b: tasks enqueued per second")
	fs.Float64Var(&o.invokeRate, "invoke-rate", 500, "workload c: invokes per second at the fixed rate")
	fs.IntVar(&o.invokeCount, "invoke-count", 5000, "workload c: invokes per run at the fixed rate")
	fs.IntVar(&o.invokeClients, "invoke-clients", 32, "workload c: concurrent clients at saturation")
	fs.DurationVar(&o.invokeFor, "invoke-for", 5*time.Second, "workload c: duration of a saturation run")
	fs.IntVar(&o.cold, "cold", 20, "workload d: new modules per run")
	fs.StringVar(&o.workloads, "workloads", "a,b,c,d", "workloads to run")
	fs.StringVar(&o.systems, "systems", "ward-sqlite,ward-postgres,river-sqlite,river-pgx,asynq,raw", "systems to run")
	fs.StringVar(&o.postgres, "postgres", "", "URL of a PostgreSQL server to use (default: start one)")
	fs.StringVar(&o.redis, "redis", "", "address of a Redis server to use (default: start one)")
	fs.StringVar(&o.repo, "repo", "..", "the ward repository (for .ci/postgres.sh and the echo module)")
	fs.BoolVar(&o.quick, "quick", false, "a smoke run: 1 run, small sizes (figures not comparable)")
	fs.BoolVar(&o.verbose, "v", false, "log the platforms' warnings to stderr")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole invocation (go tool pprof) to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.quick {
		o.runs, o.tasks, o.batch, o.latencyTasks, o.invokeCount, o.invokeFor, o.cold = 1, 2000, 100, 100, 200, time.Second, 3
	}
	switch {
	case o.runs < 1, o.tasks < 1, o.batch < 1, o.latencyTasks < 1, o.invokeCount < 1, o.invokeClients < 1, o.cold < 1:
		return o, errors.New("-runs, -tasks, -batch, -latency-tasks, -invoke-count, -invoke-clients and -cold must be positive")
	case o.latencyRate <= 0, o.invokeRate <= 0, o.invokeFor <= 0:
		return o, errors.New("-latency-rate, -invoke-rate and -invoke-for must be positive")
	}
	for w := range strings.SplitSeq(o.workloads, ",") {
		if !slices.Contains([]string{"a", "b", "c", "d"}, w) {
			return o, fmt.Errorf("-workloads: unknown workload %q (a, b, c, d)", w)
		}
	}
	for s := range strings.SplitSeq(o.systems, ",") {
		if !slices.Contains(systemIDs, s) {
			return o, fmt.Errorf("-systems: unknown system %q (%s)", s, strings.Join(systemIDs, ", "))
		}
	}
	return o, nil
}

// systemIDs are the names -systems accepts, in table order.
var systemIDs = []string{"ward-sqlite", "ward-postgres", "river-sqlite", "river-pgx", "asynq", "raw"}

func (o options) has(list, x string) bool { return slices.Contains(strings.Split(list, ","), x) }

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if err := bench(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// report collects the figures of one invocation.
type report struct {
	o        options
	queues   []*queueFigures
	raw      map[string]*figure // completed/s by raw runner name
	invoke   invokeFigures
	cold     coldFigures
	services []string // versions and settings of the servers used
	started  time.Time
}

// queueFigures are one system's figures in workloads a and b.
type queueFigures struct {
	sys                 System
	id                  string
	inserted, completed figure // per second
	p50, p99            figure // seconds
}

type invokeFigures struct {
	p50, p99, satRate, satP50, satP99 figure
}

type coldFigures struct {
	upload, first figure
}

func bench(ctx context.Context, o options, stdout, stderr io.Writer) error {
	base, err := os.MkdirTemp("", "ward-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	module, err := os.ReadFile(filepath.Join(o.repo, "internal", "sandbox", "sandboxtest", "modules", "echo.wasm"))
	if err != nil {
		return fmt.Errorf("the echo module (is -repo the ward repository?): %w", err)
	}
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	env := Env{Logger: logger, Workers: runtime.NumCPU()}
	r := &report{o: o, raw: map[string]*figure{}, started: time.Now()}
	if o.has(o.systems, "ward-postgres") || o.has(o.systems, "river-pgx") {
		progress("starting PostgreSQL…")
		pg, err := startPostgres(ctx, o.postgres, filepath.Join(o.repo, ".ci", "postgres.sh"), base)
		if err != nil {
			return err
		}
		defer pg.Close()
		env.Postgres = pg
		r.services = append(r.services, "PostgreSQL "+pg.Version+" ("+strings.Join(pg.Settings, ", ")+")")
	}
	if o.has(o.systems, "asynq") {
		progress("starting Redis…")
		rd, err := startRedis(ctx, o.redis, base)
		if err != nil {
			return err
		}
		defer rd.Close()
		env.Redis = rd
		r.services = append(r.services, "Redis "+rd.Version+" ("+strings.Join(rd.Settings, ", ")+")")
	}

	all := map[string]System{
		"ward-sqlite":   wardSystem("SQLite", module),
		"ward-postgres": wardSystem("PostgreSQL", module),
		"river-sqlite":  riverSQLite(),
		"river-pgx":     riverPgx(),
		"asynq":         asynqRedis(),
	}
	for _, id := range systemIDs {
		if sys, ok := all[id]; ok && o.has(o.systems, id) {
			r.queues = append(r.queues, &queueFigures{sys: sys, id: id})
		}
	}

	// Runs are interleaved: each round runs every system once, so that a
	// noisy spell on the machine touches them all alike.
	runDir := func() (string, error) { return os.MkdirTemp(base, "run-") }
	for round := 1; round <= o.runs; round++ {
		for _, q := range r.queues {
			for _, w := range []string{"a", "b"} {
				if !o.has(o.workloads, w) {
					continue
				}
				dir, err := runDir()
				if err != nil {
					return err
				}
				e := env
				e.Dir = dir
				if err := runQueue(ctx, q, w, &e, o); err != nil {
					return fmt.Errorf("%s on %s, workload %s: %w", q.sys.Name, q.sys.Store, w, err)
				}
				os.RemoveAll(dir)
				if w == "a" {
					progress("round %d/%d  a  %-6s %-10s  inserted %s/s  completed %s/s", round, o.runs, q.sys.Name, q.sys.Store,
						thousands(q.inserted.runs[len(q.inserted.runs)-1]), thousands(q.completed.runs[len(q.completed.runs)-1]))
				} else {
					progress("round %d/%d  b  %-6s %-10s  p50 %s ms  p99 %s ms", round, o.runs, q.sys.Name, q.sys.Store,
						ms(q.p50.runs[len(q.p50.runs)-1]), ms(q.p99.runs[len(q.p99.runs)-1]))
				}
			}
		}
		if o.has(o.systems, "raw") && o.has(o.workloads, "a") {
			for _, rr := range rawRunners {
				d, err := runRaw(ctx, rr, module, o.tasks, env.Workers)
				if err != nil {
					return fmt.Errorf("%s: %w", rr.name, err)
				}
				if r.raw[rr.name] == nil {
					r.raw[rr.name] = &figure{}
				}
				r.raw[rr.name].add(float64(o.tasks) / d.Seconds())
				progress("round %d/%d  a  %-17s  completed %s/s", round, o.runs, rr.name, thousands(float64(o.tasks)/d.Seconds()))
			}
		}
		if o.has(o.workloads, "c") || o.has(o.workloads, "d") {
			dir, err := runDir()
			if err != nil {
				return err
			}
			e := env
			e.Dir = dir
			if err := runWardOnly(ctx, r, module, &e, o, round, progress); err != nil {
				return err
			}
			os.RemoveAll(dir)
		}
	}
	r.print(stdout)
	return nil
}

// runQueue opens a fresh instance of q's system, runs workload w once and
// records its figures.
func runQueue(ctx context.Context, q *queueFigures, w string, env *Env, o options) (err error) {
	inst, err := q.sys.Open(ctx, env)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, inst.Close()) }()
	if w == "a" {
		insert, total, err := inst.Throughput(ctx, o.tasks, o.batch)
		if err != nil {
			return err
		}
		q.inserted.add(float64(o.tasks) / insert.Seconds())
		q.completed.add(float64(o.tasks) / total.Seconds())
		return nil
	}
	lat, err := inst.Latency(ctx, o.latencyTasks, o.latencyRate)
	if err != nil {
		return err
	}
	if len(lat) != o.latencyTasks {
		return fmt.Errorf("%d latencies for %d tasks", len(lat), o.latencyTasks)
	}
	q.p50.add(percentile(lat, 50))
	q.p99.add(percentile(lat, 99))
	return nil
}

// rawRunner is a way to run the module with no platform around it.
type rawRunner struct {
	name string
	open func(context.Context, []byte) (rawRun, func(), error)
}

var rawRunners = []rawRunner{
	{"sandbox (wasm)", sandboxRunner},
	{"wazero alone", wazeroRunner},
}

func runRaw(ctx context.Context, rr rawRunner, module []byte, count, workers int) (time.Duration, error) {
	run, closeFn, err := rr.open(ctx, module)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	return rawLoop(ctx, run, count, workers)
}

// runWardOnly runs workloads c and d on ward with embedded SQLite, the
// default platform.
func runWardOnly(ctx context.Context, r *report, module []byte, env *Env, o options, round int, progress func(string, ...any)) (err error) {
	n, err := openWard(ctx, env, false, module)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, n.Close()) }()
	if o.has(o.workloads, "c") {
		// Warm: the first invoke prepares the module.
		if err := n.invokeOnce(ctx, -1); err != nil {
			return err
		}
		lat, err := n.invokeFixed(ctx, o.invokeCount, o.invokeRate)
		if err != nil {
			return fmt.Errorf("invoke at a fixed rate: %w", err)
		}
		r.invoke.p50.add(percentile(lat, 50))
		r.invoke.p99.add(percentile(lat, 99))
		rate, sat, err := n.invokeSaturated(ctx, o.invokeClients, o.invokeFor)
		if err != nil {
			return fmt.Errorf("invoke at saturation: %w", err)
		}
		r.invoke.satRate.add(rate)
		r.invoke.satP50.add(percentile(sat, 50))
		r.invoke.satP99.add(percentile(sat, 99))
		progress("round %d/%d  c  ward       SQLite      at %v/s: p50 %s ms  p99 %s ms; saturated: %s/s", round, o.runs, o.invokeRate,
			ms(percentile(lat, 50)), ms(percentile(lat, 99)), thousands(rate))
	}
	if o.has(o.workloads, "d") {
		upload, first, err := n.coldStart(ctx, module, o.cold)
		if err != nil {
			return fmt.Errorf("cold start: %w", err)
		}
		r.cold.upload.add(percentile(upload, 50))
		r.cold.first.add(percentile(first, 50))
		progress("round %d/%d  d  ward       SQLite      upload p50 %s ms  first result p50 %s ms", round, o.runs,
			ms(percentile(upload, 50)), ms(percentile(first, 50)))
	}
	return nil
}
