// Package server assembles a ward server: the store (embedded SQLite or
// PostgreSQL), the keystore, the queue, the HTTP API and the audit log, and
// either an in-process runner with the wasm sandbox (`ward dev`) or the
// internal runner API on a listener of its own for remote runners over
// mutual TLS (`ward server`), or both.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/alert"
	"github.com/wardhq/ward/internal/api"
	"github.com/wardhq/ward/internal/audit"
	"github.com/wardhq/ward/internal/auth"
	"github.com/wardhq/ward/internal/pki"
	"github.com/wardhq/ward/internal/queue"
	"github.com/wardhq/ward/internal/retention"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/sandbox/oci"
	"github.com/wardhq/ward/internal/sandbox/wasm"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/store/postgres"
	"github.com/wardhq/ward/internal/store/sealed"
	"github.com/wardhq/ward/internal/store/sqlite"
	"github.com/wardhq/ward/internal/telemetry"
)

// Config is a single-node ward, parsed once by cmd/ward.
type Config struct {
	DataDir string // holds the database, keys, caches and the audit log
	Addr    string // listen address of the API, e.g. 127.0.0.1:7070
	Logger  *slog.Logger
	Now     func() time.Time

	Slots          int           // runner slots (0 = default)
	MemoryBudgetMB int           // runner memory budget (0 = default)
	ShutdownGrace  time.Duration // running tasks' time to finish on shutdown
	// StoreDSN, when set, is a PostgreSQL connection URL: the store lives
	// there instead of DataDir/ward.db. An unreachable server is retried
	// until ctx ends.
	StoreDSN string
	// KeystoreDSN, when set, is a PostgreSQL URL of the keystore's own
	// database (apart from the store's): the keystore lives there instead
	// of KeysDir/keystore.db. The root key stays in KeysDir or RootKey.
	KeystoreDSN string
	// KeysDir holds the root key file, the keystore and the token signing
	// key; "" means DataDir/keys. Put it on another disk than DataDir to
	// keep the keys apart from the data they protect.
	KeysDir string
	// RootKey, when set, is the root key (base64 of a keyset, as
	// WARD_ROOT_KEY holds it) instead of the file root.key in KeysDir.
	RootKey  string
	LeaseTTL time.Duration // 0 = the queue's default
	// PurgeInterval is the time between retention passes (0 = hourly).
	PurgeInterval time.Duration

	// Initialized means the keys were made by Init and are shared by the
	// servers of a cluster: a missing root key or signing key is an error,
	// never made anew.
	Initialized bool
	// InternalAddr, when set, is the listen address of the internal runner
	// API, served with mutual TLS under the cluster CA in KeysDir.
	InternalAddr string
	// InternalNames are the host names and IPs runners reach the internal
	// API by, for its certificate; the host name, localhost and the
	// loopback addresses are always in it.
	InternalNames []string
	// RunnerCertTTL is the life of the certificates runners get at join
	// (0 = api.DefaultRunnerCertTTL).
	RunnerCertTTL time.Duration
	// NoRunner leaves out the in-process runner: tasks run on remote
	// runners only.
	NoRunner bool
	// Containers configures the in-process runner's container sandbox.
	Containers Containers
	// MetricsAddr, when set, is the listen address of a plain HTTP
	// listener serving GET /metrics without authentication, for a
	// Prometheus on a private network. The API serves /metrics to admin
	// tokens either way.
	MetricsAddr string
	// AlertInterval is the time between alert evaluations, and the
	// shortest for a rule may have (0 = alert.DefaultInterval).
	AlertInterval time.Duration
	// AlertTimeout bounds one webhook attempt (0 = alert.DefaultTimeout).
	AlertTimeout time.Duration

	// plaintext leaves the store unsealed: for the encryption benchmark's
	// baseline only (see export_test.go); never reachable from outside.
	plaintext bool
}

// Containers configures a runner's container (oci) sandbox.
type Containers struct {
	On       bool   // run container tasks where the host can
	Runtime  string // the OCI runtime binary; "" is runc
	StateDir string // image cache and task files; "" is DATA/oci (its parents must be o+x)
	// Overcommit, above 1, admits tasks whose memory limits add up to that
	// many times the memory budget, and caps the containers together at
	// the budget (runner.Options.Overcommit).
	Overcommit float64
}

// OpenContainers returns the container sandbox for a runner with the
// memory budget (0: the runner's default), or an error saying why
// container tasks cannot run here (its code is unavailable).
func OpenContainers(ctx context.Context, c Containers, budgetMB int, log *slog.Logger) (*oci.Sandbox, error) {
	if budgetMB <= 0 {
		budgetMB = runner.DefaultMemoryBudgetMB()
	}
	opts := oci.Options{Runtime: c.Runtime, StateDir: c.StateDir, Logger: log}
	if c.Overcommit > 1 {
		opts.NodeMemoryMB = budgetMB
	}
	return oci.New(ctx, opts)
}

// Issuer and audience of the server's tokens.
const (
	tokenIssuer   = "ward"
	tokenAudience = "ward-api"
)

// Server is an opened single-node ward.
type Server struct {
	cfg     Config
	log     *slog.Logger
	Store   store.Store // the sealed view of db: bodies and config encrypted
	db      store.Store
	keys    *seal.Keystore
	Queue   *queue.Service
	Runner  *runner.Runner // nil with NoRunner
	Sandbox *wasm.Sandbox
	// Containers is the in-process runner's container sandbox; nil where
	// container tasks cannot run (the log says why) or are off.
	Containers *oci.Sandbox
	Issuer     *auth.Issuer
	Auth       *auth.Authenticator
	audit      *audit.Log
	api        *api.Server
	// Purger enforces retention: finished tasks are deleted and epoch keys
	// destroyed once past it.
	Purger *retention.Purger
	// Metrics are the server's Prometheus metrics.
	Metrics *telemetry.Metrics
	// Alerts evaluates alert rules and sends their webhooks.
	Alerts *alert.Evaluator

	ln       net.Listener
	iln      net.Listener // the internal runner API's, with TLS; nil without
	mln      net.Listener // the plain metrics listener; nil without
	unlock   func()       // releases the data dir lock
	stopping chan struct{}
	stopOnce sync.Once
}

// Open creates or opens the data directory and assembles the platform; it
// listens on cfg.Addr but serves only once Serve is called.
func Open(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeysDir == "" {
		cfg.KeysDir = filepath.Join(cfg.DataDir, "keys")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.Initialized && cfg.StoreDSN != "" && cfg.KeystoreDSN == "" {
		// Servers sharing a store must share its keystore: one of its own
		// could neither read the others' data nor they its.
		return nil, ward.Errorf(ward.CodeInvalidArgument, "a server on a shared PostgreSQL store needs the shared keystore too (--keystore postgres://…)")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, stopping: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.unlock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	var fresh bool
	if s.db, fresh, err = openStore(ctx, cfg); err != nil {
		return nil, err
	}
	if s.keys, err = openKeystore(ctx, cfg, fresh && !cfg.Initialized); err != nil {
		return nil, err
	}
	s.Store = sealed.New(s.db, s.keys, cfg.Now)
	if cfg.plaintext {
		s.Store = s.db
	}
	s.Purger = retention.New(retention.Options{Store: s.Store, Keys: s.keys, Logger: cfg.Logger, Now: cfg.Now, Interval: cfg.PurgeInterval})
	loadKey := auth.LoadOrCreateKey
	if cfg.Initialized {
		loadKey = auth.LoadKey
	}
	key, err := loadKey(filepath.Join(cfg.KeysDir, "signing.key"))
	if err != nil {
		return nil, err
	}
	s.Issuer = auth.NewIssuer(key, tokenIssuer, tokenAudience, cfg.Now)
	s.Auth = auth.NewAuthenticator(s.Issuer, s.Store, cfg.Now)
	if s.audit, err = audit.Open(filepath.Join(cfg.DataDir, "audit.log"), cfg.Now); err != nil {
		return nil, err
	}
	if s.Sandbox, err = wasm.New(ctx, wasm.Options{Logger: cfg.Logger, CacheDir: filepath.Join(cfg.DataDir, "cache", "wasm")}); err != nil {
		return nil, err
	}
	s.Metrics = telemetry.New(telemetry.Options{Counts: s.Store, Logger: cfg.Logger, Now: cfg.Now})
	// The embedded store has one server (the data dir lock says so): it
	// holds the alert lock under a fixed name, so a restart takes it back
	// at once rather than after the last holder's lease.
	holder := ""
	if cfg.StoreDSN == "" {
		holder = "local"
	}
	s.Alerts = alert.New(alert.Options{Store: s.Store, Rejections: s.Metrics, Counts: s.Metrics.Counts(), OnSurge: s.auditSurge, Logger: cfg.Logger, Now: cfg.Now,
		Interval: cfg.AlertInterval, Timeout: cfg.AlertTimeout, Holder: holder})
	notifier, _ := s.db.(store.Notifier)
	bus, _ := s.db.(store.Broadcaster)
	s.Queue = queue.New(queue.Options{Store: s.Store, Logger: cfg.Logger, Now: cfg.Now, LeaseTTL: cfg.LeaseTTL, Tokens: s.keys, Notifier: notifier,
		Observer: s.Metrics, Bus: bus, Keys: s.keys})
	if !cfg.NoRunner {
		var more []sandbox.Sandbox
		if cfg.Containers.On {
			c := cfg.Containers
			if c.StateDir == "" {
				c.StateDir = filepath.Join(cfg.DataDir, "oci")
			}
			if s.Containers, err = OpenContainers(ctx, c, cfg.MemoryBudgetMB, cfg.Logger); err != nil {
				cfg.Logger.Warn("container tasks cannot run on this node; wasm tasks can", "reason", err)
				s.Containers = nil
			} else {
				more = append(more, s.Containers)
			}
		}
		s.Runner = runner.New(runner.Options{
			Source:         s.Queue,
			Sandbox:        s.Sandbox,
			Sandboxes:      more,
			Logger:         cfg.Logger,
			Slots:          cfg.Slots,
			MemoryBudgetMB: cfg.MemoryBudgetMB,
			Overcommit:     cfg.Containers.Overcommit,
			ShutdownGrace:  cfg.ShutdownGrace,
			OnColdStart:    s.Metrics.ColdStart,
		})
		s.Metrics.WatchRunner(s.Runner)
	}
	var ca *pki.CA
	if cfg.InternalAddr != "" {
		if ca, err = pki.LoadCA(cfg.KeysDir); err != nil {
			return nil, fmt.Errorf("cluster CA (made by `ward server init`): %w", err)
		}
	}
	s.api = api.New(api.Config{
		Store:  s.Store,
		Queue:  s.Queue,
		Auth:   s.Auth,
		Issuer: s.Issuer,
		Code:   s.Sandbox,
		Audit:  s.audit,
		Logger: cfg.Logger,
		Now:    cfg.Now,
		Ready:  s.ready,

		Runners:       s.Queue,
		CA:            ca,
		RunnerCertTTL: cfg.RunnerCertTTL,

		Metrics:  s.Metrics.Handler(),
		Requests: s.Metrics,
		Counts:   s.Metrics.Counts(),

		AlertInterval: s.Alerts.Interval(),
		Topology:      s.topology,
	})
	if _, err := s.Store.CreateProject(ctx, &store.CreateProjectParams{Name: ward.DefaultProject, Now: cfg.Now()}); err != nil && !errors.Is(err, ward.ErrAlreadyExists) {
		return nil, err
	}
	// With the embedded store this process owns the store: a task still
	// running was left by a process that died, so it goes back to the queue
	// now rather than after its lease expires. A shared store's running
	// tasks may belong to other servers: their leases expire on their own.
	if cfg.StoreDSN == "" {
		if n, err := s.Queue.ReapOrphans(ctx); err != nil {
			return nil, err
		} else if n > 0 {
			s.log.Warn("returned tasks of a previous run to the queue", "tasks", n)
		}
	}
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if cfg.InternalAddr != "" {
		if s.iln, err = listenInternal(cfg, ca); err != nil {
			return nil, err
		}
	}
	if cfg.MetricsAddr != "" {
		if s.mln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.MetricsAddr, err)
		}
	}
	return s, nil
}

// serverCertTTL is the life of the certificate a server makes itself for
// the internal API each time it starts.
const serverCertTTL = 365 * 24 * time.Hour

// listenInternal listens for the internal runner API with a certificate
// the cluster CA issues for this server's names, demanding a runner
// certificate of the same CA from every caller but a joining one.
func listenInternal(cfg Config, ca *pki.CA) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.InternalAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.InternalAddr, err)
	}
	names := append([]string{hostname(), "localhost", "127.0.0.1", "::1"}, cfg.InternalNames...)
	if host, _, err := net.SplitHostPort(cfg.InternalAddr); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			names = append(names, host)
		}
	}
	cert, err := ca.ServerCert(names, cfg.Now(), serverCertTTL)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return tls.NewListener(ln, pki.ServerTLS(ca, cert)), nil
}

// InternalURL is the internal runner API's base URL, or "" without one.
func (s *Server) InternalURL() string {
	if s.iln == nil {
		return ""
	}
	return "https://" + s.iln.Addr().String()
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// MetricsURL is the plain metrics listener's URL of /metrics, or "" without
// one.
func (s *Server) MetricsURL() string {
	if s.mln == nil {
		return ""
	}
	return "http://" + s.mln.Addr().String() + "/metrics"
}

// URL is the API's base URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Serve runs the API, the runner, the lease reaper and the retention purger
// until ctx is done,
// then shuts down gracefully: the API stops taking requests, running tasks
// get the grace period to finish, the rest go back to the queue. It serves
// once; Close afterwards.
func (s *Server) Serve(ctx context.Context) error {
	hs := api.NewHTTPServer(s.cfg.Addr, s.api.Handler())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	if s.Runner != nil {
		wg.Go(func() {
			if err := s.Runner.Run(runCtx); err != nil {
				errc <- fmt.Errorf("runner: %w", err)
			}
		})
	}
	var ihs *http.Server
	if s.iln != nil {
		ihs = api.NewHTTPServer(s.cfg.InternalAddr, s.api.InternalHandler())
		ihs.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug) // failed handshakes of strangers
		wg.Go(func() {
			if err := ihs.Serve(s.iln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("internal http: %w", err)
				stop()
			}
		})
	}
	var mhs *http.Server
	if s.mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.Metrics.Handler())
		mhs = api.NewHTTPServer(s.cfg.MetricsAddr, mux)
		wg.Go(func() {
			if err := mhs.Serve(s.mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics http: %w", err)
				stop()
			}
		})
	}
	wg.Go(func() { _ = s.Queue.Run(runCtx) })
	wg.Go(func() { s.Purger.Run(runCtx) })
	wg.Go(func() { s.Alerts.Run(runCtx) })
	wg.Go(func() {
		if err := hs.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
			stop()
		}
	})
	<-runCtx.Done()
	s.stopOnce.Do(func() { close(s.stopping) })
	s.log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace+5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	if ihs != nil {
		// Runners' long polls end with the connection; their leases stay
		// theirs and they carry on with another server.
		if err := ihs.Shutdown(shutCtx); err != nil {
			s.log.Warn("internal http shutdown", "err", err)
		}
	}
	if mhs != nil {
		if err := mhs.Shutdown(shutCtx); err != nil {
			s.log.Warn("metrics http shutdown", "err", err)
		}
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// auditSurge records a change of a project's builtin submit-surge rule in
// the audit log.
func (s *Server) auditSurge(ctx context.Context, n ward.AlertNotification) {
	err := s.audit.Record(ctx, audit.Event{Actor: "ward", Role: "system", Action: "alert " + string(n.State),
		Project: n.Project, Resource: n.Alert, Outcome: audit.OutcomeOK})
	if err != nil {
		s.log.Warn("audit the submission surge", "project", n.Project, "err", err)
	}
}

func (s *Server) ready(ctx context.Context) error {
	select {
	case <-s.stopping:
		return ward.Errorf(ward.CodeUnavailable, "shutting down")
	default:
	}
	_, err := s.Store.GetProject(ctx, ward.DefaultProject)
	return err
}

// Close releases the listener, the sandbox, the audit log and the store.
// Call it once Serve has returned (or instead of Serve).
func (s *Server) Close() {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.iln != nil {
		s.iln.Close()
	}
	if s.mln != nil {
		s.mln.Close()
	}
	if s.Sandbox != nil {
		s.Sandbox.Close(context.Background())
	}
	if s.Containers != nil {
		if err := s.Containers.Close(context.Background()); err != nil {
			s.log.Warn("close the container sandbox", "err", err)
		}
	}
	if s.audit != nil {
		s.audit.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
	if s.keys != nil {
		s.keys.Close()
	}
	if s.unlock != nil {
		s.unlock()
	}
}

// openKeystore opens the keystore kept apart from the store
// (KeysDir/keystore.db) under the root key: cfg.RootKey, or the file
// KeysDir/root.key, which is created only along with a fresh store — a
// missing root key for existing data stops the server rather than hiding the
// data behind a new key.
func openKeystore(ctx context.Context, cfg Config, fresh bool) (*seal.Keystore, error) {
	dir := cfg.KeysDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys dir: %w", err)
	}
	var root seal.RootKey
	var err error
	if cfg.RootKey != "" {
		root, err = seal.RootKeyFromEnv(cfg.RootKey)
	} else {
		root, err = seal.LoadOrCreateRootKeyFile(filepath.Join(dir, "root.key"), fresh)
	}
	if err != nil {
		return nil, err
	}
	if cfg.KeystoreDSN != "" {
		return seal.OpenKeystoreDSN(ctx, cfg.KeystoreDSN, root, cfg.Now)
	}
	return seal.OpenKeystore(ctx, filepath.Join(dir, "keystore.db"), root, cfg.Now)
}

// openStore opens the embedded SQLite store in the data directory, or the
// PostgreSQL store of cfg.StoreDSN, retrying an unreachable server until ctx
// ends. fresh says the store holds no data yet, so a root key may be made.
func openStore(ctx context.Context, cfg Config) (st store.Store, fresh bool, err error) {
	if cfg.StoreDSN == "" {
		dbPath := filepath.Join(cfg.DataDir, "ward.db")
		_, statErr := os.Stat(dbPath)
		db, err := sqlite.Open(ctx, dbPath, cfg.Logger)
		if err != nil {
			return nil, false, err
		}
		return db, errors.Is(statErr, os.ErrNotExist), nil
	}
	wait := time.Second
	for {
		db, err := postgres.Open(ctx, cfg.StoreDSN, cfg.Logger)
		if err == nil {
			ps, err := db.ListProjects(ctx)
			if err != nil {
				db.Close()
				return nil, false, err
			}
			return db, len(ps) == 0, nil
		}
		if !postgres.Unreachable(err) {
			return nil, false, err
		}
		cfg.Logger.Warn("PostgreSQL is unreachable; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, false, fmt.Errorf("PostgreSQL never became reachable: %w", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
