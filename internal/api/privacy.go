package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/audit"
	"github.com/wardhq/ward/internal/auth"
	"github.com/wardhq/ward/internal/privacy"
	"github.com/wardhq/ward/internal/queue"
)

// submitFanout makes one task per function from one payload; the queue
// projects and tokenizes each by its own function's input rules, so no task
// holds more of the payload than its function may see.
func (s *Server) submitFanout(w http.ResponseWriter, r *http.Request, c *call) error {
	var req ward.FanoutRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxSubmitBody), &req); err != nil {
		return err
	}
	if len(req.Functions) == 0 || len(req.Functions) > ward.MaxFanout {
		return ward.FieldError("functions", "must name 1 to %d functions", ward.MaxFanout)
	}
	reqs := make([]ward.SubmitRequest, len(req.Functions))
	for i, fn := range req.Functions {
		if !ward.ValidName(fn) {
			return ward.FieldError(fmt.Sprintf("functions[%d]", i), "must be 1-63 lowercase letters, digits or '-', not starting with '-'")
		}
		if slices.Contains(req.Functions[:i], fn) {
			return ward.FieldError(fmt.Sprintf("functions[%d]", i), "names %s twice", fn)
		}
		reqs[i] = ward.SubmitRequest{Function: fn, Payload: req.Payload, PayloadB64: req.PayloadB64,
			Priority: req.Priority, DelayS: req.DelayS, Labels: req.Labels}
	}
	res, err := s.q.Submit(r.Context(), &queue.SubmitParams{
		Project: c.project, SubmittedBy: c.principal.TokenID, Requests: reqs, Batch: true, List: "functions",
	})
	if err != nil {
		return err
	}
	out := ward.BatchSubmitResponse{Tasks: make([]ward.Task, len(res))}
	for i := range res {
		out.Tasks[i] = res[i].Task.Task
	}
	s.writeJSON(w, r, http.StatusAccepted, out)
	return nil
}

// detokenize re-identifies a batch of tokens for a caller with the
// detokenize scope; the call is audited with the number of tokens asked.
func (s *Server) detokenize(w http.ResponseWriter, r *http.Request, c *call) error {
	var req ward.DetokenizeRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxJSONBody), &req); err != nil {
		return err
	}
	if len(req.Tokens) == 0 || len(req.Tokens) > ward.MaxDetokenize {
		return ward.FieldError("tokens", "must hold 1 to %d tokens", ward.MaxDetokenize)
	}
	for i, t := range req.Tokens {
		if !privacy.IsToken(t) {
			return ward.FieldError(fmt.Sprintf("tokens[%d]", i), "is not a token (%s followed by 32 base32 characters)", privacy.TokenPrefix)
		}
	}
	c.resource = strconv.Itoa(len(req.Tokens)) + " tokens"
	got, err := s.st.GetTokens(r.Context(), c.project, req.Tokens)
	if err != nil {
		return err
	}
	out := ward.DetokenizeResponse{Values: make(map[string]json.RawMessage, len(got))}
	for t, v := range got {
		out.Values[t] = json.RawMessage(v)
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// wantsDetokenize reports whether the request asks for re-identification
// (?detokenize=1) and the caller may have it. Anyone else sees tokens.
func wantsDetokenize(r *http.Request, c *call) bool {
	return r.URL.Query().Get("detokenize") == "1" && c.principal.Can(auth.ScopeDetokenize)
}

// reidentify replaces the tokens in a result with their originals and
// writes an audit record of the re-identification (who, which task, how
// many tokens). It fails closed: no record, no originals.
func (s *Server) reidentify(r *http.Request, c *call, taskID string, b []byte) ([]byte, error) {
	tokens := privacy.FindTokens(b, ward.MaxDetokenize)
	if len(tokens) == 0 {
		return b, nil
	}
	got, err := s.st.GetTokens(r.Context(), c.project, tokens)
	if err != nil {
		return nil, err
	}
	out, err := privacy.Detokenize(b, got)
	if err != nil {
		return nil, err
	}
	if err := s.recordAs(r, c, "detokenize", fmt.Sprintf("%s (%d tokens)", taskID, len(got)), audit.OutcomeOK); err != nil {
		return nil, err
	}
	return out, nil
}
