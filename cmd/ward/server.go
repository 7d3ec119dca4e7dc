package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/internal/pki"
	"github.com/wardhq/ward/internal/server"
)

// serverFlags are the flags `ward server` and `ward server init` share.
type serverFlags struct {
	dataDir, keysDir, storeDSN, keystoreDSN, logLevel string
}

func (f *serverFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.dataDir, "data", ".ward-server", "this server's own directory (audit log, lock); with no --store, the SQLite store too")
	fs.StringVar(&f.keysDir, "keys", "", "keys directory shared by the cluster's servers: root key, token signing key, cluster CA (default DATA/keys)")
	fs.StringVar(&f.storeDSN, "store", "", "PostgreSQL URL of the store (postgres://…); without it, the embedded SQLite store in DATA, for a single server")
	fs.StringVar(&f.keystoreDSN, "keystore", "", "PostgreSQL URL of the keystore's own database (apart from --store's); without it, KEYS/keystore.db")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
}

func (f *serverFlags) config(g *globals) (server.Config, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return server.Config{}, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	keys := f.keysDir
	if keys == "" {
		keys = filepath.Join(f.dataDir, "keys")
	}
	return server.Config{
		DataDir: f.dataDir, KeysDir: keys, StoreDSN: f.storeDSN, KeystoreDSN: f.keystoreDSN,
		RootKey: g.getenv("WARD_ROOT_KEY"),
		Logger:  slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level})),
	}, nil
}

// newServerCmd is `ward server`: one of any number of stateless servers.
func newServerCmd(g *globals) *cobra.Command {
	var (
		sf                 serverFlags
		addr, internalAddr string
		metricsAddr        string
		names              []string
		certTTL, grace     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a stateless API server; remote runners run the tasks",
		Long: `Run one ward server: the public API on --addr and the internal runner API on
--internal-addr, a listener of its own with mutual TLS under the cluster CA,
never the public one. The server keeps no state of its own beyond an audit
log: the store is PostgreSQL (--store), the keystore another PostgreSQL
database (--keystore), and any number of servers with the same keys
directory and the same two URLs can run behind a load balancer. Tasks run on
remote runners ('ward runner run'); the server runs none itself.

Run 'ward server init' once first: it makes the keys every server shares.
SIGINT or SIGTERM stop the server gracefully: open requests finish, runners
carry on with another server. PostgreSQL unreachable at start is retried.`,
		Example: `  ward server init --keys /etc/ward/keys --store "$STORE" --keystore "$KEYSTORE"
  ward server --keys /etc/ward/keys --store "$STORE" --keystore "$KEYSTORE" \
    --addr :7070 --internal-addr :7071 --internal-name ward-internal.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sf.config(g)
			if err != nil {
				return err
			}
			if err := distinctListeners(addr, internalAddr); err != nil {
				return err
			}
			cfg.Addr, cfg.InternalAddr, cfg.InternalNames = addr, internalAddr, names
			cfg.MetricsAddr = metricsAddr
			cfg.RunnerCertTTL, cfg.ShutdownGrace = certTTL, grace
			cfg.Initialized, cfg.NoRunner = true, true
			srv, err := server.Open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			cfg.Logger.Info("ward server is ready", "api", srv.URL(), "internal", srv.InternalURL())
			return srv.Serve(cmd.Context())
		},
	}
	sf.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:7070", "listen address of the public API")
	f.StringVar(&internalAddr, "internal-addr", "127.0.0.1:7071", "listen address of the internal runner API (mutual TLS); never the public one")
	f.StringVar(&metricsAddr, "metrics-addr", "", "listen address of a plain HTTP listener serving /metrics without a token, for Prometheus on a private network (default none: the API serves /metrics to admin tokens)")
	f.StringArrayVar(&names, "internal-name", nil, "a host name or IP runners reach the internal API by, for its certificate (repeatable; the host name and loopback are always in)")
	f.DurationVar(&certTTL, "runner-cert-ttl", 90*24*time.Hour, "life of the certificates runners get when they join")
	f.DurationVar(&grace, "grace", 10*time.Second, "on shutdown, how long open requests may finish")
	cmd.AddCommand(newServerInitCmd(g), newServerCACmd(g))
	return cmd
}

// distinctListeners refuses an internal API on the public listener.
func distinctListeners(public, internal string) error {
	if internal == "" {
		return usagef("--internal-addr is required: the runner API has a listener of its own")
	}
	ph, pp, err1 := net.SplitHostPort(public)
	ih, ip, err2 := net.SplitHostPort(internal)
	if err1 != nil || err2 != nil {
		return usagef("--addr and --internal-addr must be host:port")
	}
	if pp == ip && pp != "0" && (ph == ih || ph == "" || ih == "" || net.ParseIP(ph).IsUnspecified() || net.ParseIP(ih).IsUnspecified()) {
		return usagef("--internal-addr %s would share the public listener %s; give it a port of its own", internal, public)
	}
	return nil
}

func newServerInitCmd(g *globals) *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make the keys a cluster's servers share, and prepare the store and keystore",
		Long: `Prepare a cluster once, before any server starts: in the keys directory the
root key (root.key, unless WARD_ROOT_KEY is set), the token signing key
(signing.key) and the cluster CA (ca.crt, ca.key) that issues runner and
server certificates; the store's schema (--store); the keystore (--keystore),
opened under the root key. What exists is kept, so init may run again.

On the first init it prints an admin API token, once. Copy the keys
directory to every server (mode 0700: it holds the keys to all data) and
keep a backup of it apart from the backups of the store.`,
		Example: `  ward server init --keys /etc/ward/keys \
    --store postgres://ward@db/ward --keystore postgres://ward@keysdb/wardkeys`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sf.config(g)
			if err != nil {
				return err
			}
			rep, err := server.Init(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if g.cfg.Output == outputJSON {
				return writeJSON(g.stdout, rep)
			}
			made := func(b bool) string {
				if b {
					return "created"
				}
				return "kept"
			}
			fmt.Fprintf(g.stdout, "keys directory %s\n", rep.KeysDir)
			if cfg.RootKey == "" {
				fmt.Fprintf(g.stdout, "  root key     %s\n", made(rep.RootKeyMade))
			}
			fmt.Fprintf(g.stdout, "  signing key  %s\n  cluster CA   %s\nstore and keystore ready\n", made(rep.SigningMade), made(rep.CAMade))
			if rep.AdminToken != "" {
				fmt.Fprintf(g.stdout, "admin token (shown once):\n%s\n", rep.AdminToken)
			}
			return nil
		},
	}
	sf.bind(cmd)
	return cmd
}

func newServerCACmd(g *globals) *cobra.Command {
	cmd := groupCmd("ca", "Rotate the cluster CA (offline, on the keys directory)")
	cmd.Long = `The cluster CA (KEYS/ca.crt, ca.key) issues the certificates of runners and
of servers' internal listeners. Rotate it in four steps, restarting the
servers after each change of the keys directory (copy it to all of them):

  1. ward server ca stage     a new CA is made and trusted, not yet used;
                              restart the runners so they fetch the bundle
  2. ward server ca promote   the new CA signs; the old one stays trusted
  3. recycle every runner with a new join token (its certificate is then
     from the new CA)
  4. ward server ca retire    the old CA is no longer trusted`
	var keysDir string
	step := func(use, short string, fn func(dir string) error) *cobra.Command {
		c := &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				if keysDir == "" {
					return usagef("--keys is required")
				}
				if err := fn(keysDir); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "%s: done; copy %s to every server and restart them\n", use, keysDir)
				return nil
			},
		}
		c.Flags().StringVar(&keysDir, "keys", "", "the cluster's keys directory")
		return c
	}
	cmd.AddCommand(
		step("stage", "Make a new CA, trusted but not yet signing", func(dir string) error { return pki.StageCA(dir, g.now()) }),
		step("promote", "Sign with the staged CA; keep trusting the old one", func(dir string) error { return pki.PromoteCA(dir, g.now()) }),
		step("retire", "Stop trusting the CAs promote replaced", pki.RetireCAs),
	)
	return cmd
}
