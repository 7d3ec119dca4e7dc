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
	cmd := groupCmd("project", "Create and list projects")
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
	cmd.AddCommand(create, list)
	return cmd
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
