package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
)

// userAgent is the User-Agent of the CLI's requests.
const userAgent = "ward-cli"

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// globals is what main hands every command: the I/O streams, the
// environment, a clock, and (after flag parsing) the resolved settings.
type globals struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	stderrTTY bool                   // draw progress on stderr
	getenv    func(string) string    // the environment (os.Getenv in main)
	now       func() time.Time       // the clock
	cacheDir  func() (string, error) // the user's cache directory (os.UserCacheDir in main)

	flags   flagValues // bound to the global flags
	cfg     settings   // resolved once, before any command runs
	started bool       // flags and arguments were accepted; errors now are not usage errors
}

// flagValues are the global flags as given.
type flagValues struct {
	Server, Token, Project, Output string
	ProjectSet                     bool // --project was given (its default is "default")
}

// settings are the resolved global settings every client verb uses.
type settings struct {
	Server  string
	Token   string
	Project string
	// ProjectSet says the project was named (--project or WARD_PROJECT)
	// rather than taken by default.
	ProjectSet bool
	Output     string
	// ContextErr is why the context file could not be read, reported only if
	// it was needed (no server from flags or environment).
	ContextErr error
}

// usageError is a mistake in how the command was called: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// taskFailedError reports a task that ended in a state other than succeeded.
type taskFailedError struct{ task ward.Task }

func (e taskFailedError) Error() string {
	t := e.task
	if t.Error != nil && t.Error.Message != "" {
		return fmt.Sprintf("task %s %s: %s", t.ID, t.Status, t.Error.Message)
	}
	return fmt.Sprintf("task %s %s", t.ID, t.Status)
}

func (e taskFailedError) code() ward.Code {
	if e.task.Error != nil && e.task.Error.Code != "" {
		return e.task.Error.Code
	}
	if e.task.Status == ward.StatusCancelled {
		return ward.CodeCancelled
	}
	return ward.CodeTaskFailed
}

// resolveSettings applies flags > environment > context file. The context
// file's token is used only for the context file's server, so a token saved
// for one server is never sent to another.
func resolveSettings(f flagValues, getenv func(string) string, loadContext func() (client.Context, error)) (settings, error) {
	s := settings{Output: f.Output}
	if s.Output != outputTable && s.Output != outputJSON {
		return settings{}, usagef("--output must be %q or %q", outputTable, outputJSON)
	}
	s.Project, s.ProjectSet = f.Project, f.ProjectSet
	if !f.ProjectSet {
		s.Project = ward.DefaultProject
		if p := getenv("WARD_PROJECT"); p != "" {
			s.Project, s.ProjectSet = p, true
		}
	}
	if !ward.ValidName(s.Project) {
		return settings{}, usagef("project %q is not a valid name (lowercase letters, digits and '-', 1-63 characters)", s.Project)
	}
	s.Server = firstNonEmpty(f.Server, getenv("WARD_SERVER"))
	s.Token = firstNonEmpty(f.Token, getenv("WARD_TOKEN"))
	if s.Server != "" && s.Token != "" {
		return s, nil
	}
	c, err := loadContext()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.ContextErr = err
		}
		return s, nil
	}
	if s.Server == "" {
		s.Server = c.Server
	}
	if s.Token == "" && sameServer(s.Server, c.Server) {
		s.Token = c.Token
	}
	return s, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// sameServer compares two server URLs, ignoring trailing slashes.
func sameServer(a, b string) bool {
	a, b = strings.TrimRight(a, "/"), strings.TrimRight(b, "/")
	return a != "" && a == b
}

// configPath is where the CLI context file lives.
func (g *globals) configPath() (string, error) {
	return client.DefaultConfigPath(g.getenv("WARD_CONFIG"))
}

// client returns an API client for the resolved settings.
func (g *globals) client() (*client.Client, error) {
	if g.cfg.Server == "" {
		if g.cfg.ContextErr != nil {
			return nil, &ward.Error{Code: ward.CodeInvalidArgument, Message: g.cfg.ContextErr.Error()}
		}
		return nil, ward.Errorf(ward.CodeInvalidArgument,
			"no server configured: run 'ward login URL --token TOKEN', or set --server or WARD_SERVER")
	}
	return client.New(g.cfg.Server, g.cfg.Token, client.WithUserAgent(userAgent))
}

// newRootCmd builds the command tree around g.
func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "ward",
		Short: "ward: a secure-by-default serverless task platform",
		Long: `ward runs WebAssembly functions as tasks from a durable queue, each in its own
sandbox under hard limits. 'ward dev' runs a whole platform locally; 'ward
server' and 'ward runner run' run a cluster's servers and runners; every
other command is a client of a ward server.

The server, token and project come from --server/--token/--project, else from
WARD_SERVER/WARD_TOKEN/WARD_PROJECT, else from the file 'ward login' writes
($WARD_CONFIG, default ~/.config/ward/config.json). The project defaults to
"default".`,
		Example: `  ward dev
  ward deploy hello ./examples/hello
  echo '{"name":"ada"}' | ward invoke hello
  ward task submit hello --payload '{"name":"ada"}' --wait
  ward task list --status failed -o json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.flags.ProjectSet = cmd.Flags().Changed("project")
			cfg, err := resolveSettings(g.flags, g.getenv, func() (client.Context, error) {
				path, err := g.configPath()
				if err != nil {
					return client.Context{}, err
				}
				return client.LoadContext(path)
			})
			if err != nil {
				return err
			}
			g.cfg = cfg
			g.started = true
			return nil
		},
	}
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.flags.Server, "server", "", "ward server URL (env WARD_SERVER)")
	pf.StringVar(&g.flags.Token, "token", "", "API token (env WARD_TOKEN)")
	pf.StringVar(&g.flags.Project, "project", ward.DefaultProject, "project (env WARD_PROJECT)")
	pf.StringVarP(&g.flags.Output, "output", "o", outputTable, "output format: table or json")

	root.AddCommand(
		newDevCmd(g),
		newServerCmd(g),
		newRunnerCmd(g),
		newLoginCmd(g),
		newProjectCmd(g),
		newTokenCmd(g),
		newDeployCmd(g),
		newFunctionCmd(g),
		newConfigCmd(g),
		newTaskCmd(g),
		newInvokeCmd(g),
		newTopCmd(g),
		newTopologyCmd(g),
		newDetokenizeCmd(g),
		newSecretCmd(g),
		newAlertCmd(g),
		newSealingKeyCmd(g),
		newKeysCmd(g),
	)
	return root
}

// run executes the CLI with args and returns the process exit status.
func run(ctx context.Context, g *globals, args []string) int {
	root := newRootCmd(g)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) || !g.started {
		fmt.Fprintf(g.stderr, "ward: %s\nRun '%s --help' for usage.\n", strings.TrimSpace(err.Error()), cmd.CommandPath())
		return 2
	}
	code, msg := describe(err)
	fmt.Fprintf(g.stderr, "ward: %s: %s\n", code, strings.TrimSpace(msg))
	return 1
}

// describe returns the code and message printed for a failed command.
func describe(err error) (ward.Code, string) {
	var tf taskFailedError
	var ae *client.APIError
	var we *ward.Error
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &tf):
		return tf.code(), tf.Error()
	case errors.As(err, &ae):
		msg := ae.Message
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d %s", ae.Status, http.StatusText(ae.Status))
		}
		if ae.TaskID != "" {
			msg += " (task " + ae.TaskID + ")"
		}
		return ae.Code, msg
	case errors.As(err, &we):
		return we.Code, we.Error()
	case errors.Is(err, context.Canceled):
		return ward.CodeCancelled, err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue), errors.As(err, &ne):
		return ward.CodeUnavailable, err.Error()
	}
	return ward.CodeInternal, err.Error()
}
