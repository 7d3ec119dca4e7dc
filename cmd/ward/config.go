package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := groupCmd("config", "Read and change project (global) or function (local) config")
	cmd.Long = `Config is a JSON object of strings a task reads from /ward/config.json: the
project's global config merged with the function's local config (local wins).
Without --function the commands act on the global config. Config is not for
secrets.`
	var fn string
	// change GETs the config, lets edit change it, PUTs it back and prints it.
	change := func(ctx context.Context, edit func(ward.Config)) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		cur, err := c.GetConfig(ctx, g.cfg.Project, fn)
		if err != nil {
			return err
		}
		if cur == nil {
			cur = ward.Config{}
		}
		edit(cur)
		stored, err := c.PutConfig(ctx, g.cfg.Project, fn, cur)
		if err != nil {
			return err
		}
		return g.printConfig(stored)
	}
	set := &cobra.Command{
		Use:   "set [--function F] KEY=VALUE...",
		Short: "Set keys, keeping the others",
		Example: `  ward config set REGION=eu-west-1 LOG_LEVEL=debug
  ward config set --function resize QUALITY=85`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kv, err := parseKVs(args)
			if err != nil {
				return err
			}
			return change(cmd.Context(), func(c ward.Config) {
				for k, v := range kv {
					c[k] = v
				}
			})
		},
	}
	unset := &cobra.Command{
		Use:     "unset [--function F] KEY...",
		Short:   "Remove keys, keeping the others",
		Example: `  ward config unset LOG_LEVEL`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, k := range args {
				if k == "" {
					return usagef("empty key")
				}
			}
			return change(cmd.Context(), func(c ward.Config) {
				for _, k := range args {
					delete(c, k)
				}
			})
		},
	}
	get := &cobra.Command{
		Use:     "get [--function F]",
		Short:   "Show the config",
		Example: `  ward config get --function resize -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			cfg, err := c.GetConfig(cmd.Context(), g.cfg.Project, fn)
			if err != nil {
				return err
			}
			return g.printConfig(cfg)
		},
	}
	for _, sub := range []*cobra.Command{set, unset, get} {
		sub.Flags().StringVar(&fn, "function", "", "the function whose local config to use (default: the global config)")
		cmd.AddCommand(sub)
	}
	return cmd
}

func (g *globals) printConfig(c ward.Config) error {
	if g.cfg.Output == outputJSON {
		if c == nil {
			c = ward.Config{}
		}
		return writeJSON(g.stdout, c)
	}
	return writeConfig(g.stdout, c)
}
