package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
)

// groupCmd is a command that only holds subcommands: without arguments it
// shows its help; an unknown subcommand is a usage error.
func groupCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

func newLoginCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "login URL --token TOKEN",
		Short: "Check a server and token, then remember them for later commands",
		Long: `Check that the server at URL answers and that the token works, then save both
to the CLI context file ($WARD_CONFIG, default ~/.config/ward/config.json),
mode 0600. The token can also come from WARD_TOKEN.`,
		Example: `  ward login http://127.0.0.1:7070 --token "$TOKEN"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token := firstNonEmpty(g.flags.Token, g.getenv("WARD_TOKEN"))
			if token == "" {
				return usagef("login needs a token: --token TOKEN or WARD_TOKEN")
			}
			c, err := client.New(args[0], token, client.WithUserAgent(userAgent))
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := c.Health(ctx); err != nil {
				return fmt.Errorf("checking %s: %w", c.Server(), err)
			}
			projects, err := c.ListProjects(ctx)
			if err != nil {
				return fmt.Errorf("checking the token: %w", err)
			}
			path, err := g.configPath()
			if err != nil {
				return err
			}
			if err := client.SaveContext(path, client.Context{Server: c.Server(), Token: token}); err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, map[string][]ward.Project{"projects": nonNil(projects)})
			}
			fmt.Fprintf(g.stdout, "Logged in to %s (%d project(s) visible); saved to %s\n", c.Server(), len(projects), path)
			return nil
		},
	}
}

func newProjectCmd(g *globals) *cobra.Command {
	cmd := groupCmd("project", "Create, list, inspect, configure and delete projects")
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a project (needs an admin token)",
		Example: `  ward project create acme`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.CreateProject(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, p)
			}
			return writeProjects(g.stdout, []ward.Project{p})
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List projects (all for an admin token, else the token's own)",
		Example: `  ward project list -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.ListProjects(cmd.Context())
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, map[string][]ward.Project{"projects": nonNil(ps)})
			}
			return writeProjects(g.stdout, ps)
		},
	}
	get := &cobra.Command{
		Use:   "get [NAME]",
		Short: "Show a project and its retention (default: the current project)",
		Example: `  ward project get
  ward project get acme -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := g.projectArg(args)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.GetProject(cmd.Context(), name)
			if err != nil {
				return err
			}
			return g.printProject(p)
		},
	}
	var retention, maxQueued, maxFunctions, maxRunning, maxStoredMB int
	set := &cobra.Command{
		Use:   "set [NAME] [--retention-days N] [--max-queued N] [--max-functions N] [--max-running N] [--max-stored-mb N]",
		Short: "Change a project's settings (owner or admin)",
		Long: `Change a project's settings; NAME defaults to the current project. Only the
settings given change.

--retention-days bounds how long the project's finished tasks live (1 to
3650; a function's own retention_days applies when shorter). Payloads,
results and logs are encrypted under per-day epoch keys kept apart from the
data; ward deletes finished tasks past retention and destroys the project's
epoch keys older than its retention, so that data cannot be read again
anywhere, old backups of the data store included.

Quotas (0 = unlimited; each flag given changes its quota, the others keep
theirs): --max-queued caps the tasks queued at once (due or
delayed; a submission that would pass it answers 429 project_queued_quota
with Retry-After, whatever the path: submit, batch, fan-out, invoke);
--max-functions caps the functions (creating one more answers 409
project_functions_quota).

--max-running caps the project's tasks running at once across all runners
(0 to 1000000): runners take no more of its tasks while it has that many
running, and the others wait in the queue (submissions are not refused; a
synchronous invoke answers 429 project_running_quota with Retry-After).

--max-stored-mb caps, in MiB (0 to 16777216), what the project stores:
task payloads, results and logs, and its functions' code, as stored
(encrypted). A submission, batch, fan-out, invoke or code upload that would
pass it answers 413 project_storage_quota and stores nothing. Results and
logs of runs are always kept and count toward it; finished tasks leave it
when retention purges them. "ward project list" shows the bytes stored.`,
		Example: `  ward project set --retention-days 30
  ward project set acme --retention-days 1
  ward project set acme --max-queued 10000 --max-functions 50
  ward project set acme --max-running 20 --max-stored-mb 2048`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changed := cmd.Flags().Changed
			var patch ward.QuotasPatch
			for _, f := range []struct {
				flag string
				dst  **int
				v    *int
			}{
				{"max-queued", &patch.MaxQueued, &maxQueued}, {"max-functions", &patch.MaxFunctions, &maxFunctions},
				{"max-running", &patch.MaxRunning, &maxRunning}, {"max-stored-mb", &patch.MaxStoredMB, &maxStoredMB},
			} {
				if changed(f.flag) {
					*f.dst = f.v
				}
			}
			if !changed("retention-days") && patch == (ward.QuotasPatch{}) {
				return usagef("nothing to set: give --retention-days, --max-queued, --max-functions, --max-running or --max-stored-mb")
			}
			name, err := g.projectArg(args)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			// The server changes the quotas given and keeps the others.
			settings := ward.ProjectSettings{RetentionDays: retention}
			if patch != (ward.QuotasPatch{}) {
				settings.Quotas = &patch
			}
			p, err := c.UpdateProject(cmd.Context(), name, settings)
			if err != nil {
				return err
			}
			return g.printProject(p)
		},
	}
	set.Flags().IntVar(&retention, "retention-days", 0, "days finished tasks are kept, 1-3650")
	set.Flags().IntVar(&maxQueued, "max-queued", 0, "most tasks queued at once, 0 = unlimited (quotas.max_queued)")
	set.Flags().IntVar(&maxFunctions, "max-functions", 0, "most functions, 0 = unlimited (quotas.max_functions)")
	set.Flags().IntVar(&maxRunning, "max-running", 0, "most tasks running at once, 0 = unlimited (quotas.max_running)")
	set.Flags().IntVar(&maxStoredMB, "max-stored-mb", 0, "most MiB of payloads, results, logs and code stored, 0 = unlimited (quotas.max_stored_mb)")
	var yes bool
	del := &cobra.Command{
		Use:   "delete NAME --yes",
		Short: "Delete a project and destroy its keys (admin; cannot be undone)",
		Long: `Delete the project NAME: its keys are destroyed first, then its functions,
tasks, config, secrets and tokens. Without the keys, the project's encrypted
data (payloads, results, logs, config, secrets, code) is unreadable
everywhere, backups of the data store included: nothing can bring it back.
Because of that, the command refuses to run without --yes, and NAME must be
given in full (it does not default to the current project).`,
		Example: `  ward project delete acme --yes`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !ward.ValidName(args[0]) {
				return usagef("project %q is not a valid name", args[0])
			}
			if !yes {
				return usagef("deleting project %s destroys its keys: all of its data becomes unreadable everywhere, backups included, and cannot be recovered; add --yes to delete it", args[0])
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteProject(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.cfg.Output != outputJSON {
				fmt.Fprintf(g.stdout, "Deleted project %s; its keys are destroyed and its data is unreadable\n", args[0])
			}
			return nil
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm: destroy the project and all of its data for good")
	cmd.AddCommand(create, list, get, set, del)
	return cmd
}

// projectArg returns the project named by an optional argument, else the
// current project.
func (g *globals) projectArg(args []string) (string, error) {
	if len(args) == 0 {
		return g.cfg.Project, nil
	}
	if !ward.ValidName(args[0]) {
		return "", usagef("project %q is not a valid name (lowercase letters, digits and '-', 1-63 characters)", args[0])
	}
	return args[0], nil
}

// printProject prints one project.
func (g *globals) printProject(p ward.Project) error {
	if g.cfg.Output == outputJSON {
		return writeJSON(g.stdout, p)
	}
	return writeProjects(g.stdout, []ward.Project{p})
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func newTokenCmd(g *globals) *cobra.Command {
	cmd := groupCmd("token", "Mint and revoke API tokens of the project")
	var role, ttl, name string
	create := &cobra.Command{
		Use:   "create --role ROLE [--ttl 24h] [--name NAME]",
		Short: "Mint a token; it is printed once and never again",
		Long: `Mint a token for the project with a role: owner, developer, submitter, viewer
or runner. The token string is shown once; store it now.`,
		Example: `  ward token create --role submitter --ttl 720h --name ci`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role == "" {
				return usagef("--role is required")
			}
			if !ward.Role(role).Valid() {
				return usagef("--role %q is not a role (admin, owner, developer, submitter, viewer, runner)", role)
			}
			if ttl != "" {
				if d, err := time.ParseDuration(ttl); err != nil || d <= 0 {
					return usagef("--ttl %q is not a positive duration such as 24h", ttl)
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), g.cfg.Project, ward.CreateTokenRequest{Role: ward.Role(role), TTL: ttl, Name: name})
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, t)
			}
			tw := newTable(g.stdout)
			tw.row("Token:", t.Token)
			tw.row("ID:", t.ID)
			tw.row("Expires:", fmtTime(t.ExpiresAt))
			if err := tw.flush(); err != nil {
				return err
			}
			fmt.Fprintln(g.stderr, "Store the token now: it is not shown again.")
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&role, "role", "", "role of the token (required)")
	f.StringVar(&ttl, "ttl", "", "lifetime, a Go duration (server default 24h, at most 8760h)")
	f.StringVar(&name, "name", "", "a name to recognise the token by")

	revoke := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a token by its ID",
		Example: `  ward token revoke tok_01J…`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), g.cfg.Project, args[0]); err != nil {
				return err
			}
			if g.cfg.Output != outputJSON {
				fmt.Fprintf(g.stdout, "Revoked token %s\n", safe(args[0]))
			}
			return nil
		},
	}
	cmd.AddCommand(create, revoke)
	return cmd
}
