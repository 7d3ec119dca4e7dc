// Package runner leases tasks from a Source and runs each in a sandbox,
// admitting only tasks that fit its free slots and memory budget (the sum of
// the running tasks' memory limits never exceeds the budget). It heartbeats
// its leases, kills runs whose lease is gone (cancelled or expired), batches
// completions, and on shutdown lets running tasks finish within a grace
// period before giving the rest back to the queue.
//
// A runner drains — takes no new lease, finishes every task it runs, then
// leaves — when Drain is called (SIGTERM), when the platform asks (its state
// turns draining), or on its own after MaxTasks leased tasks or MaxAge
// (recycling). Run then returns nil.
package runner

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/seal/box"
)

// Options configure a Runner.
type Options struct {
	// ID names the runner in leases; default a fresh "r_…" ID.
	ID     string
	Source Source
	// Sandbox runs tasks of its runtime (Capabilities().Runtime);
	// Sandboxes adds sandboxes of other runtimes. The runner leases only
	// tasks of the runtimes it has a sandbox for.
	Sandbox   sandbox.Sandbox
	Sandboxes []sandbox.Sandbox
	Logger    *slog.Logger
	// Slots is the most tasks run at once (default 32 per CPU).
	Slots int
	// MemoryBudgetMB is the memory the runner hands out to tasks by their
	// memory_mb limit (default: half the machine's memory).
	MemoryBudgetMB int
	// Overcommit, above 1, admits tasks whose memory_mb add up to that
	// many times the budget; the container sandbox then caps the tasks
	// together at the budget (see sandbox/oci NodeMemoryMB). Default 1:
	// never overcommitted.
	Overcommit float64
	// HeartbeatInterval is how often leases are extended and cancellations
	// noticed (default 1s; keep it well below the queue's lease TTL).
	HeartbeatInterval time.Duration
	// ShutdownGrace is how long running tasks may finish after shutdown
	// begins; the rest are killed and returned to the queue (default 10s).
	ShutdownGrace time.Duration
	// LeaseWait is the long-poll of one lease call (default 5s).
	LeaseWait time.Duration
	// MaxTasks, when positive, makes the runner drain once it has leased
	// that many tasks; MaxAge, when positive, once it has run that long.
	MaxTasks int
	MaxAge   time.Duration
	// Name, Version, Drivers and Remote describe the runner when it
	// registers (defaults: the host name, ward.Version(), the sandboxes'
	// runtimes).
	Name    string
	Version string
	Drivers []string
	Remote  bool
	// OnColdStart, when set, is told of each code preparation the runner
	// makes (the sandbox did not hold the code: a compile or an unpack),
	// with the runtime and how long it took; failed ones are not told.
	OnColdStart func(rt ward.Runtime, d time.Duration)
}

// coalesceDelay is how long a busy runner lets freed slots gather before it
// leases again.
const coalesceDelay = time.Millisecond

// Runner runs tasks. Create with New, start with Run.
type Runner struct {
	opts      Options
	log       *slog.Logger
	sandboxes map[ward.Runtime]sandbox.Sandbox
	runtimes  []ward.Runtime // the sandboxes', for leasing
	admitMB   int            // the memory_mb it admits in all: the budget times Overcommit

	mu      sync.Mutex
	slots   int // free
	memMB   int // free
	running map[string]*run
	freed   chan struct{} // capacity came back
	// interrupt ends the lease long-poll in flight, if any.
	interrupt context.CancelFunc

	prepMu    sync.Mutex
	preparing map[string]*preparation // in flight, by digest

	results chan Result

	leased     int // tasks leased so far (for MaxTasks)
	drainOnce  sync.Once
	drain      chan struct{} // closed when draining begins
	drainCause string
}

type run struct {
	leaseID string
	cancel  context.CancelFunc
	lost    bool // the lease is gone: do not report a result
}

// preparation is one fetch-and-compile of a digest that concurrent runs of
// the same code wait for instead of repeating it.
type preparation struct {
	done chan struct{}
	err  error
}

// New returns a runner.
func New(opts Options) *Runner {
	if opts.ID == "" {
		opts.ID = NewID()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Slots <= 0 {
		opts.Slots = 32 * runtime.GOMAXPROCS(0)
	}
	if opts.MemoryBudgetMB <= 0 {
		opts.MemoryBudgetMB = DefaultMemoryBudgetMB()
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = time.Second
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	if opts.LeaseWait <= 0 {
		opts.LeaseWait = 5 * time.Second
	}
	sandboxes := map[ward.Runtime]sandbox.Sandbox{}
	var runtimes []ward.Runtime
	for _, sb := range append([]sandbox.Sandbox{opts.Sandbox}, opts.Sandboxes...) {
		if sb == nil {
			continue
		}
		rt := sb.Capabilities().Runtime
		if _, dup := sandboxes[rt]; !dup {
			runtimes = append(runtimes, rt)
		}
		sandboxes[rt] = sb
	}
	if len(opts.Drivers) == 0 {
		for _, rt := range runtimes {
			opts.Drivers = append(opts.Drivers, string(rt))
		}
	}
	if opts.Overcommit < 1 {
		opts.Overcommit = 1
	}
	if opts.Name == "" {
		opts.Name, _ = os.Hostname()
	}
	if opts.Version == "" {
		opts.Version = ward.Version()
	}
	admit := int(float64(opts.MemoryBudgetMB) * opts.Overcommit)
	return &Runner{
		opts:      opts,
		admitMB:   admit,
		log:       opts.Logger.With("runner", opts.ID),
		sandboxes: sandboxes,
		runtimes:  runtimes,
		slots:     opts.Slots,
		memMB:     admit,
		running:   map[string]*run{},
		freed:     make(chan struct{}, 1),
		preparing: map[string]*preparation{},
		results:   make(chan Result, opts.Slots),
		drain:     make(chan struct{}),
	}
}

// ID is the runner's ID.
func (r *Runner) ID() string { return r.opts.ID }

// Drain makes the runner take no new lease, finish the tasks it runs and
// then return from Run with nil. It may be called any number of times.
func (r *Runner) Drain(cause string) {
	r.drainOnce.Do(func() {
		r.mu.Lock()
		r.drainCause = cause
		if r.interrupt != nil {
			r.interrupt()
		}
		r.mu.Unlock()
		r.log.Info("draining", "cause", cause)
		close(r.drain)
	})
}

// Draining is closed once the runner drains.
func (r *Runner) Draining() <-chan struct{} { return r.drain }

// Stats is a runner's capacity at one moment.
type Stats struct {
	MemoryBudgetMB int // the memory handed out to tasks by their memory_mb
	MemoryInUseMB  int // the memory_mb of the tasks it runs (above the budget only with overcommit)
	Slots          int // the most tasks it runs at once
	FreeSlots      int
}

// Stats returns the runner's budget, what of it is in use, and its slots.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{
		MemoryBudgetMB: r.opts.MemoryBudgetMB,
		MemoryInUseMB:  r.admitMB - r.memMB,
		Slots:          r.opts.Slots,
		FreeSlots:      r.slots,
	}
}

// Leased returns how many tasks the runner has leased so far.
func (r *Runner) Leased() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leased
}

// register records the runner with its Source, retrying while the Source
// is unreachable until ctx ends.
func (r *Runner) register(ctx context.Context) error {
	info := ward.Runner{
		ID:       r.opts.ID,
		Name:     r.opts.Name,
		Version:  r.opts.Version,
		Drivers:  r.opts.Drivers,
		Slots:    r.opts.Slots,
		MemoryMB: r.opts.MemoryBudgetMB,
		MaxTasks: r.opts.MaxTasks,
		MaxAgeS:  int(r.opts.MaxAge / time.Second),
		Remote:   r.opts.Remote,
	}
	wait := 500 * time.Millisecond
	for {
		err := r.opts.Source.Register(ctx, info)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		r.log.Warn("could not register; retrying", "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// NewID returns a fresh runner ID.
func NewID() string {
	u := uuid.Must(uuid.NewV7())
	return "r_" + hex.EncodeToString(u[:])
}

// Run registers the runner, then leases and runs tasks until it drains or
// ctx is done. Draining lets every running task finish; a done ctx gives
// them ShutdownGrace, then kills the rest and releases their leases. Either
// way every finished result is reported and the runner is recorded as
// drained before Run returns.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.register(ctx); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if r.opts.MaxAge > 0 {
		t := time.AfterFunc(r.opts.MaxAge, func() { r.Drain("max age reached") })
		defer t.Stop()
	}
	// Task runs and reporting outlive ctx so that shutdown can be graceful.
	runCtx, killAll := context.WithCancel(context.WithoutCancel(ctx))
	defer killAll()
	var tasks sync.WaitGroup
	reported := make(chan struct{})
	go func() {
		r.report(runCtx)
		close(reported)
	}()
	hbDone := make(chan struct{})
	hbCtx, stopHB := context.WithCancel(runCtx)
	go func() {
		r.heartbeat(hbCtx)
		close(hbDone)
	}()

	leaseCtx, stopLeasing := context.WithCancel(ctx)
	go func() {
		select {
		case <-r.drain:
		case <-leaseCtx.Done():
		}
		stopLeasing()
	}()
	r.leaseLoop(leaseCtx, runCtx, &tasks)
	stopLeasing()

	// Shutdown: wait for running tasks — all of them when draining, until
	// the grace period after ctx ends otherwise.
	done := make(chan struct{})
	go func() {
		tasks.Wait()
		close(done)
	}()
	var grace <-chan time.Time
	select {
	case <-done:
	case <-ctx.Done():
		grace = time.After(r.opts.ShutdownGrace)
	}
	select {
	case <-done:
	case <-grace:
		r.mu.Lock()
		n := len(r.running)
		for _, rn := range r.running {
			rn.lost = true // killed by shutdown: released below, not failed
			rn.cancel()
		}
		r.mu.Unlock()
		r.log.Warn("shutdown grace over, returning running tasks to the queue", "tasks", n)
		<-done
	}
	stopHB()
	<-hbDone
	close(r.results)
	<-reported
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.opts.Source.Release(relCtx, r.opts.ID); err != nil {
		return err
	}
	if err := r.opts.Source.Drained(relCtx, r.opts.ID); err != nil {
		return err
	}
	r.mu.Lock()
	cause := r.drainCause
	r.mu.Unlock()
	if cause == "" {
		cause = "shutdown"
	}
	r.log.Info("drained", "cause", cause, "leased", r.Leased())
	return nil
}

func (r *Runner) leaseLoop(ctx, runCtx context.Context, tasks *sync.WaitGroup) {
	coalesced := false
	for ctx.Err() == nil {
		r.mu.Lock()
		slots, mem := r.slots, r.memMB
		spent := r.opts.MaxTasks > 0 && r.leased >= r.opts.MaxTasks
		if r.opts.MaxTasks > 0 {
			slots = min(slots, r.opts.MaxTasks-r.leased)
		}
		r.mu.Unlock()
		if spent {
			r.Drain("max tasks reached")
			return
		}
		if slots == 0 || mem == 0 {
			select {
			case <-r.freed:
			case <-ctx.Done():
			}
			continue
		}
		if slots < r.opts.Slots/2 && !coalesced {
			// Most slots are busy: let a few more runs end so that one
			// lease call fills several slots instead of one each.
			coalesced = true
			select {
			case <-time.After(coalesceDelay):
			case <-ctx.Done():
			}
			continue
		}
		coalesced = false
		// The long-poll asked for what was free when it began; when a run
		// ends, interrupt it so that the next request asks for more.
		lctx, interrupt := context.WithCancel(ctx)
		r.mu.Lock()
		r.interrupt = interrupt
		r.mu.Unlock()
		jobs, err := r.opts.Source.Lease(lctx, &LeaseRequest{RunnerID: r.opts.ID, Max: slots, FreeMemoryMB: mem, Wait: r.opts.LeaseWait, Runtimes: r.runtimes})
		r.mu.Lock()
		r.interrupt = nil
		r.mu.Unlock()
		interrupt()
		if err != nil {
			if errors.Is(err, ward.ErrRunnerDraining) {
				r.Drain("asked by the platform")
				return
			}
			if ctx.Err() != nil {
				// A lease may have been granted as ctx ended; Release covers it.
				return
			}
			if lctx.Err() != nil {
				continue // capacity came back
			}
			r.log.Error("lease", "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
			continue
		}
		for _, j := range jobs {
			tctx, cancel := context.WithCancel(runCtx)
			rn := &run{leaseID: j.LeaseID, cancel: cancel}
			r.mu.Lock()
			r.slots--
			r.memMB -= j.MemoryMB
			r.leased++
			if old, ok := r.running[j.TaskID]; ok {
				// The task was re-leased: our older lease expired, so that
				// run is lost.
				old.lost = true
				old.cancel()
			}
			r.running[j.TaskID] = rn
			r.mu.Unlock()
			tasks.Add(1)
			go func() {
				defer tasks.Done()
				r.execute(tctx, j, rn)
			}()
		}
	}
}

// execute runs one job and queues its result.
func (r *Runner) execute(ctx context.Context, j Job, rn *run) {
	res := r.runJob(ctx, j)
	r.mu.Lock()
	if r.running[j.TaskID] == rn {
		delete(r.running, j.TaskID)
	}
	lost := rn.lost
	r.mu.Unlock()
	rn.cancel()
	if !lost {
		r.results <- res
	}
	// The slot comes back only once the result is handed over, so reporting
	// applies back-pressure to leasing.
	r.mu.Lock()
	r.slots++
	r.memMB += j.MemoryMB
	if r.interrupt != nil {
		r.interrupt()
	}
	r.mu.Unlock()
	select {
	case r.freed <- struct{}{}:
	default:
	}
}

func (r *Runner) runJob(ctx context.Context, j Job) Result {
	res := Result{TaskID: j.TaskID, LeaseID: j.LeaseID, Project: j.Project, Retry: j.Retry}
	spec := &sandbox.Spec{
		Digest: j.CodeDigest,
		Stdin:  j.Payload,
		Env: map[string]string{
			"WARD_TASK_ID":      j.TaskID,
			"WARD_PROJECT":      j.Project,
			"WARD_FUNCTION":     j.Function,
			"WARD_ATTEMPT":      strconv.Itoa(j.Retry.Attempt),
			"WARD_PAYLOAD_FILE": "/ward/payload",
			"WARD_CONFIG_FILE":  "/ward/config.json",
			"WARD_SECRETS_DIR":  "/ward/secrets",
		},
		Files:       make(map[string][]byte, 2+len(j.Secrets)),
		MemoryMB:    j.MemoryMB,
		Timeout:     j.Timeout,
		StdoutLimit: j.ResultLimit, // 0: the sandbox's default
		StderrLimit: j.LogLimit,
	}
	spec.Files["payload"], spec.Files["config.json"] = j.Payload, j.Config
	if j.Sealed {
		spec.Env["WARD_PAYLOAD_SEALED"] = "1"
	}
	for name, v := range j.Secrets {
		spec.Files["secrets/"+name] = v
		spec.Redact = append(spec.Redact, string(v))
		// A value stored with surrounding whitespace is often printed
		// without it.
		if t := strings.TrimSpace(string(v)); t != "" && len(t) != len(v) {
			spec.Redact = append(spec.Redact, t)
		}
	}
	if ls, ok := r.opts.Source.(LogStreamer); ok {
		f := newLogForwarder(ctx, ls, &j, func(err error) {
			r.log.Warn("live log stopped", "task", j.TaskID, "err", err)
		})
		defer f.stop()
		spec.LogSink = f.sink
	}
	sb := r.sandboxes[j.runtime()]
	if sb == nil {
		r.log.Error("no sandbox for the task's runtime", "task", j.TaskID, "runtime", j.runtime())
		res.Code, res.Message = ward.CodeInternal, "the runner has no sandbox for runtime "+string(j.runtime())
		return res
	}
	out, err := sb.Run(ctx, spec)
	if ward.CodeOf(err) == ward.CodeNotFound {
		// The sandbox does not hold the code (first use, or evicted): fetch
		// and prepare it, then run.
		if err := r.prepare(ctx, sb, j.Project, j.CodeDigest); err != nil {
			res.Code, res.Message = ward.CodeCodeRejected, "code could not be prepared"
			if ward.CodeOf(err) != ward.CodeInvalidModule {
				res.Code = ward.CodeInternal
			}
			r.log.Error("prepare code", "task", j.TaskID, "digest", j.CodeDigest, "err", err)
			return res
		}
		out, err = sb.Run(ctx, spec)
	}
	if err != nil {
		r.log.Error("sandbox run", "task", j.TaskID, "err", err)
		res.Code, res.Message = ward.CodeInternal, "the sandbox could not run the task"
		return res
	}
	res.Code, res.Message, res.ExitCode = out.Code, out.Message, out.ExitCode
	res.Stdout, res.Stderr, res.Usage = out.Stdout, out.Stderr, out.Usage
	if j.Sealed && out.Code == ward.CodeExitStatus && out.ExitCode != nil && *out.ExitCode == ward.ExitUnsealFailed {
		res.Code, res.Message = box.CodeOpenFailed, "the task could not open its sealed payload: sealed for another project or function, or altered"
	}
	return res
}

// prepare fetches a digest's code from the project and has the sandbox
// compile it. Runs of the same digest that need it at the same time share
// one preparation (the same digest is the same code in any project).
func (r *Runner) prepare(ctx context.Context, sb sandbox.Sandbox, project, digest string) error {
	r.prepMu.Lock()
	p, ok := r.preparing[digest]
	if !ok {
		p = &preparation{done: make(chan struct{})}
		r.preparing[digest] = p
	}
	r.prepMu.Unlock()
	if ok {
		select {
		case <-p.done:
			return p.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	code, err := r.opts.Source.Code(ctx, project, digest)
	if err == nil {
		start := time.Now()
		err = sb.Prepare(ctx, sandbox.Artifact{Digest: digest, Code: code})
		if err == nil && r.opts.OnColdStart != nil {
			r.opts.OnColdStart(sb.Capabilities().Runtime, time.Since(start))
		}
	}
	p.err = err
	r.prepMu.Lock()
	delete(r.preparing, digest)
	r.prepMu.Unlock()
	close(p.done)
	return err
}

// report sends results to the Source in batches until results is closed.
func (r *Runner) report(ctx context.Context) {
	const maxBatch = 256
	batch := make([]Result, 0, maxBatch)
	for res := range r.results {
		batch = append(batch[:0], res)
	drain:
		for len(batch) < maxBatch {
			select {
			case more, ok := <-r.results:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		r.complete(ctx, batch)
	}
}

// complete reports one batch, retrying for a while; if the Source stays
// unreachable the leases expire and the tasks run again, so nothing is lost.
func (r *Runner) complete(ctx context.Context, batch []Result) {
	delay := 100 * time.Millisecond
	for try := 0; ; try++ {
		errs, err := r.opts.Source.Complete(ctx, batch)
		if err == nil {
			for i, e := range errs {
				if e != nil && errors.Is(e, ward.ErrStaleLease) {
					r.log.Info("result of a lost lease ignored", "task", batch[i].TaskID)
				} else if e != nil {
					r.log.Error("complete", "task", batch[i].TaskID, "err", e)
				}
			}
			return
		}
		if try == 5 || ctx.Err() != nil {
			r.log.Error("complete failed; leases will expire and the tasks run again", "tasks", len(batch), "err", err)
			return
		}
		time.Sleep(delay)
		delay *= 2
	}
}

// heartbeat extends leases and kills runs whose lease is gone.
func (r *Runner) heartbeat(ctx context.Context) {
	t := time.NewTicker(r.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		refs := make([]LeaseRef, 0, len(r.running))
		for id, rn := range r.running {
			if !rn.lost {
				refs = append(refs, LeaseRef{TaskID: id, LeaseID: rn.leaseID})
			}
		}
		r.mu.Unlock()
		reply, err := r.opts.Source.Heartbeat(ctx, r.opts.ID, refs)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("heartbeat", "err", err)
			}
			continue
		}
		if reply.State != "" && reply.State != ward.RunnerActive {
			r.Drain("asked by the platform")
		}
		stopped := 0
		r.mu.Lock()
		for _, id := range reply.Lost {
			// A run that ended since the heartbeat began is not running.
			if rn, ok := r.running[id]; ok && !rn.lost {
				rn.lost = true
				rn.cancel()
				stopped++
			}
		}
		r.mu.Unlock()
		if stopped > 0 {
			r.log.Info("stopped runs whose lease is gone", "tasks", stopped)
		}
	}
}
