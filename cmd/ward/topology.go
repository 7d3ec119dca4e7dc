package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
)

func newTopologyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topology",
		Short: "Show where code and data are kept and processed (admin)",
		Long: `Show the deployment's topology, as the server that answers sees it: its
version and listeners, where the store, keystore and key files are, which
caches hold code, the runners that run tasks, and where logs go. Paths,
hosts and databases are named; credentials never are.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.Topology(cmd.Context())
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, t)
			}
			return writeTopology(g.stdout, t)
		},
	}
	return cmd
}

func writeTopology(w io.Writer, t ward.Topology) error {
	s := t.Server
	listeners := "api " + s.API
	if s.Internal != "" {
		listeners += ", runners " + s.Internal
	}
	if s.Metrics != "" {
		listeners += ", metrics " + s.Metrics
	}
	if _, err := fmt.Fprintf(w, "server %s (ward %s): %s; in-process runner: %s\n\n",
		safe(s.Host), safe(s.Version), safe(listeners), yesNo(s.InProcessRunner)); err != nil {
		return err
	}
	places := func(title string, ps []ward.Place) error {
		tb := newTable(w)
		tb.row(title, "KIND", "WHERE", "ENCRYPTED", "HOLDS")
		for _, p := range ps {
			tb.row(p.Name, p.Kind, p.Where, yesNo(p.Encrypted), p.Holds)
		}
		return tb.flush()
	}
	if err := places("PLACE", t.Places); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	if err := places("LOG SINK", t.LogSinks); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	tb := newTable(w)
	tb.row("RUNNER", "STATE", "NAME", "DRIVERS", "REMOTE", "SLOTS", "MEMORY_MB")
	for _, r := range t.Runners {
		tb.row(r.ID, string(r.State), r.Name, strings.Join(r.Drivers, ","), yesNo(r.Remote), strconv.Itoa(r.Slots), strconv.Itoa(r.MemoryMB))
	}
	return tb.flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
