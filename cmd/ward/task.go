package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
)

// maxPayloadBytes bounds a payload read from a file or stdin: the largest
// max_payload_kb a function may have.
const maxPayloadBytes = ward.MaxPayloadKB * 1024

// terminalPoll is the long-poll length while a spinner shows the status, so
// a change from queued to running appears within it.
const terminalPoll = 2 * time.Second

// submitFlags are the flags of `task submit`.
type submitFlags struct {
	payload, payloadFile string
	payloadSet           bool // --payload was given (an empty value is an error, not "no payload")
	priority, timeout    int
	maxAttempts          int
	delay                time.Duration
	labels               []string
	idempotencyKey       string
	wait                 bool
	seal                 bool   // seal the payload to the function's sealing key
	keyID                string // with seal: the key id the function's key must have
}

// request builds the submission for function fn; stdin is read for
// --payload-file -.
func (f submitFlags) request(fn string, stdin io.Reader) (ward.SubmitRequest, error) {
	req := ward.SubmitRequest{
		Function:       fn,
		Priority:       f.priority,
		TimeoutS:       f.timeout,
		MaxAttempts:    f.maxAttempts,
		IdempotencyKey: f.idempotencyKey,
	}
	switch {
	case f.payloadSet && f.payloadFile != "":
		return req, usagef("give --payload or --payload-file, not both")
	case f.payloadSet:
		if !json.Valid([]byte(f.payload)) {
			return req, usagef("--payload is not valid JSON (use --payload-file for other bytes)")
		}
		req.Payload = json.RawMessage(f.payload)
	case f.payloadFile != "":
		b, err := readPayloadFile(f.payloadFile, stdin)
		if err != nil {
			return req, err
		}
		switch {
		case len(b) == 0:
		case json.Valid(b):
			req.Payload = json.RawMessage(b)
		default:
			req.PayloadB64 = b
		}
	}
	if f.delay < 0 {
		return req, usagef("--delay must not be negative")
	}
	req.DelayS = int(math.Ceil(f.delay.Seconds()))
	if len(f.labels) > 0 {
		labels, err := parseKVs(f.labels)
		if err != nil {
			return req, usagef("--label: %w", err)
		}
		req.Labels = labels
	}
	return req, nil
}

// readPayloadFile reads a payload from a file, or from stdin for "-".
func readPayloadFile(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "--payload-file: %v", err)
		}
		defer f.Close()
		r = f
	}
	return readCapped(r, "payload")
}

// readCapped reads all of r, refusing more than maxPayloadBytes.
func readCapped(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxPayloadBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the %s: %w", what, err)
	}
	if len(b) > maxPayloadBytes {
		return nil, ward.Errorf(ward.CodePayloadTooLarge, "the %s is larger than %d KiB", what, ward.MaxPayloadKB)
	}
	return b, nil
}

// await waits for tk to end: with a spinner when stderr is a terminal, else
// quietly with the longest long polls.
func (g *globals) await(ctx context.Context, c *client.Client, tk ward.Task) (ward.Task, error) {
	if tk.Status.Terminal() {
		return tk, nil
	}
	if !g.stderrTTY {
		return c.AwaitTask(ctx, g.cfg.Project, tk.ID)
	}
	ticker := time.NewTicker(spinnerTick)
	defer ticker.Stop()
	sp := startSpinner(g.stderr, tk.ID, tk.Status, g.now, ticker.C)
	defer sp.stop()
	return c.WatchTask(ctx, g.cfg.Project, tk.ID, terminalPoll, func(t ward.Task) { sp.set(t.Status) })
}

// finish prints a task that has ended; any end but success is an error.
func (g *globals) finish(tk ward.Task) error {
	if err := g.printTask(tk); err != nil {
		return err
	}
	if tk.Status != ward.StatusSucceeded {
		return taskFailedError{task: tk}
	}
	return nil
}

func newTaskCmd(g *globals) *cobra.Command {
	cmd := groupCmd("task", "Submit, inspect, cancel and retry tasks")
	cmd.AddCommand(
		newTaskSubmitCmd(g),
		newTaskGetCmd(g),
		newTaskListCmd(g),
		newTaskInspectCmd(g),
		newTaskResultCmd(g),
		newTaskLogCmd(g),
		newTaskPayloadCmd(g),
		newTaskActionCmd(g, "cancel", "Cancel a queued or running task", (*client.Client).CancelTask),
		newTaskActionCmd(g, "retry", "Re-queue a finished task with a fresh attempt budget", (*client.Client).RetryTask),
		newTaskFanoutCmd(g),
	)
	return cmd
}

func newTaskSubmitCmd(g *globals) *cobra.Command {
	var f submitFlags
	cmd := &cobra.Command{
		Use:   "submit FUNCTION [--payload JSON | --payload-file FILE] [--seal [--key-id ID]] [flags]",
		Short: "Submit a task to the queue",
		Long: `Submit a task for FUNCTION and print it. The payload is --payload (JSON) or the
content of --payload-file ('-' reads stdin; JSON content is sent as JSON, any
other bytes as bytes). With --wait, wait until the task ends, print it, and
exit 1 unless it succeeded.

With --seal, the payload bytes are sealed here to FUNCTION's public sealing
key (see 'ward sealing-key') and sent as an envelope that ward stores and
delivers without being able to read it; only FUNCTION's tasks open it. The
key comes from the server: --key-id ID refuses to seal unless the server's
key has that id (learned out of band, e.g. from 'ward sealing-key FUNCTION
--create').`,
		Example: `  ward task submit resize --payload '{"url":"https://example.com/a.png"}'
  ward task submit resize --payload-file image.bin --priority 2 --label batch=7
  cat order.json | ward task submit checkout --payload-file - --wait
  ward task submit vault --seal --key-id 1f2e3d4c5b6a7980 --payload '{"card":"4111…"}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.payloadSet = cmd.Flags().Changed("payload")
			keyID, err := normalizeKeyID(f.keyID)
			if err != nil {
				return err
			}
			if keyID != "" && !f.seal {
				return usagef("--key-id is only for --seal")
			}
			req, err := f.request(args[0], g.stdin)
			if err != nil {
				return err
			}
			if f.seal && req.Payload == nil && len(req.PayloadB64) == 0 {
				return usagef("--seal needs a payload: --payload or --payload-file")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if f.seal {
				if req, err = g.sealRequest(ctx, c, req, keyID); err != nil {
					return err
				}
			}
			tk, err := c.Submit(ctx, g.cfg.Project, req)
			if err != nil {
				return err
			}
			if !f.wait {
				return g.printTask(tk)
			}
			tk, err = g.await(ctx, c, tk)
			if err != nil {
				return err
			}
			return g.finish(tk)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.payload, "payload", "", "payload as JSON")
	fl.StringVar(&f.payloadFile, "payload-file", "", "read the payload from a file ('-' for stdin)")
	fl.IntVar(&f.priority, "priority", 0, "priority 0-2, higher runs first")
	fl.DurationVar(&f.delay, "delay", 0, "run no sooner than this from now (e.g. 90s, 2h)")
	fl.IntVar(&f.timeout, "timeout", 0, "timeout in seconds, at most the function's (0 = the function's)")
	fl.IntVar(&f.maxAttempts, "max-attempts", 0, "attempts, first run included (0 = the function's)")
	fl.StringArrayVar(&f.labels, "label", nil, "a KEY=VALUE label; repeat for more")
	fl.StringVar(&f.idempotencyKey, "idempotency-key", "", "a repeat within 24h returns the first task")
	fl.BoolVar(&f.wait, "wait", false, "wait for the task to end; exit 1 unless it succeeded")
	fl.BoolVar(&f.seal, "seal", false, "seal the payload to the function's sealing key; only its tasks can read it")
	fl.StringVar(&f.keyID, "key-id", "", "with --seal: refuse unless the function's sealing key has this id")
	return cmd
}

func newTaskGetCmd(g *globals) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "get ID [--wait]",
		Short: "Show a task's metadata",
		Example: `  ward task get t_01J…
  ward task get t_01J… --wait -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			tk, err := c.GetTask(ctx, g.cfg.Project, args[0])
			if err != nil {
				return err
			}
			if !wait {
				return g.printTask(tk)
			}
			tk, err = g.await(ctx, c, tk)
			if err != nil {
				return err
			}
			return g.finish(tk)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the task to end; exit 1 unless it succeeded")
	return cmd
}

func newTaskListCmd(g *globals) *cobra.Command {
	var opts client.ListTasksOptions
	var status string
	cmd := &cobra.Command{
		Use:   "list [--function F] [--status S] [--limit N] [--cursor C]",
		Short: "List tasks, newest first (metadata only)",
		Example: `  ward task list --status failed
  ward task list --function resize --limit 20 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "" && !ward.Status(status).Valid() {
				return usagef("--status %q is not one of queued, running, succeeded, failed, cancelled", status)
			}
			if opts.Limit < 0 {
				return usagef("--limit must not be negative")
			}
			opts.Status = ward.Status(status)
			c, err := g.client()
			if err != nil {
				return err
			}
			l, err := c.ListTasks(cmd.Context(), g.cfg.Project, opts)
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				l.Tasks = nonNil(l.Tasks)
				return writeJSON(g.stdout, l)
			}
			if err := writeTasks(g.stdout, l.Tasks); err != nil {
				return err
			}
			if l.NextCursor != "" {
				fmt.Fprintf(g.stderr, "More: --cursor %s\n", safe(l.NextCursor))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Function, "function", "", "only this function's tasks")
	f.StringVar(&status, "status", "", "only tasks in this state (queued, running, succeeded, failed, cancelled)")
	f.IntVar(&opts.Limit, "limit", 0, "most tasks on the page (server default 100, at most 1000)")
	f.StringVar(&opts.Cursor, "cursor", "", "the page after this cursor (from a previous list)")
	return cmd
}

// newTaskLogCmd is `ward task log [-f] ID`.
func newTaskLogCmd(g *globals) *cobra.Command {
	var follow bool
	cmd := newTaskIDCmd(g, "log", "Print a task's log (its stderr, secrets redacted)", func(ctx context.Context, c *client.Client, id string) error {
		if follow {
			return c.FollowLog(ctx, g.cfg.Project, id, g.stdout)
		}
		b, err := c.Log(ctx, g.cfg.Project, id)
		if err != nil {
			return err
		}
		_, err = g.stdout.Write(b)
		return err
	})
	cmd.Long = `Print a task's log: its stderr, with the values of its function's secrets
replaced by [REDACTED]. A task's log exists once it has finished; with
--follow, ward waits for a queued task to start, prints the lines of a running
one as they are written, and returns once the task has finished and its whole
log was printed. Live lines come from every runner, local or remote, and
reach a follower on any server of a cluster.`
	cmd.Example = "  ward task log t_01J…\n  ward task log -f t_01J…"
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print the log as the task runs, until it ends")
	return cmd
}

// newTaskActionCmd is a command that changes a task and prints it.
func newTaskActionCmd(g *globals, name, short string, act func(*client.Client, context.Context, string, string) (ward.Task, error)) *cobra.Command {
	return newTaskIDCmd(g, name, short, func(ctx context.Context, c *client.Client, id string) error {
		tk, err := act(c, ctx, g.cfg.Project, id)
		if err != nil {
			return err
		}
		return g.printTask(tk)
	})
}

// newTaskIDCmd is `ward task NAME ID`, running run with a client.
func newTaskIDCmd(g *globals, name, short string, run func(context.Context, *client.Client, string) error) *cobra.Command {
	return &cobra.Command{
		Use:     name + " ID",
		Short:   short,
		Example: "  ward task " + name + " t_01J…",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return run(cmd.Context(), c, args[0])
		},
	}
}

func newInvokeCmd(g *globals) *cobra.Command {
	var detokenize bool
	cmd := &cobra.Command{
		Use:   "invoke FUNCTION [--detokenize]",
		Short: "Run a function synchronously: payload from stdin, result to stdout",
		Long: `Run FUNCTION synchronously with stdin as the payload and write the result to
stdout. When the task fails, print its error code and task ID on stderr and
exit 1.

With --detokenize, tokens in the result (values the function saw only as
tokens, see 'ward deploy --tokenize') are replaced with the original values
for a token with the detokenize scope; anyone else gets the tokens, and a
note on stderr says so.`,
		Example: `  echo '{"name":"ada"}' | ward invoke hello
  ward invoke resize < image.png > thumb.png
  ward invoke fraud --detokenize < order.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			payload, err := readCapped(g.stdin, "payload")
			if err != nil {
				return err
			}
			invoke := c.Invoke
			if detokenize {
				invoke = c.InvokeDetokenized
			}
			res, err := invoke(cmd.Context(), g.cfg.Project, args[0], payload)
			if err != nil {
				return err
			}
			if _, err := g.stdout.Write(res.Body); err != nil {
				return err
			}
			if detokenize {
				g.noteTokensLeft(res.Body)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&detokenize, "detokenize", false, "replace tokens in the result with the original values (needs the detokenize scope)")
	return cmd
}
