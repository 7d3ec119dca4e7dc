package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/queue"
	"github.com/wardhq/ward/internal/store"
)

// taskIDHeader names the task behind a synchronous invoke's response.
const taskIDHeader = "Ward-Task-Id"

func (s *Server) submitTask(w http.ResponseWriter, r *http.Request, c *call) error {
	req, err := decodeSubmit(http.MaxBytesReader(w, r.Body, maxSubmitBody))
	if err != nil {
		return err
	}
	reqs := []ward.SubmitRequest{req}
	if err := scopeIdempotency(c, reqs, false); err != nil {
		return err
	}
	res, err := s.q.Submit(r.Context(), &queue.SubmitParams{
		Project: c.project, SubmittedBy: c.principal.TokenID, Requests: reqs,
	})
	if err != nil {
		return err
	}
	if len(res) != 1 {
		return fmt.Errorf("api: submit returned %d results for 1 task", len(res))
	}
	status := http.StatusAccepted
	if res[0].Existing {
		status = http.StatusOK
	}
	s.writeJSON(w, r, status, res[0].Task.Task)
	return nil
}

func (s *Server) submitBatch(w http.ResponseWriter, r *http.Request, c *call) error {
	req, err := decodeBatch(http.MaxBytesReader(w, r.Body, maxSubmitBody))
	if err != nil {
		return err
	}
	if err := scopeIdempotency(c, req.Tasks, true); err != nil {
		return err
	}
	res, err := s.q.Submit(r.Context(), &queue.SubmitParams{
		Project: c.project, SubmittedBy: c.principal.TokenID, Requests: req.Tasks, Batch: true,
	})
	if err != nil {
		return err
	}
	if len(res) != len(req.Tasks) {
		return fmt.Errorf("api: submit returned %d results for %d tasks", len(res), len(req.Tasks))
	}
	out := ward.BatchSubmitResponse{Tasks: make([]ward.Task, len(res))}
	for i := range res {
		out.Tasks[i] = res[i].Task.Task
	}
	s.writeJSON(w, r, http.StatusAccepted, out)
	return nil
}

// scopeIdempotency gives a token restricted to its own tasks its own
// idempotency keys, so that reusing another token's key neither returns nor
// reveals that token's task. batch makes field names name the index.
func scopeIdempotency(c *call, reqs []ward.SubmitRequest, batch bool) error {
	if !c.principal.OwnTasksOnly() {
		return nil
	}
	for i := range reqs {
		key := reqs[i].IdempotencyKey
		if key == "" {
			continue
		}
		if len(key) > ward.MaxIdemKeyLen {
			field := "idempotency_key"
			if batch {
				field = fmt.Sprintf("tasks[%d].%s", i, field)
			}
			return ward.FieldError(field, "at most %d bytes", ward.MaxIdemKeyLen)
		}
		sum := sha256.Sum256([]byte(c.principal.TokenID + "\x00" + key))
		reqs[i].IdempotencyKey = "token:" + hex.EncodeToString(sum[:])
	}
	return nil
}

// listTasks lists task metadata, newest first, one page at a time. For a
// token restricted to its own tasks, other tasks are left out of each page
// (which may then be shorter than limit); the cursor still pages on.
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	p := store.ListTasksParams{Project: c.project, Limit: ward.DefaultPageSize}
	if fn := q.Get("function"); fn != "" {
		if !ward.ValidName(fn) {
			return ward.FieldError("function", "must be a function name")
		}
		p.Function = fn
	}
	if st := q.Get("status"); st != "" {
		if !ward.Status(st).Valid() {
			return ward.FieldError("status", "must be one of queued, running, succeeded, failed, cancelled")
		}
		p.Status = ward.Status(st)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > ward.MaxPageSize {
			return ward.FieldError("limit", "must be between 1 and %d", ward.MaxPageSize)
		}
		p.Limit = n
	}
	if cur := q.Get("cursor"); cur != "" {
		before, err := decodeCursor(cur)
		if err != nil {
			return err
		}
		p.Before = before
	}
	recs, err := s.q.List(r.Context(), &p)
	if err != nil {
		return err
	}
	out := ward.TaskList{Tasks: make([]ward.Task, 0, len(recs))}
	for _, rec := range recs {
		if c.principal.OwnTasksOnly() && rec.SubmittedBy != c.principal.TokenID {
			continue
		}
		out.Tasks = append(out.Tasks, rec.Task)
	}
	if len(recs) == p.Limit {
		out.NextCursor = encodeCursor(recs[len(recs)-1].ID)
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// A cursor is the base64url of the last listed task's ID; clients treat it
// as opaque.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || len(b) > 64 || !validTaskID(string(b)) {
		return "", ward.FieldError("cursor", "is not a cursor this API returned")
	}
	return string(b), nil
}

// validTaskID reports whether s looks like a task ID ("t_" and lowercase hex
// or other ID characters); anything else cannot name a task.
func validTaskID(s string) bool {
	if len(s) < 3 || len(s) > 64 || s[:2] != "t_" {
		return false
	}
	for i := 2; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// task returns the {id} task of the call's project, as not_found when the
// caller may not see it (a submitter asking for another token's task).
func (s *Server) task(r *http.Request, c *call) (store.TaskRecord, error) {
	id := r.PathValue("id")
	if !validTaskID(id) {
		return store.TaskRecord{}, errTaskNotFound(id)
	}
	rec, err := s.q.Get(r.Context(), c.project, id)
	if err != nil {
		if errors.Is(err, ward.ErrNotFound) {
			return store.TaskRecord{}, errTaskNotFound(id)
		}
		return store.TaskRecord{}, err
	}
	if c.principal.OwnTasksOnly() && rec.SubmittedBy != c.principal.TokenID {
		return store.TaskRecord{}, errTaskNotFound(id)
	}
	return rec, nil
}

func errTaskNotFound(id string) error {
	if !validTaskID(id) {
		return &ward.Error{Code: ward.CodeNotFound, Message: "task not found"}
	}
	return ward.Errorf(ward.CodeNotFound, "task %s not found", id)
}

// getTask returns a task; ?wait= long-polls until it is terminal.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request, c *call) error {
	wait, err := parseWait(r.URL.Query().Get("wait"))
	if err != nil {
		return err
	}
	rec, err := s.task(r, c)
	if err != nil {
		return err
	}
	if wait > 0 && !rec.Status.Terminal() {
		extendDeadlines(w, wait)
		rec, err = s.q.Wait(r.Context(), c.project, rec.ID, wait)
		if err != nil {
			return err
		}
	}
	if err := s.q.Describe(r.Context(), &rec); err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, rec.Task)
	return nil
}

// parseWait parses ?wait=: a Go duration ("30s") or whole seconds ("30"),
// capped at maxWait.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	bad := ward.FieldError("wait", "must be a duration such as 30s, or seconds, at most %s", maxWait)
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(v); err != nil || d < 0 {
		return 0, bad
	}
	return min(d, maxWait), nil
}

// bodyKind says which body a body route serves and when it exists.
type bodyKind struct {
	body store.Body
	// finishedOnly bodies exist only once the task is terminal.
	finishedOnly bool
}

var (
	bodyResult  = bodyKind{body: store.BodyResult, finishedOnly: true}
	bodyLog     = bodyKind{body: store.BodyLog, finishedOnly: true}
	bodyPayload = bodyKind{body: store.BodyPayload}
)

// taskBody returns a handler serving one of a task's bodies.
func (s *Server) taskBody(k bodyKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		follow := false
		if k.body == store.BodyLog {
			var err error
			if follow, err = parseFollow(r.URL.Query().Get("follow")); err != nil {
				return err
			}
		}
		rec, err := s.task(r, c)
		if err != nil {
			return err
		}
		if follow && !rec.Status.Terminal() {
			return s.followLog(w, r, c, rec)
		}
		if k.finishedOnly && !rec.Status.Terminal() {
			return ward.Errorf(ward.CodeInvalidState, "task %s is %s; its %s is available once it has finished", rec.ID, rec.Status, k.body)
		}
		b, err := s.q.Body(r.Context(), c.project, rec.ID, k.body)
		if err != nil {
			return err
		}
		if k.body == store.BodyResult && wantsDetokenize(r, c) {
			if b, err = s.reidentify(r, c, rec.ID, b); err != nil {
				return err
			}
		}
		ct := "application/octet-stream"
		switch {
		case k.body == store.BodyLog:
			ct = "text/plain; charset=utf-8"
		case len(b) > 0 && json.Valid(b):
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b) // a client gone mid-response is not an error of ours
		return nil
	}
}

func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request, c *call) error {
	rec, err := s.task(r, c)
	if err != nil {
		return err
	}
	rec, err = s.q.Cancel(r.Context(), c.project, rec.ID)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, rec.Task)
	return nil
}

func (s *Server) retryTask(w http.ResponseWriter, r *http.Request, c *call) error {
	rec, err := s.task(r, c)
	if err != nil {
		return err
	}
	rec, err = s.q.Retry(r.Context(), c.project, rec.ID)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, rec.Task)
	return nil
}

// invoke runs a function synchronously: the request body is the payload,
// the response body the result.
func (s *Server) invoke(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("fn")
	if err := validFunctionName(name); err != nil {
		return err
	}
	timeoutS := 0
	if v := r.URL.Query().Get("timeout_s"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > ward.MaxTimeoutS {
			return ward.FieldError("timeout_s", "must be between 1 and the function's timeout_s")
		}
		timeoutS = n
	}
	fn, err := s.st.GetFunction(r.Context(), c.project, name)
	if err != nil {
		return err
	}
	payload, err := readBody(http.MaxBytesReader(w, r.Body, maxInvokeBody), ward.CodeInvalidArgument)
	if err != nil {
		return err
	}
	wait := time.Duration(fn.Spec.WithDefaults().Limits.TimeoutS) * time.Second
	if timeoutS > 0 {
		wait = time.Duration(timeoutS) * time.Second
	}
	extendDeadlines(w, wait)

	rec, result, err := s.q.Invoke(r.Context(), &queue.InvokeParams{
		Project: c.project, Function: name, SubmittedBy: c.principal.TokenID, Payload: payload, TimeoutS: timeoutS,
	})
	if rec.ID != "" {
		w.Header().Set(taskIDHeader, rec.ID)
	}
	switch {
	case err != nil && ward.CodeOf(err) == ward.CodeTimeout:
		s.writeErrorBody(w, r, http.StatusGatewayTimeout, errorBody{
			Error:  errorDetail{Code: ward.CodeTimeout, Message: fmt.Sprintf("task %s did not finish in time", rec.ID)},
			TaskID: rec.ID,
		})
		return nil
	case err != nil && errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return nil // the client left; nobody reads an answer
	case err != nil:
		return err
	case rec.Status == ward.StatusSucceeded:
		if wantsDetokenize(r, c) {
			if result, err = s.reidentify(r, c, rec.ID, result); err != nil {
				return err
			}
		}
		ct := "application/octet-stream"
		if len(result) > 0 && json.Valid(result) {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.Itoa(len(result)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(result) // a client gone mid-response is not an error of ours
		return nil
	}
	// The task failed (or was cancelled meanwhile).
	detail := errorDetail{Code: ward.CodeTaskFailed, Message: fmt.Sprintf("task %s %s", rec.ID, rec.Status)}
	if rec.Error != nil {
		detail.Code = rec.Error.Code
		if rec.Error.Message != "" {
			detail.Message = rec.Error.Message
		}
	}
	status := http.StatusBadGateway
	if detail.Code == ward.CodeTimeout {
		status = http.StatusGatewayTimeout
	}
	s.writeErrorBody(w, r, status, errorBody{Error: detail, TaskID: rec.ID})
	return nil
}
