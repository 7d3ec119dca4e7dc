// Package retention enforces retention_days. A pass deletes each project's
// finished tasks past their retention (a function's own retention_days when
// shorter than the project's) and token vault entries not written within
// it, and destroys the project's epoch keys older than the project's
// retention, so the bodies of those tasks are unreadable
// in every copy of the store, backups included (crypto-shredding).
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// Keys destroys epoch keys; *seal.Keystore implements it.
type Keys interface {
	// DestroyBefore destroys the project's epoch keys of the UTC days
	// before t and returns how many it destroyed.
	DestroyBefore(ctx context.Context, project string, t time.Time) (int, error)
}

// Options configure a Purger. Store and Keys are required.
type Options struct {
	Store    store.Store
	Keys     Keys
	Logger   *slog.Logger     // default: discard
	Now      func() time.Time // default: time.Now
	Interval time.Duration    // between passes; default 1h
	Batch    int              // tasks deleted per store call; default 1000
}

// Purger runs retention passes.
type Purger struct {
	opts Options
}

// New returns a Purger. It panics without Store or Keys, a wiring mistake.
func New(opts Options) *Purger {
	if opts.Store == nil || opts.Keys == nil {
		panic("retention: New needs Store and Keys")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	return &Purger{opts: opts}
}

// Report counts what a pass removed.
type Report struct {
	Tasks  int // finished tasks deleted
	Tokens int // token vault entries deleted
	Keys   int // epoch keys destroyed
}

// days returns the duration of n days.
func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// Purge runs one pass over every project. A failing project is logged and
// skipped; the first error is returned after the others were tried.
func (p *Purger) Purge(ctx context.Context) (Report, error) {
	projects, err := p.opts.Store.ListProjects(ctx)
	if err != nil {
		return Report{}, err
	}
	var total Report
	var first error
	for _, pr := range projects {
		r, err := p.purgeProject(ctx, pr)
		total.Tasks += r.Tasks
		total.Tokens += r.Tokens
		total.Keys += r.Keys
		if err != nil {
			p.opts.Logger.Error("retention pass", "project", pr.Name, "err", err)
			if first == nil {
				first = err
			}
		}
	}
	return total, first
}

func (p *Purger) purgeProject(ctx context.Context, pr ward.Project) (Report, error) {
	var r Report
	now := p.opts.Now()
	keep := pr.RetentionDays
	if keep <= 0 {
		keep = ward.DefaultRetentionDays
	}
	fns, err := p.opts.Store.ListFunctions(ctx, pr.Name)
	if err != nil {
		return r, err
	}
	// Shorter function retention first; the project's then covers the rest,
	// the tasks of deleted functions included.
	for _, fn := range fns {
		if d := fn.Spec.RetentionDays; d > 0 && d < keep {
			n, err := p.purgeTasks(ctx, pr.Name, fn.Name, now.Add(-days(d)))
			r.Tasks += n
			if err != nil {
				return r, err
			}
		}
	}
	n, err := p.purgeTasks(ctx, pr.Name, "", now.Add(-days(keep)))
	r.Tasks += n
	if err != nil {
		return r, err
	}
	// Token vault entries not written again within the retention: their
	// tokens stop re-identifying (their keys go below in any case).
	if r.Tokens, err = p.opts.Store.PurgeTokens(ctx, &store.PurgeTokensParams{Project: pr.Name, UpdatedBefore: now.Add(-days(keep))}); err != nil {
		return r, err
	}
	// An epoch key of day D is destroyed once the whole of day D is older
	// than the retention: after the tasks finished that day were deleted.
	if r.Keys, err = p.opts.Keys.DestroyBefore(ctx, pr.Name, now.Add(-days(keep))); err != nil {
		return r, err
	}
	if r.Tasks > 0 || r.Tokens > 0 || r.Keys > 0 {
		p.opts.Logger.Info("retention", "project", pr.Name, "retention_days", keep, "tasks_deleted", r.Tasks,
			"tokens_deleted", r.Tokens, "keys_destroyed", r.Keys)
	}
	return r, nil
}

func (p *Purger) purgeTasks(ctx context.Context, project, function string, before time.Time) (int, error) {
	total := 0
	for {
		n, err := p.opts.Store.PurgeTasks(ctx, &store.PurgeParams{Project: project, Function: function, FinishedBefore: before, Limit: p.opts.Batch})
		total += n
		if err != nil || n < p.opts.Batch {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// Run runs a pass at once and then every Interval until ctx is done.
func (p *Purger) Run(ctx context.Context) {
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		if _, err := p.Purge(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.Error("retention pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
