package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
)

func newAlertCmd(g *globals) *cobra.Command {
	cmd := groupCmd("alert", "Set, list and inspect alert rules and their webhook deliveries")
	cmd.Long = `An alert rule watches one metric of the project (or of one --function) and
calls a webhook when its state changes: ok → pending (the condition holds) →
firing (it held for --for) → resolved (it stopped holding) → ok. Metrics:
queue_depth, running (now), wait_p95 (seconds), failure_rate (0-1),
limit_rejections and submit_rate (per second), the last four over the last
minute. Webhooks are signed (header Ward-Signature; see docs/api.md), retried
with backoff, and every attempt is in 'ward alert history'. Every project
also has the builtin rule builtin:submit-surge, which needs no setting.`
	var rule ward.AlertRule
	var threshold float64
	set := &cobra.Command{
		Use:   "set NAME --metric M --threshold N --for D --webhook URL [--function F] [--op OP]",
		Short: "Create or replace an alert rule; on create, print its signing secret once",
		Long: `Create or replace the alert rule NAME. A new rule gets a signing secret that
ward makes and prints this once only (keep it: the receiver verifies
signatures with it); replacing a rule keeps its secret.`,
		Example: `  ward alert set backlog --metric queue_depth --threshold 100 --for 2m --webhook https://hooks.example.com/ward
  ward alert set failing --function resize --metric failure_rate --op '>=' --threshold 0.2 --for 5m --webhook https://hooks.example.com/ward`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !ward.ValidName(args[0]) {
				return usagef("alert name %q is not valid (1-63 lowercase letters, digits or '-')", args[0])
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			r := rule
			r.Threshold = threshold
			resp, created, err := c.PutAlert(cmd.Context(), g.cfg.Project, args[0], r)
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, resp)
			}
			if err := writeAlerts(g.stdout, []ward.Alert{resp.Alert}); err != nil {
				return err
			}
			if created && resp.Secret != "" {
				fmt.Fprintf(g.stdout, "\nsigning secret (shown once): %s\n", resp.Secret)
			}
			return nil
		},
	}
	f := set.Flags()
	f.StringVar((*string)(&rule.Metric), "metric", "", "queue_depth, wait_p95, running, failure_rate, limit_rejections or submit_rate")
	f.StringVar(&rule.Function, "function", "", "watch one function (default: the whole project)")
	f.StringVar((*string)(&rule.Op), "op", ">", "comparison: >, >=, < or <=")
	f.Float64Var(&threshold, "threshold", 0, "the value compared with")
	f.StringVar(&rule.For, "for", "1m", "how long the condition must hold before the rule fires")
	f.StringVar(&rule.Webhook, "webhook", "", "http(s) URL told of each state change")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List the project's alert rules with their states",
		Example: `  ward alert list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			as, err := c.ListAlerts(cmd.Context(), g.cfg.Project)
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, ward.AlertList{Alerts: nonNil(as)})
			}
			return writeAlerts(g.stdout, as)
		},
	}
	var limit int
	history := &cobra.Command{
		Use:     "history NAME [--limit N]",
		Short:   "Show a rule's state changes and webhook deliveries, newest first",
		Example: `  ward alert history backlog --limit 20`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			evs, err := c.AlertHistory(cmd.Context(), g.cfg.Project, args[0], limit)
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, ward.AlertHistory{Events: nonNil(evs)})
			}
			return writeAlertEvents(g.stdout, evs)
		},
	}
	history.Flags().IntVar(&limit, "limit", 0, "at most this many entries (default: all kept)")
	del := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Remove an alert rule with its state and history",
		Example: `  ward alert delete backlog`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteAlert(cmd.Context(), g.cfg.Project, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deleted alert %s\n", safe(args[0]))
			return nil
		},
	}
	cmd.AddCommand(set, list, history, del)
	return cmd
}

// writeAlerts prints rules as a table.
func writeAlerts(w io.Writer, as []ward.Alert) error {
	t := newTable(w)
	t.row("NAME", "FUNCTION", "CONDITION", "FOR", "STATE", "VALUE", "SINCE")
	for _, a := range as {
		cond := string(a.Metric) + " " + string(a.Op) + " " + strconv.FormatFloat(a.Threshold, 'g', -1, 64)
		t.row(safe(a.Name), orDash(safe(a.Function)), cond, safe(a.For), string(a.State),
			strconv.FormatFloat(a.Value, 'g', 4, 64), fmtTimePtr(a.Since))
	}
	return t.flush()
}

// writeAlertEvents prints a rule's history as a table.
func writeAlertEvents(w io.Writer, evs []ward.AlertEvent) error {
	t := newTable(w)
	t.row("AT", "KIND", "STATE", "VALUE", "ATTEMPT", "STATUS", "DURATION", "ERROR")
	for _, ev := range evs {
		attempt, status, dur := "-", "-", "-"
		if ev.Kind == ward.EventDelivery {
			attempt = strconv.Itoa(ev.Attempt)
			if ev.StatusCode != 0 {
				status = strconv.Itoa(ev.StatusCode)
			}
			dur = (time.Duration(ev.DurationMs) * time.Millisecond).String()
		}
		t.row(fmtTime(ev.At), string(ev.Kind), string(ev.State), strconv.FormatFloat(ev.Value, 'g', 4, 64), attempt, status, dur, orDash(safe(ev.Error)))
	}
	return t.flush()
}
