package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/server"
)

// newDevCmd is `ward dev`: a whole single-node platform in one process.
func newDevCmd(g *globals) *cobra.Command {
	var (
		dataDir, keysDir, storeDSN, keystoreDSN, addr, examples, logLevel string
		metricsAddr                                                       string
		slots, budget                                                     int
		grace                                                             time.Duration
		containers                                                        containerFlags
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run ward in one process: API, queue, runner, on embedded SQLite or PostgreSQL",
		Long: `Run the whole platform in one process on the embedded store in --data, or
with --store on PostgreSQL (and --keystore, the keystore in a PostgreSQL
database of its own), which several such processes can share.

On first start it creates an admin token and writes the CLI context
(server URL and token) to $WARD_CONFIG (default ~/.config/ward/config.json,
mode 0600), so every other verb works without flags. It builds the Go
examples under --examples for WebAssembly and deploys them into project
"default". SIGINT or SIGTERM shut down gracefully: running tasks get --grace
to finish, the rest go back to the queue. Restarting on the same --data keeps
every project, function, task and token.

Task payloads, results, logs, config and secret values and code are
encrypted before they reach the database, with keys kept in a separate
keystore (KEYS/keystore.db, KEYS being --keys or DATA/keys) under a root key:
KEYS/root.key, created with a new data directory, or $WARD_ROOT_KEY (base64). Without its root key, existing data does not open:
ward refuses to start rather than create a new one.`,
		Example: `  ward dev
  ward dev --data /var/lib/ward --addr 127.0.0.1:8080
  ward dev --store postgres://ward@127.0.0.1:5432/ward`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level: %w", err)}
			}
			logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			cfgPath, err := client.DefaultConfigPath(g.getenv("WARD_CONFIG"))
			if err != nil {
				return err
			}
			ctrs, err := containers.config()
			if err != nil {
				return err
			}
			// main's context ends on SIGINT or SIGTERM: a graceful shutdown.
			return runDev(cmd.Context(), devConfig{
				server: server.Config{
					DataDir: dataDir, KeysDir: keysDir, StoreDSN: storeDSN, KeystoreDSN: keystoreDSN, Addr: addr, Logger: logger,
					Slots: slots, MemoryBudgetMB: budget, ShutdownGrace: grace, MetricsAddr: metricsAddr,
					RootKey: g.getenv("WARD_ROOT_KEY"), Containers: ctrs,
				},
				examples:   examples,
				configPath: cfgPath,
				logger:     logger,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", defaultDataDir, "data directory (database, caches, audit log; keys too unless --keys)")
	f.StringVar(&keysDir, "keys", "", "keys directory: root key, keystore, token signing key (default DATA/keys; put it on another disk to keep keys apart from data)")
	f.StringVar(&storeDSN, "store", "", "a PostgreSQL URL (postgres://…) to keep the store there instead of DATA/ward.db; an unreachable server is retried")
	f.StringVar(&keystoreDSN, "keystore", "", "a PostgreSQL URL of the keystore's own database (apart from --store's) instead of KEYS/keystore.db")
	f.StringVar(&addr, "addr", "127.0.0.1:7070", "listen address of the API")
	f.StringVar(&metricsAddr, "metrics-addr", "", "listen address of a plain HTTP listener serving /metrics without a token (default none: the API serves /metrics to admin tokens)")
	f.StringVar(&examples, "examples", "examples", "directory of example functions to build and deploy (skipped if missing)")
	f.IntVar(&slots, "slots", 0, "most tasks run at once (0 = 32 per CPU)")
	f.IntVar(&budget, "memory-budget", 0, "MiB of memory handed to tasks by their memory_mb (0 = half the machine's)")
	f.DurationVar(&grace, "grace", 10*time.Second, "on shutdown, how long running tasks may finish")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	containers.register(f)
	return cmd
}

type devConfig struct {
	server     server.Config
	examples   string
	configPath string
	logger     *slog.Logger
}

func runDev(ctx context.Context, c devConfig) error {
	srv, err := server.Open(ctx, c.server)
	if err != nil {
		return err
	}
	defer srv.Close()
	prev, err := client.LoadContext(c.configPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.logger.Warn("ignoring unreadable CLI context", "path", c.configPath, "err", err)
	}
	existing := ""
	if prev.Server == srv.URL() {
		existing = prev.Token
	}
	token, minted, err := srv.AdminToken(ctx, existing)
	if err != nil {
		return err
	}
	if minted || prev.Server != srv.URL() {
		if err := client.SaveContext(c.configPath, client.Context{Server: srv.URL(), Token: token}); err != nil {
			return err
		}
		c.logger.Info("wrote CLI context with an admin token", "path", c.configPath)
	}
	deployed := "none"
	if st, err := os.Stat(c.examples); err == nil && st.IsDir() {
		c.logger.Info("building examples (cached after the first time)", "dir", c.examples)
		names, err := srv.DeployExamples(ctx, c.examples, filepath.Join(c.server.DataDir, "cache", "gobuild"))
		if err != nil {
			return err
		}
		deployed = strings.Join(names, ", ")
	}
	c.logger.Info("ward dev is ready", "url", srv.URL(), "data", c.server.DataDir, "project", "default", "functions", deployed)
	return srv.Serve(ctx)
}
