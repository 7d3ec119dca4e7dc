package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/pki"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/runner/remote"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/wasm"
	"github.com/wardhq/ward/internal/server"
)

// defaultRunnerDir holds a runner's identity and caches without --dir.
const defaultRunnerDir = ".ward-runner"

func newRunnerCmd(g *globals) *cobra.Command {
	cmd := groupCmd("runner", "Join, run, list and drain the runners that run tasks")
	cmd.Long = `Runners run the tasks. 'ward dev' has one inside; a cluster of 'ward server'
processes has remote runners: each joins once with a one-time token
('ward runner token', then 'ward runner join'), which gets it a certificate
of the cluster CA, then runs with 'ward runner run', leasing tasks from a
server's internal API over mutual TLS. A runner needs no database access and
no shared secret: its certificate names it.

A runner drains — takes no new task, finishes those it runs, exits 0 — on
SIGTERM or SIGINT (a second one stops it at once, returning its tasks to the
queue), when asked ('ward runner drain ID'), or on its own after
--max-tasks tasks or --max-age (recycling: let the supervisor start a fresh
one).`
	cmd.AddCommand(newRunnerListCmd(g), newRunnerDrainCmd(g), newRunnerTokenCmd(g), newRunnerJoinCmd(g), newRunnerRunCmd(g))
	return cmd
}

func newRunnerListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the runners, their state and load (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			rs, err := c.ListRunners(cmd.Context())
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, map[string][]ward.Runner{"runners": nonNil(rs)})
			}
			return writeRunners(g.stdout, rs, g.now())
		},
	}
}

func writeRunners(w io.Writer, rs []ward.Runner, now time.Time) error {
	t := newTable(w)
	t.row("ID", "STATE", "NAME", "DRIVERS", "RUNNING", "SLOTS", "MEMORY_MB", "REMOTE", "VERSION", "SEEN")
	for _, r := range rs {
		seen := now.Sub(r.LastSeenAt).Truncate(time.Second).String() + " ago"
		drivers := make([]string, len(r.Drivers))
		for i, d := range r.Drivers {
			drivers[i] = safe(d)
		}
		t.row(r.ID, string(r.State), orDash(safe(r.Name)), orDash(strings.Join(drivers, ",")), strconv.Itoa(r.Running), strconv.Itoa(r.Slots),
			strconv.Itoa(r.MemoryMB), strconv.FormatBool(r.Remote), orDash(safe(r.Version)), seen)
	}
	return t.flush()
}

func newRunnerDrainCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "drain ID",
		Short: "Take a runner out of rotation: it finishes its tasks and exits (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			r, err := c.DrainRunner(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, r)
			}
			fmt.Fprintf(g.stdout, "runner %s is %s; it takes no new task and exits once its %d running task(s) end\n", r.ID, r.State, r.Running)
			return nil
		},
	}
}

func newRunnerTokenCmd(g *globals) *cobra.Command {
	var ttl string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make a one-time join token for one new runner (admin)",
		Long: `Make a token with which one runner joins the cluster ('ward runner join').
It works once, until it expires, and pins the cluster CA, so the runner
trusts only this cluster's servers. Treat it as a secret until it is used.`,
		Example: `  ward runner token --ttl 15m`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.CreateJoinToken(cmd.Context(), ttl)
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, t)
			}
			fmt.Fprintln(g.stdout, t.Token)
			return nil
		},
	}
	cmd.Flags().StringVar(&ttl, "ttl", "", "how long the token stays usable (default 1h, at most 168h)")
	return cmd
}

func newRunnerJoinCmd(g *globals) *cobra.Command {
	var dir, token string
	cmd := &cobra.Command{
		Use:   "join URL --token TOKEN [--dir DIR]",
		Short: "Join a cluster: trade a join token for this runner's certificate",
		Long: `Join the cluster whose internal runner API is at URL (https://host:7071) with a
one-time token from 'ward runner token' (or WARD_JOIN_TOKEN). A key pair is
made here; the private key never leaves DIR (runner.key, mode 0600), where
the certificate (runner.crt) and the cluster's CAs (ca.crt) are written too.`,
		Example: `  ward runner join https://ward-internal:7071 --token "$JOIN_TOKEN" --dir /var/lib/ward-runner`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token = firstNonEmpty(token, g.getenv("WARD_JOIN_TOKEN"))
			if token == "" {
				return usagef("join needs --token or WARD_JOIN_TOKEN")
			}
			id, err := joinCluster(cmd.Context(), args[0], token, dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "joined as %s; identity in %s (certificate valid until %s)\n", id.RunnerID, dir, fmtTime(id.Expires()))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultRunnerDir, "the runner's directory (identity, caches)")
	cmd.Flags().StringVar(&token, "token", "", "the one-time join token (env WARD_JOIN_TOKEN)")
	return cmd
}

// joinCluster joins and saves the identity in dir, refusing to replace one.
func joinCluster(ctx context.Context, url, token, dir string) (pki.Identity, error) {
	if _, err := pki.LoadIdentity(dir); err == nil {
		return pki.Identity{}, ward.Errorf(ward.CodeAlreadyExists, "%s already holds a runner identity; remove it to join again", dir)
	}
	id, err := remote.Join(ctx, url, token)
	if err != nil {
		return pki.Identity{}, fmt.Errorf("join %s: %w", url, err)
	}
	if err := pki.SaveIdentity(dir, id); err != nil {
		return pki.Identity{}, err
	}
	return id, nil
}

func newRunnerRunCmd(g *globals) *cobra.Command {
	var (
		dir, token, logLevel string
		slots, budget        int
		maxTasks             int
		maxAge, grace        time.Duration
		containers           containerFlags
	)
	cmd := &cobra.Command{
		Use:   "run URL... [--dir DIR]",
		Short: "Run tasks leased from the cluster's internal API at URL",
		Long: `Run tasks leased from the internal runner API at URL (a load balancer, or
several servers' URLs, used in turn when one cannot be reached) with the
identity in DIR
(made by 'ward runner join'; with --join-token, or WARD_JOIN_TOKEN, a runner
without one joins first). Tasks run in the wasm sandbox, and container (oci)
tasks in containers on --oci-runtime where the host can (root, cgroups, runc;
otherwise the runner says why at start and takes wasm tasks only), never more
than --slots at once and never more memory than --memory-budget in all, by
each task's memory_mb (times --overcommit).

The runner drains — takes no new task, finishes those it runs, exits 0 — on
SIGTERM or SIGINT, when an admin runs 'ward runner drain ID', after
--max-tasks tasks, or after --max-age. A second SIGTERM or SIGINT stops it
within --grace, returning unfinished tasks to the queue. A runner that
vanishes loses its leases when they expire; its tasks run again elsewhere.`,
		Example: `  ward runner run https://ward-internal:7071 --dir /var/lib/ward-runner
  ward runner run https://ward-1:7071 https://ward-2:7071 --max-tasks 1000 --max-age 6h`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level: %w", err)}
			}
			if maxTasks < 0 || maxAge < 0 {
				return usagef("--max-tasks and --max-age must not be negative")
			}
			ctrs, err := containers.config()
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			ctx := cmd.Context()
			id, err := pki.LoadIdentity(dir)
			if errors.Is(err, fs.ErrNotExist) {
				token = firstNonEmpty(token, g.getenv("WARD_JOIN_TOKEN"))
				if token == "" {
					return fmt.Errorf("%s holds no runner identity: run 'ward runner join' or give --join-token", dir)
				}
				if id, err = joinCluster(ctx, args[0], token, dir); err != nil {
					return err
				}
				logger.Info("joined the cluster", "runner", id.RunnerID)
			} else if err != nil {
				return err
			}
			tlsConf, err := id.ClientTLS()
			if err != nil {
				return err
			}
			// The CAs a registration names are saved and trusted at once,
			// so a CA staged for rotation needs no second restart.
			src, err := remote.NewClient(args, tlsConf, func(bundle []byte) (*tls.Config, error) {
				if string(bundle) == string(id.CAPEM) {
					return nil, nil
				}
				id.CAPEM = bundle
				if err := pki.SaveIdentity(dir, id); err != nil {
					return nil, err
				}
				return id.ClientTLS()
			})
			if err != nil {
				return err
			}
			defer src.Close()
			sb, err := wasm.New(ctx, wasm.Options{Logger: logger, CacheDir: filepath.Join(dir, "cache", "wasm")})
			if err != nil {
				return err
			}
			defer sb.Close(context.WithoutCancel(ctx))
			var more []sandbox.Sandbox
			if ctrs.On {
				ctr, err := server.OpenContainers(ctx, ctrs, budget, logger)
				if err != nil {
					logger.Warn("container tasks cannot run on this runner; wasm tasks can", "reason", err)
				} else {
					defer ctr.Close(context.WithoutCancel(ctx))
					more = append(more, ctr)
				}
			}
			r := runner.New(runner.Options{
				ID: id.RunnerID, Source: src, Sandbox: sb, Sandboxes: more, Logger: logger,
				Slots: slots, MemoryBudgetMB: budget, Overcommit: ctrs.Overcommit, ShutdownGrace: grace,
				MaxTasks: maxTasks, MaxAge: maxAge,
				Remote: true,
			})
			// The first signal (main's context) drains; a second one stops.
			runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
			defer stop()
			go func() {
				select {
				case <-ctx.Done():
				case <-runCtx.Done():
					return
				}
				r.Drain("signal")
				sigs := make(chan os.Signal, 1)
				signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
				defer signal.Stop(sigs)
				select {
				case <-sigs:
					logger.Warn("second signal: stopping now")
					stop()
				case <-runCtx.Done():
				}
			}()
			logger.Info("runner started", "runner", id.RunnerID, "servers", args, "certificate_expires", id.Expires())
			return r.Run(runCtx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", defaultRunnerDir, "the runner's directory (identity, caches)")
	f.StringVar(&token, "join-token", "", "join first with this one-time token if DIR holds no identity (env WARD_JOIN_TOKEN)")
	f.IntVar(&slots, "slots", 0, "most tasks run at once (0 = 32 per CPU)")
	f.IntVar(&budget, "memory-budget", 0, "MiB of memory handed to tasks by their memory_mb (0 = half the machine's)")
	f.IntVar(&maxTasks, "max-tasks", 0, "drain and exit 0 after this many tasks (0 = never)")
	f.DurationVar(&maxAge, "max-age", 0, "drain and exit 0 after running this long (0 = never)")
	f.DurationVar(&grace, "grace", 10*time.Second, "after a second signal, how long running tasks may finish")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	containers.register(f)
	return cmd
}
