// Package api is ward's public HTTP API (docs/api.md): routing, the
// authentication and scope checks every route passes, strict request
// decoding, the handlers, the one mapping from error codes to HTTP statuses,
// and the audit records of sensitive calls.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/alert"
	"github.com/wardhq/ward/internal/audit"
	"github.com/wardhq/ward/internal/auth"
	"github.com/wardhq/ward/internal/pki"
	"github.com/wardhq/ward/internal/queue"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/store"
	"github.com/wardhq/ward/internal/telemetry"
)

// Queue is the part of the task queue the API uses; *queue.Service
// implements it.
type Queue interface {
	Submit(ctx context.Context, p *queue.SubmitParams) ([]store.InsertResult, error)
	Get(ctx context.Context, project, id string) (store.TaskRecord, error)
	Wait(ctx context.Context, project, id string, d time.Duration) (store.TaskRecord, error)
	List(ctx context.Context, p *store.ListTasksParams) ([]store.TaskRecord, error)
	Body(ctx context.Context, project, id string, b store.Body) ([]byte, error)
	Describe(ctx context.Context, rec *store.TaskRecord) error
	Cancel(ctx context.Context, project, id string) (store.TaskRecord, error)
	Retry(ctx context.Context, project, id string) (store.TaskRecord, error)
	Invoke(ctx context.Context, p *queue.InvokeParams) (store.TaskRecord, []byte, error)
	SealingKey(ctx context.Context, project, function string) (ward.SealingKey, error)
	// CheckStorage refuses (project_storage_quota) to store n more bytes
	// for a function of a project at its quotas.max_stored_mb.
	CheckStorage(ctx context.Context, project, function string, n int64) error
	ConfigChanged(project string)
}

var _ Queue = (*queue.Service)(nil)

// CodeChecker validates uploaded code before it is stored; a sandbox
// implements it. Invalid code gets a *ward.Error with code invalid_module.
type CodeChecker interface {
	Prepare(ctx context.Context, a sandbox.Artifact) error
}

// Config wires a Server. Store, Queue, Auth, Issuer, Code and Audit are
// required.
type Config struct {
	Store  store.Store
	Queue  Queue
	Auth   *auth.Authenticator
	Issuer *auth.Issuer
	Code   CodeChecker
	Audit  *audit.Log
	Logger *slog.Logger     // default: discard
	Now    func() time.Time // default: time.Now
	// Ready reports whether the server can take traffic (the store answers,
	// the server is not shutting down); nil means always ready.
	Ready func(ctx context.Context) error
	// Runners is what the internal runner API serves (the queue); CA signs
	// runner certificates, for RunnerCertTTL (default
	// DefaultRunnerCertTTL), and pins join tokens. Without a CA no runner
	// can join and no join token is made.
	Runners       runner.Source
	CA            *pki.CA
	RunnerCertTTL time.Duration
	// Metrics, when set, serves GET /metrics to admin tokens; Requests,
	// when set, is told of every request (route pattern, status, time).
	Metrics  http.Handler
	Requests RequestObserver
	// Topology describes the server and where it keeps and sends data, for
	// GET /v1/topology (which adds the runners); nil: the route answers
	// only the runners.
	Topology func() ward.Topology
	// Counts reads the task counts of GET /v1/projects/{p}/stats; give it
	// the metrics' (telemetry.Metrics.Counts) so that both share one read.
	// nil: a cache of Store's own, read at most once a second.
	Counts TaskCounts
	// AlertInterval is the alert evaluator's interval, the shortest for an
	// alert rule may have (0 = alert.DefaultInterval).
	AlertInterval time.Duration
}

// Server serves the API. It is safe for concurrent use.
type Server struct {
	st    store.Store
	q     Queue
	authn *auth.Authenticator
	iss   *auth.Issuer
	code  CodeChecker
	audit *audit.Log
	log   *slog.Logger
	now   func() time.Time
	ready func(ctx context.Context) error
	// the internal runner API
	runners runner.Source
	ca      *pki.CA
	certTTL time.Duration
	// metrics
	metricsH http.Handler
	requests RequestObserver
	counts   TaskCounts
	topology func() ward.Topology
	// alertInterval is the shortest for of an alert rule.
	alertInterval time.Duration

	mux    *http.ServeMux
	root   http.Handler
	routes []route
}

// Caps on request bodies.
const (
	maxJSONBody   = 1 << 20            // JSON bodies other than submissions
	maxSubmitBody = 16 << 20           // single and batch task submissions
	maxCodeBody   = 64 << 20           // code uploads
	maxImageBody  = ward.MaxImageBytes // image archive uploads
	// maxInvokeBody bounds a synchronous invoke's payload before the
	// function's own max_payload_kb applies.
	maxInvokeBody = 10 << 20
)

// Timeouts of the HTTP server and of the long-running routes.
const (
	readHeaderTimeout = 10 * time.Second
	// readTimeout covers reading a whole request, a 64 MiB upload included.
	readTimeout  = 2 * time.Minute
	writeTimeout = 2 * time.Minute
	idleTimeout  = 2 * time.Minute
	// maxHeaderBytes bounds request headers; a token is well under 4 KiB.
	maxHeaderBytes = 64 << 10
	// deadlineMargin is added to a route's own wait when its deadlines are
	// extended past the server's defaults.
	deadlineMargin = 30 * time.Second
	// maxWait caps the ?wait= long poll.
	maxWait = 60 * time.Second
	// readyTimeout bounds a readiness check.
	readyTimeout = 2 * time.Second
)

// New returns a Server. It panics when a required dependency is missing, a
// wiring mistake rather than a runtime condition.
func New(cfg Config) *Server {
	switch {
	case cfg.Store == nil, cfg.Queue == nil, cfg.Auth == nil, cfg.Issuer == nil, cfg.Code == nil, cfg.Audit == nil:
		panic("api: New needs Store, Queue, Auth, Issuer, Code and Audit")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		st: cfg.Store, q: cfg.Queue, authn: cfg.Auth, iss: cfg.Issuer, code: cfg.Code, audit: cfg.Audit,
		log: cfg.Logger, now: cfg.Now, ready: cfg.Ready, mux: http.NewServeMux(),
		runners: cfg.Runners, ca: cfg.CA, certTTL: cfg.RunnerCertTTL,
		metricsH: cfg.Metrics, requests: cfg.Requests, counts: cfg.Counts, alertInterval: cfg.AlertInterval,
		topology: cfg.Topology,
	}
	if s.counts == nil {
		s.counts = telemetry.NewCounts(telemetry.Options{Counts: cfg.Store, Logger: cfg.Logger, Now: cfg.Now})
	}
	if s.alertInterval <= 0 {
		s.alertInterval = alert.DefaultInterval
	}
	if s.certTTL <= 0 {
		s.certTTL = DefaultRunnerCertTTL
	}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	// Every project's metrics: admin tokens only, which the scope alone
	// cannot say (project roles hold metrics:read for their own project).
	s.mux.Handle("GET /metrics", s.wrap(route{pattern: "GET /metrics", scope: auth.ScopeMetricsRead, h: s.metrics}))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.root = s.withRequestID(s.withServe(http.HandlerFunc(s.dispatch), s.requests))
	return s
}

// Handler returns the API's root handler.
func (s *Server) Handler() http.Handler { return s.root }

// NewHTTPServer returns an http.Server for h with every timeout set. Routes
// that legitimately run longer (?wait= long polls, synchronous invokes)
// extend their own connection deadlines.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// route is one authenticated API route.
type route struct {
	pattern string
	// scope is what the caller's role must grant; "" admits any valid token.
	scope auth.Scope
	// audited routes record every call, whatever its outcome, and answer
	// only once the record is written.
	audited bool
	h       handlerFunc
}

// inProject reports whether the route names a project ({p}).
func (rt route) inProject() bool { return strings.Contains(rt.pattern, "{p}") }

// handlerFunc handles an authenticated, authorized call. It either writes a
// response and returns nil, or returns an error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// routeTable lists the API's routes (docs/api.md).
func (s *Server) routeTable() []route {
	return []route{
		{"POST /v1/projects", auth.ScopeProjectsAdmin, true, s.createProject},
		{"GET /v1/projects", "", false, s.listProjects},
		{"GET /v1/projects/{p}", auth.ScopeTasksRead, false, s.getProject},
		{"PATCH /v1/projects/{p}", auth.ScopeProjectWrite, true, s.patchProject},
		{"DELETE /v1/projects/{p}", auth.ScopeProjectsAdmin, true, s.deleteProject},

		{"POST /v1/projects/{p}/tokens", auth.ScopeTokensWrite, true, s.createToken},
		{"DELETE /v1/projects/{p}/tokens/{id}", auth.ScopeTokensWrite, true, s.revokeToken},

		{"GET /v1/projects/{p}/functions", auth.ScopeFunctionsRead, false, s.listFunctions},
		{"GET /v1/projects/{p}/functions/{fn}", auth.ScopeFunctionsRead, false, s.getFunction},
		{"PUT /v1/projects/{p}/functions/{fn}", auth.ScopeFunctionsWrite, false, s.putFunction},
		{"DELETE /v1/projects/{p}/functions/{fn}", auth.ScopeFunctionsWrite, false, s.deleteFunction},
		{"PUT /v1/projects/{p}/functions/{fn}/code", auth.ScopeFunctionsWrite, true, s.putCode},

		{"GET /v1/projects/{p}/config", auth.ScopeConfigRead, false, s.getConfig},
		{"PUT /v1/projects/{p}/config", auth.ScopeConfigWrite, true, s.putConfig},
		{"GET /v1/projects/{p}/functions/{fn}/config", auth.ScopeConfigRead, false, s.getConfig},
		{"PUT /v1/projects/{p}/functions/{fn}/config", auth.ScopeConfigWrite, true, s.putConfig},

		{"GET /v1/projects/{p}/secrets", auth.ScopeSecretsWrite, false, s.listSecrets},
		{"PUT /v1/projects/{p}/secrets/{name}", auth.ScopeSecretsWrite, true, s.putSecret},
		{"DELETE /v1/projects/{p}/secrets/{name}", auth.ScopeSecretsWrite, true, s.deleteSecret},
		{"GET /v1/projects/{p}/functions/{fn}/secrets", auth.ScopeSecretsWrite, false, s.listSecrets},
		{"PUT /v1/projects/{p}/functions/{fn}/secrets/{name}", auth.ScopeSecretsWrite, true, s.putSecret},
		{"DELETE /v1/projects/{p}/functions/{fn}/secrets/{name}", auth.ScopeSecretsWrite, true, s.deleteSecret},
		{"GET /v1/projects/{p}/functions/{fn}/sealing-key", auth.ScopeTasksSubmit, false, s.getSealingKey},

		{"POST /v1/projects/{p}/tasks", auth.ScopeTasksSubmit, false, s.submitTask},
		{"POST /v1/projects/{p}/tasks/batch", auth.ScopeTasksSubmit, false, s.submitBatch},
		{"POST /v1/projects/{p}/tasks/fanout", auth.ScopeTasksSubmit, false, s.submitFanout},
		{"POST /v1/projects/{p}/detokenize", auth.ScopeDetokenize, true, s.detokenize},
		{"GET /v1/projects/{p}/tasks", auth.ScopeTasksRead, false, s.listTasks},
		{"GET /v1/projects/{p}/tasks/{id}", auth.ScopeTasksRead, false, s.getTask},
		{"GET /v1/projects/{p}/tasks/{id}/result", auth.ScopeResultsRead, true, s.taskBody(bodyResult)},
		{"GET /v1/projects/{p}/tasks/{id}/log", auth.ScopeLogsRead, true, s.taskBody(bodyLog)},
		{"GET /v1/projects/{p}/tasks/{id}/payload", auth.ScopePayloadRead, true, s.taskBody(bodyPayload)},
		{"POST /v1/projects/{p}/tasks/{id}/cancel", auth.ScopeTasksCancel, false, s.cancelTask},
		{"POST /v1/projects/{p}/tasks/{id}/retry", auth.ScopeTasksCancel, false, s.retryTask},

		{"POST /v1/projects/{p}/functions/{fn}/invoke", auth.ScopeInvoke, false, s.invoke},

		{"GET /v1/projects/{p}/alerts", auth.ScopeMetricsRead, false, s.listAlerts},
		{"GET /v1/projects/{p}/alerts/{name}", auth.ScopeMetricsRead, false, s.getAlert},
		{"GET /v1/projects/{p}/alerts/{name}/history", auth.ScopeMetricsRead, false, s.alertHistory},
		{"PUT /v1/projects/{p}/alerts/{name}", auth.ScopeConfigWrite, true, s.putAlert},
		{"DELETE /v1/projects/{p}/alerts/{name}", auth.ScopeConfigWrite, true, s.deleteAlert},
		{"GET /v1/projects/{p}/stats", auth.ScopeMetricsRead, false, s.stats},

		{"GET /v1/runners", auth.ScopeRunnersAdmin, false, s.listRunners},
		{"GET /v1/topology", auth.ScopeTopologyRead, false, s.getTopology},
		{"POST /v1/runners/{id}/drain", auth.ScopeRunnersAdmin, true, s.drainRunner},
		{"POST /v1/runners/join-tokens", auth.ScopeRunnersAdmin, true, s.createJoinToken},
	}
}

// dispatch routes a request, answering unknown routes with a JSON 404 and
// known paths with the wrong method with a JSON 405.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	// Ask the mux's own fallback what it would answer, then answer in JSON.
	probe := &probeWriter{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		s.writeError(w, r, errMethodNotAllowed(r.Method))
		return
	}
	s.writeError(w, r, errNoRoute())
}

// probeWriter records the status a handler writes and discards the rest.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
func (p *probeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			s.writeError(w, r, errUnavailable())
			return
		}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// extendDeadlines lets a long-running route outlive the server's read and
// write timeouts: both connection deadlines move to d (plus a margin) from
// now. Without the read deadline moved, the server's background read would
// time out and cancel the request's context mid-wait.
func extendDeadlines(w http.ResponseWriter, d time.Duration) {
	if d+deadlineMargin <= min(readTimeout, writeTimeout) {
		return
	}
	rc := http.NewResponseController(w)
	// Connection deadlines are wall-clock times, whatever the server's clock.
	t := time.Now().Add(d + deadlineMargin)
	// Errors mean the writer has no connection (tests) or the connection
	// is gone; either way there is nothing to extend.
	_ = rc.SetReadDeadline(t)
	_ = rc.SetWriteDeadline(t)
}
