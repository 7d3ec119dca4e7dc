package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
)

// secretFlags are the flags of `secret set`.
type secretFlags struct {
	file string
	raw  bool
}

// readSecretValue reads a secret's value from --file, else from stdin,
// refusing an empty value, one over ward.MaxSecretBytes, and a terminal as
// stdin (typing would show the value on the screen and keep it in the
// scrollback). Unless raw, one trailing line ending is removed. Errors never
// contain the value.
func readSecretValue(f secretFlags, stdin io.Reader) ([]byte, error) {
	r, from := stdin, "stdin"
	if f.file != "" {
		fh, err := os.Open(f.file)
		if err != nil {
			return nil, ward.Errorf(ward.CodeInvalidArgument, "--file: %v", err)
		}
		defer fh.Close()
		r, from = fh, f.file
	} else if fh, ok := stdin.(*os.File); ok && isTerminal(fh) {
		return nil, usagef("give the value with --file FILE or on stdin (ward secret set NAME < FILE); it is not read from a terminal")
	}
	b, err := io.ReadAll(io.LimitReader(r, ward.MaxSecretBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the secret from %s: %w", from, err)
	}
	if len(b) > ward.MaxSecretBytes {
		clear(b)
		return nil, ward.Errorf(ward.CodeBodyTooLarge, "a secret holds at most %d KiB; %s holds more", ward.MaxSecretBytes>>10, from)
	}
	if !f.raw {
		b = trimLineEnding(b)
	}
	if len(b) == 0 {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "the secret from %s is empty; to remove a secret use 'ward secret rm'", from)
	}
	return b, nil
}

// trimLineEnding removes one trailing "\n" or "\r\n".
func trimLineEnding(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

func newSecretCmd(g *globals) *cobra.Command {
	cmd := groupCmd("secret", "Write, list and remove secrets (values are write-only)")
	cmd.Long = `Secrets are values a task reads as files under /ward/secrets/<name> (in Go:
task.Secret(name)). A project's global secrets reach every function; a
function's local secrets (--function) reach only it, and win over a global
secret of the same name. Values are write-only: no command and no API answer
ever shows one, and ward replaces every secret value in a task's log with
[REDACTED]. Values are encrypted at rest and hold at most 64 KiB.

Names are 1-128 letters, digits, '.', '_' and '-', not starting with '.' or
'-'. Names starting with "ward-" are reserved; ward-sealing-key is a
function's sealing private key (see 'ward sealing-key').`
	var fn string
	var sf secretFlags
	set := &cobra.Command{
		Use:   "set NAME [--function F] [--file FILE]",
		Short: "Write a secret's value from --file or stdin; each write is a new version",
		Long: `Write the secret NAME from the content of --file or, without it, from all of
stdin (never from a terminal, never from an argument, so the value stays out
of shell history and process lists). One trailing newline is removed, so
'echo VALUE | ward secret set NAME' stores VALUE; --raw keeps the bytes
exactly as read. An empty value is refused. Writing an existing name replaces
its value and bumps its version; running tasks keep the value they started
with. The value is never printed: the answer is the name, scope, version and
size.`,
		Example: `  ward secret set API_KEY < api-key.txt
  printf '%s' "$TOKEN" | ward secret set UPSTREAM_TOKEN --function fetch
  ward secret set TLS_KEY --function fetch --file client.key --raw`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !ward.ValidSecretName(name) {
				return usagef("secret name %q is not valid (1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-')", name)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			value, err := readSecretValue(sf, g.stdin)
			if err != nil {
				return err
			}
			defer clear(value)
			s, err := c.PutSecret(cmd.Context(), g.cfg.Project, fn, name, value)
			if err != nil {
				return err
			}
			return g.printSecrets([]ward.Secret{s}, false)
		},
	}
	set.Flags().StringVar(&sf.file, "file", "", "read the value from this file (default: stdin)")
	set.Flags().BoolVar(&sf.raw, "raw", false, "keep the value's bytes exactly, trailing newline included")

	list := &cobra.Command{
		Use:   "list [--function F]",
		Short: "List secrets by name, version, size and update time (never values)",
		Example: `  ward secret list
  ward secret list --function fetch -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ss, err := c.ListSecrets(cmd.Context(), g.cfg.Project, fn)
			if err != nil {
				return err
			}
			return g.printSecrets(ss, true)
		},
	}
	rm := &cobra.Command{
		Use:     "rm NAME [--function F]",
		Aliases: []string{"delete"},
		Short:   "Remove a secret; tasks that start afterwards no longer get it",
		Example: `  ward secret rm API_KEY
  ward secret rm UPSTREAM_TOKEN --function fetch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !ward.ValidSecretName(args[0]) {
				return usagef("secret name %q is not valid", args[0])
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteSecret(cmd.Context(), g.cfg.Project, fn, args[0]); err != nil {
				return err
			}
			if g.cfg.Output != outputJSON {
				fmt.Fprintf(g.stdout, "Removed secret %s (%s)\n", args[0], secretScope(fn))
			}
			return nil
		},
	}
	for _, sub := range []*cobra.Command{set, list, rm} {
		sub.Flags().StringVar(&fn, "function", "", "the function whose local secrets to use (default: the project's global secrets)")
		cmd.AddCommand(sub)
	}
	return cmd
}

// printSecrets prints secrets' metadata; asList wraps JSON as
// {"secrets":[…]}, else one secret prints as an object.
func (g *globals) printSecrets(ss []ward.Secret, asList bool) error {
	if g.cfg.Output == outputJSON {
		if asList {
			return writeJSON(g.stdout, ward.SecretList{Secrets: nonNil(ss)})
		}
		return writeJSON(g.stdout, ss[0])
	}
	return writeSecrets(g.stdout, ss)
}
