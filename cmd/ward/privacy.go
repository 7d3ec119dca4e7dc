package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/privacy"
)

// This file holds the verbs of data partitioning and tokenization: task
// inspect, task result --detokenize, invoke --detokenize, detokenize and
// task fanout.

// tokensLeftNote is printed on stderr when a result asked for with
// --detokenize still holds tokens.
const tokensLeftNote = "ward: note: the result still holds tokens: re-identifying needs the detokenize scope (owner or admin), and values past the project's retention are gone\n"

// noteTokensLeft tells on stderr when b still holds tokens after a
// --detokenize: the server shows tokens, not an error, to a caller without
// the scope.
func (g *globals) noteTokensLeft(b []byte) {
	if len(privacy.FindTokens(b, 1)) > 0 {
		fmt.Fprint(g.stderr, tokensLeftNote)
	}
}

func newTaskInspectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect ID",
		Short: "Show a task and what its stored payload holds (pointers, never values)",
		Long: `Show a task's metadata and what ward stored of its payload: the size, whether
it is sealed, and, for a function with input rules, the JSON Pointers of the
fields the payload still holds (read from the stored payload: none once it
is purged) and of those whose values are tokens, never the values. No
value is ever printed, so inspect needs no payload scope. -o json prints the
task record, whose "input" holds the same lists.`,
		Example: `  ward task inspect t_01J…
  ward task inspect t_01J… -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			tk, err := c.GetTask(cmd.Context(), g.cfg.Project, args[0])
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, tk)
			}
			return writeInspect(g.stdout, tk)
		},
	}
}

func newTaskResultCmd(g *globals) *cobra.Command {
	var detokenize bool
	cmd := &cobra.Command{
		Use:   "result ID [--detokenize]",
		Short: "Print a finished task's result bytes",
		Long: `Print a finished task's result bytes as they are.

A function with tokenized input fields sees tokens (tok_…) in place of those
values, and its result holds the tokens it passed on. With --detokenize the
server puts the original values back for a token with the detokenize scope
(an owner's or an admin's) and audits it; anyone else gets the tokens, and a
note on stderr says so.`,
		Example: `  ward task result t_01J…
  ward task result t_01J… --detokenize`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			fetch := c.Result
			if detokenize {
				fetch = c.ResultDetokenized
			}
			b, err := fetch(cmd.Context(), g.cfg.Project, args[0])
			if err != nil {
				return err
			}
			if _, err := g.stdout.Write(b); err != nil {
				return err
			}
			if detokenize {
				g.noteTokensLeft(b)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&detokenize, "detokenize", false, "replace tokens with the original values (needs the detokenize scope)")
	return cmd
}

// detokenizeOutput is what `ward detokenize -o json` prints.
type detokenizeOutput struct {
	Values  map[string]json.RawMessage `json:"values"`
	Missing []string                   `json:"missing,omitempty"` // tokens the vault does not hold
}

func newDetokenizeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "detokenize [TOKEN...]",
		Short: "Show the original values of tokens (needs the detokenize scope)",
		Long: `Show the values that tokens (tok_…) stand for. The tokens are the arguments,
or, without arguments, stdin with one token a line (blank lines are skipped).
Each value is printed as JSON. Re-identifying needs the detokenize scope (an
owner's or an admin's token) and is audited. A token the project's vault does
not hold (its value is past the project's retention, or it is another
project's) is shown as "-" and listed on stderr; -o json lists it under
"missing".`,
		Example: `  ward detokenize tok_3qz…
  ward task result t_01J… | grep -o 'tok_[a-z2-7]*' | ward detokenize -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			tokens, err := readTokens(args, g.stdin)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			values := make(map[string]json.RawMessage, len(tokens))
			for chunk := range slices.Chunk(tokens, ward.MaxDetokenize) {
				got, err := c.Detokenize(cmd.Context(), g.cfg.Project, chunk)
				if err != nil {
					return err
				}
				for _, tok := range chunk {
					if v, ok := got[tok]; ok {
						values[tok] = v
					}
				}
			}
			var missing []string
			for _, tok := range tokens {
				if _, ok := values[tok]; !ok {
					missing = append(missing, tok)
				}
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, detokenizeOutput{Values: values, Missing: missing})
			}
			t := newTable(g.stdout)
			t.row("TOKEN", "VALUE")
			for _, tok := range tokens {
				v, ok := values[tok]
				if !ok {
					t.row(tok, "-")
					continue
				}
				t.row(tok, compactJSON(v))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(missing) > 0 {
				fmt.Fprintf(g.stderr, "ward: note: %d token(s) not held by the vault (past retention, or not this project's)\n", len(missing))
			}
			return nil
		},
	}
}

// readTokens returns the distinct tokens of args or, without args, of
// stdin's lines, in their first order. A word that is not a token is an
// invalid_argument error naming its place, not its text (it may be a
// value pasted by mistake).
func readTokens(args []string, stdin io.Reader) ([]string, error) {
	where := func(i int) string { return "argument " + strconv.Itoa(i+1) }
	list := args
	if len(args) == 0 {
		b, err := readCapped(stdin, "token list")
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, len(b)+1)
		for sc.Scan() {
			list = append(list, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading the token list: %w", err)
		}
		where = func(i int) string { return "line " + strconv.Itoa(i+1) }
	}
	var out []string
	seen := map[string]bool{}
	for i, s := range list {
		s = strings.TrimSpace(s)
		if s == "" && len(args) == 0 {
			continue
		}
		if !privacy.IsToken(s) {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "%s is not a token (%s followed by 32 characters a-z, 2-7)", where(i), privacy.TokenPrefix)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, usagef("give tokens as arguments or on stdin, one a line")
	}
	return out, nil
}

// compactJSON renders a JSON value on one line.
func compactJSON(v json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return string(v)
	}
	return b.String()
}

// fanoutFlags are the flags of `task fanout`.
type fanoutFlags struct {
	submitFlags
	functions []string
}

// fanoutOutput is what `task fanout -o json` prints.
type fanoutOutput struct {
	Tasks []ward.Task `json:"tasks"`
}

func newTaskFanoutCmd(g *globals) *cobra.Command {
	var f fanoutFlags
	cmd := &cobra.Command{
		Use:   "fanout --function F --function G… [--payload JSON | --payload-file FILE] [flags]",
		Short: "Submit one payload to several functions, each seeing only its own fields",
		Long: `Submit one payload as one task for each --function (at most 32). ward applies
each function's own input rules to its copy before storing it: each task
holds only the fields its function may see, with its own tokenized fields. The
tasks are printed with how many fields and tokens each payload kept. With
--wait, wait until all of them end and exit 1 unless every one succeeded.`,
		Example: `  ward task fanout --function fraud --function shipping --payload-file order.json
  ward task fanout --function fraud,audit --payload '{"order":{"total":12}}' --wait -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.payloadSet = cmd.Flags().Changed("payload")
			if len(f.functions) == 0 {
				return usagef("name the functions with --function")
			}
			for _, fn := range f.functions {
				if !ward.ValidName(fn) {
					return usagef("--function %q is not a valid function name", fn)
				}
			}
			sub, err := f.request("", g.stdin)
			if err != nil {
				return err
			}
			req := ward.FanoutRequest{
				Functions: f.functions, Payload: sub.Payload, PayloadB64: sub.PayloadB64,
				Priority: sub.Priority, DelayS: sub.DelayS, Labels: sub.Labels,
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			tasks, err := c.Fanout(ctx, g.cfg.Project, req)
			if err != nil {
				return err
			}
			var failed *ward.Task
			if f.wait {
				for i := range tasks {
					if tasks[i], err = g.await(ctx, c, tasks[i]); err != nil {
						return err
					}
					if tasks[i].Status != ward.StatusSucceeded && failed == nil {
						failed = &tasks[i]
					}
				}
			}
			if g.cfg.Output == outputJSON {
				err = writeJSON(g.stdout, fanoutOutput{Tasks: nonNil(tasks)})
			} else {
				err = writeFanout(g.stdout, tasks)
			}
			if err != nil {
				return err
			}
			if failed != nil {
				return taskFailedError{task: *failed}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.functions, "function", nil, "a function to submit to; repeat or comma-separate for more")
	fl.StringVar(&f.payload, "payload", "", "payload as JSON")
	fl.StringVar(&f.payloadFile, "payload-file", "", "read the payload from a file ('-' for stdin)")
	fl.IntVar(&f.priority, "priority", 0, "priority 0-2, higher runs first")
	fl.DurationVar(&f.delay, "delay", 0, "run no sooner than this from now (e.g. 90s, 2h)")
	fl.StringArrayVar(&f.labels, "label", nil, "a KEY=VALUE label on every task; repeat for more")
	fl.BoolVar(&f.wait, "wait", false, "wait for every task to end; exit 1 unless all succeeded")
	return cmd
}

// writeFanout writes the tasks of a fan-out with what each payload kept.
func writeFanout(w io.Writer, ts []ward.Task) error {
	t := newTable(w)
	t.row("ID", "FUNCTION", "STATUS", "FIELDS", "TOKENIZED", "ERROR")
	for _, tk := range ts {
		fields, tokens := "all", "-"
		if tk.Sealed {
			fields = "sealed"
		}
		if in := tk.Input; in != nil {
			fields, tokens = strconv.Itoa(len(in.Fields)), strconv.Itoa(len(in.Tokenized))
			if in.Truncated {
				fields, tokens = fields+"+", tokens+"+"
			}
		}
		errText := "-"
		if tk.Error != nil {
			errText = string(tk.Error.Code)
		}
		t.row(tk.ID, tk.Function, string(tk.Status), fields, tokens, errText)
	}
	return t.flush()
}
