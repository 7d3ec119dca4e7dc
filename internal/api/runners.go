package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/audit"
	"github.com/wardhq/ward/internal/pki"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/runner/remote"
	"github.com/wardhq/ward/internal/store"
)

// Join tokens and runner certificates.
const (
	defaultJoinTTL = time.Hour
	maxJoinTTL     = 7 * 24 * time.Hour
	// DefaultRunnerCertTTL is a runner certificate's life unless configured.
	DefaultRunnerCertTTL = 90 * 24 * time.Hour
	// maxInternalBody caps an internal request (a batch of results).
	maxInternalBody = 64 << 20
)

// listRunners answers GET /v1/runners.
func (s *Server) listRunners(w http.ResponseWriter, r *http.Request, _ *call) error {
	rs, err := s.st.ListRunners(r.Context())
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []ward.Runner{}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"runners": rs})
	return nil
}

// getTopology answers GET /v1/topology: the server's own description with
// the runners of the store.
func (s *Server) getTopology(w http.ResponseWriter, r *http.Request, _ *call) error {
	var t ward.Topology
	if s.topology != nil {
		t = s.topology()
	}
	rs, err := s.st.ListRunners(r.Context())
	if err != nil {
		return err
	}
	t.Runners = rs
	if t.Runners == nil {
		t.Runners = []ward.Runner{}
	}
	s.writeJSON(w, r, http.StatusOK, t)
	return nil
}

// drainRunner answers POST /v1/runners/{id}/drain: the runner learns it at
// its next heartbeat or lease call, finishes its tasks and leaves.
func (s *Server) drainRunner(w http.ResponseWriter, r *http.Request, _ *call) error {
	rn, err := s.st.SetRunnerState(r.Context(), &store.SetRunnerStateParams{ID: r.PathValue("id"), State: ward.RunnerDraining, Now: s.now()})
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, rn)
	return nil
}

// createJoinToken answers POST /v1/runners/join-tokens with a one-time
// token for `ward runner join`, pinned to this cluster's CA.
func (s *Server) createJoinToken(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.ca == nil {
		return ward.Errorf(ward.CodeInvalidState, "this server has no cluster CA: runners join servers started by `ward server` after `ward server init`")
	}
	var req ward.JoinTokenRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxJSONBody), &req); err != nil {
		return err
	}
	ttl := defaultJoinTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d < time.Minute || d > maxJoinTTL {
			return ward.FieldError("ttl", "must be a duration between 1m and %s (e.g. \"1h\")", "168h")
		}
		ttl = d
	}
	tok, err := pki.NewJoinToken(s.ca)
	if err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Second)
	if err := s.st.CreateJoinToken(r.Context(), &store.CreateJoinTokenParams{
		ID: tok.ID, Hash: tok.Hash(), CreatedBy: c.principal.TokenID, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}); err != nil {
		return err
	}
	c.resource = tok.ID
	s.writeJSON(w, r, http.StatusCreated, ward.JoinTokenResponse{Token: tok.String(), ID: tok.ID, ExpiresAt: now.Add(ttl)})
	return nil
}

// InternalHandler returns the internal runner API (remote runners, mutual
// TLS) for a listener of its own, never the public one. It needs
// Config.Runners; every route but join needs a client certificate of the
// cluster CA, which names the runner.
func (s *Server) InternalHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+remote.PathJoin, s.join)
	mux.Handle("POST "+remote.PathRegister, s.asRunner(s.registerRunner))
	mux.Handle("POST "+remote.PathLease, s.asRunner(s.leaseJobs))
	mux.Handle("POST "+remote.PathHeartbeat, s.asRunner(s.heartbeat))
	mux.Handle("POST "+remote.PathComplete, s.asRunner(s.complete))
	mux.Handle("POST "+remote.PathRelease, s.asRunner(func(w http.ResponseWriter, r *http.Request, id string) error {
		return s.noContent(w, s.runners.Release(r.Context(), id))
	}))
	mux.Handle("POST "+remote.PathDrained, s.asRunner(func(w http.ResponseWriter, r *http.Request, id string) error {
		return s.noContent(w, s.runners.Drained(r.Context(), id))
	}))
	mux.Handle("GET "+remote.PathCode+"{p}/{digest}", s.asRunner(s.runnerCode))
	mux.Handle("POST "+remote.PathLog, s.asRunner(s.streamLog))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errNoRoute()) })
	return s.withRequestID(s.withServe(mux, nil))
}

// runnerHandler handles a call of an authenticated runner.
type runnerHandler func(w http.ResponseWriter, r *http.Request, runnerID string) error

// asRunner admits only a caller with a verified runner certificate.
func (s *Server) asRunner(h runnerHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := "", false
		if r.TLS != nil {
			id, ok = pki.RunnerID(r.TLS)
		}
		if !ok || s.runners == nil {
			s.writeError(w, r, ward.Errorf(ward.CodeUnauthenticated, "a runner certificate of this cluster is required"))
			return
		}
		if err := h(w, r, id); err != nil {
			if r.Context().Err() != nil {
				// The runner hung up (shut down, or gave up on a long poll).
				s.log.DebugContext(r.Context(), "runner went away", "request_id", requestID(r.Context()), "runner", id, "err", err)
				return
			}
			s.writeError(w, r, err)
		}
	})
}

// decodeInternal decodes a runner's request body: the peer is a runner of
// this cluster, so a plain strict decode is enough.
func decodeInternal(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxInternalBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return ward.Errorf(ward.CodeBodyTooLarge, "request body exceeds %d bytes", maxErr.Limit)
		}
		return ward.Errorf(ward.CodeInvalidJSON, "request body: %v", err)
	}
	return nil
}

func (s *Server) noContent(w http.ResponseWriter, err error) error {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
	}
	return err
}

// join trades a join token for a runner certificate. The certificate is
// made first and the token spent only then, so a bad request does not
// waste a token; every attempt is audited.
func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	var req remote.JoinRequest
	runnerID, tokenID := "", ""
	err := func() error {
		if s.ca == nil || s.runners == nil {
			return ward.Errorf(ward.CodeInvalidState, "this server takes no runners")
		}
		if err := decodeInternal(w, r, &req); err != nil {
			return err
		}
		tok, err := pki.ParseJoinToken(req.Token)
		if err != nil {
			return err
		}
		tokenID = tok.ID
		runnerID = runner.NewID()
		now := s.now()
		cert, err := s.ca.SignRunner([]byte(req.CSR), runnerID, now, s.certTTL)
		if err != nil {
			return err
		}
		if err := s.st.ConsumeJoinToken(r.Context(), &store.ConsumeJoinTokenParams{ID: tok.ID, Hash: tok.Hash(), RunnerID: runnerID, Now: now}); err != nil {
			return err
		}
		s.writeJSON(w, r, http.StatusOK, remote.JoinResponse{RunnerID: runnerID, Cert: string(cert), CA: string(s.ca.Bundle())})
		return nil
	}()
	outcome := "ok"
	if err != nil {
		outcome = string(ward.CodeOf(err))
		if outcome == "" {
			outcome = string(ward.CodeInternal)
		}
	}
	if aerr := s.audit.Record(context.WithoutCancel(r.Context()), audit.Event{
		Actor: "join:" + tokenID, Role: string(ward.RoleRunner), Action: "runner.join", Resource: runnerID, Outcome: outcome,
	}); aerr != nil && err == nil {
		s.log.ErrorContext(r.Context(), "audit record of a runner join failed", "runner", runnerID, "err", aerr)
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) registerRunner(w http.ResponseWriter, r *http.Request, id string) error {
	var info ward.Runner
	if err := decodeInternal(w, r, &info); err != nil {
		return err
	}
	info.ID, info.Remote = id, true
	if err := s.runners.Register(r.Context(), info); err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, remote.RegisterResponse{CA: string(s.ca.Bundle())})
	return nil
}

func (s *Server) leaseJobs(w http.ResponseWriter, r *http.Request, id string) error {
	var req runner.LeaseRequest
	if err := decodeInternal(w, r, &req); err != nil {
		return err
	}
	if req.Max < 0 || req.FreeMemoryMB < 0 || req.Wait < 0 {
		return ward.Errorf(ward.CodeInvalidArgument, "max, free_memory_mb and wait_ns must not be negative")
	}
	req.RunnerID, req.Wait = id, min(req.Wait, remote.MaxLeaseWait)
	extendDeadlines(w, req.Wait)
	jobs, err := s.runners.Lease(r.Context(), &req)
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = []runner.Job{}
	}
	s.writeJSON(w, r, http.StatusOK, remote.LeaseResponse{Jobs: jobs})
	return nil
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, id string) error {
	var req remote.HeartbeatRequest
	if err := decodeInternal(w, r, &req); err != nil {
		return err
	}
	reply, err := s.runners.Heartbeat(r.Context(), id, req.Leases)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, reply)
	return nil
}

// complete records finished runs. A run whose lease was lost (the runner
// was fenced off) is ignored and answered stale_lease; the status is then
// 409.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, _ string) error {
	var req remote.CompleteRequest
	if err := decodeInternal(w, r, &req); err != nil {
		return err
	}
	errs, err := s.runners.Complete(r.Context(), req.Results)
	if err != nil {
		return err
	}
	resp := remote.CompleteResponse{Errors: make([]*remote.ErrorDetail, len(errs))}
	status := http.StatusOK
	for i, e := range errs {
		if e == nil {
			continue
		}
		code, msg := ward.CodeOf(e), e.Error()
		switch code {
		case ward.CodeStaleLease:
			status = http.StatusConflict
		case ward.CodeInternal:
			s.log.ErrorContext(r.Context(), "complete", "request_id", requestID(r.Context()), "task", req.Results[i].TaskID, "err", e)
			msg = "internal error"
		}
		resp.Errors[i] = &remote.ErrorDetail{Code: code, Message: msg}
	}
	if status == http.StatusConflict {
		// The error names the status; the answers per result still come.
		s.writeJSON(w, r, status, struct {
			remote.CompleteResponse
			Error remote.ErrorDetail `json:"error"`
		}{resp, remote.ErrorDetail{Code: ward.CodeStaleLease, Message: "a result of a lease that is no longer held was ignored"}})
		return nil
	}
	s.writeJSON(w, r, status, resp)
	return nil
}

// streamLog takes a chunk of a run's live log. A chunk of a lease that is
// no longer the task's answers 409 stale_lease; so does every chunk where
// the server keeps no live logs.
func (s *Server) streamLog(w http.ResponseWriter, r *http.Request, _ string) error {
	var c runner.LogChunk
	if err := decodeInternal(w, r, &c); err != nil {
		return err
	}
	switch {
	case c.Project == "" || c.TaskID == "" || c.LeaseID == "":
		return ward.Errorf(ward.CodeInvalidArgument, "project, task_id and lease_id are required")
	case c.Offset < 0:
		return ward.FieldError("offset", "must not be negative")
	case len(c.Data) > remote.MaxLogChunk:
		return ward.Errorf(ward.CodeBodyTooLarge, "a log chunk holds at most %d bytes", remote.MaxLogChunk)
	}
	ls, ok := s.runners.(runner.LogStreamer)
	if !ok {
		return ward.ErrStaleLease
	}
	return s.noContent(w, ls.StreamLog(r.Context(), c))
}

func (s *Server) runnerCode(w http.ResponseWriter, r *http.Request, _ string) error {
	code, err := s.runners.Code(r.Context(), r.PathValue("p"), r.PathValue("digest"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, err = w.Write(code)
	if err != nil {
		s.log.DebugContext(r.Context(), "write code", "err", err)
	}
	return nil
}
