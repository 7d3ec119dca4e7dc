package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward"
)

// This file fakes the ward API for the CLI's unit tests: enough behaviour to
// drive every verb, with every request recorded for assertions.

const goodToken = "good.token"

var fakeTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// recorded is one request the fake received.
type recorded struct {
	Method, Path, Query, Auth, ContentType string
	Body                                   []byte
}

type fakeTask struct {
	task    ward.Task
	final   ward.Status
	failure *ward.TaskError
	payload []byte
	result  []byte
	log     []byte
}

type fakeAPI struct {
	srv *httptest.Server

	mu        sync.Mutex
	reqs      []recorded
	functions map[string]ward.Function
	configs   map[string]ward.Config // by function, "" = global
	tasks     map[string]*fakeTask
	nextID    int
	project   ward.Project // default's settings and usage
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{
		functions: map[string]ward.Function{},
		configs:   map[string]ward.Config{},
		tasks:     map[string]*fakeTask{},
		project: ward.Project{Name: ward.DefaultProject, CreatedAt: fakeTime, RetentionDays: ward.DefaultRetentionDays,
			Quotas: ward.Quotas{MaxQueued: 100}, Usage: ward.ProjectUsage{StoredBytes: 123456}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSONStatus(w, 200, map[string]string{"status": "ok"})
	})
	f.handle(mux, "GET /v1/projects", f.listProjects)
	f.handle(mux, "POST /v1/projects", f.createProject)
	f.handle(mux, "GET /v1/projects/{p}", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeJSONStatus(w, 200, f.project)
	})
	f.handle(mux, "PATCH /v1/projects/{p}", f.patchProject)
	f.handle(mux, "POST /v1/projects/{p}/tokens", f.createToken)
	f.handle(mux, "DELETE /v1/projects/{p}/tokens/{id}", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.PathValue("id") != "tok_1" {
			apiError(w, 404, ward.CodeNotFound, "token not found")
			return
		}
		w.WriteHeader(204)
	})
	f.handle(mux, "GET /v1/projects/{p}/functions", f.listFunctions)
	f.handle(mux, "GET /v1/projects/{p}/functions/{fn}", f.getFunction)
	f.handle(mux, "PUT /v1/projects/{p}/functions/{fn}", f.putFunction)
	f.handle(mux, "DELETE /v1/projects/{p}/functions/{fn}", f.deleteFunction)
	f.handle(mux, "PUT /v1/projects/{p}/functions/{fn}/code", f.putCode)
	f.handle(mux, "GET /v1/projects/{p}/config", f.getConfig)
	f.handle(mux, "PUT /v1/projects/{p}/config", f.putConfig)
	f.handle(mux, "GET /v1/projects/{p}/functions/{fn}/config", f.getConfig)
	f.handle(mux, "PUT /v1/projects/{p}/functions/{fn}/config", f.putConfig)
	f.handle(mux, "POST /v1/projects/{p}/tasks", f.submit)
	f.handle(mux, "GET /v1/projects/{p}/tasks", f.listTasks)
	f.handle(mux, "GET /v1/projects/{p}/tasks/{id}", f.getTask)
	f.handle(mux, "GET /v1/projects/{p}/tasks/{id}/{body}", f.taskBody)
	f.handle(mux, "POST /v1/projects/{p}/tasks/{id}/cancel", f.cancel)
	f.handle(mux, "POST /v1/projects/{p}/tasks/{id}/retry", f.retry)
	f.handle(mux, "POST /v1/projects/{p}/functions/{fn}/invoke", f.invoke)
	f.handle(mux, "POST /v1/projects/{p}/tasks/fanout", f.fanout)
	f.handle(mux, "POST /v1/projects/{p}/detokenize", f.detokenize)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// handle registers h behind token checking and request recording.
func (f *fakeAPI) handle(mux *http.ServeMux, pattern string, h func(http.ResponseWriter, *http.Request, []byte)) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{
			Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type"), Body: body,
		})
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+goodToken {
			apiError(w, 401, ward.CodeUnauthenticated, "missing or invalid token")
			return
		}
		if p := r.PathValue("p"); p != "" && p != ward.DefaultProject && p != "acme" {
			apiError(w, 404, ward.CodeNotFound, "project "+p+" not found")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		h(w, r, body)
	})
}

// requests returns the recorded requests.
func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// last returns the last recorded request with the given method.
func (f *fakeAPI) last(t *testing.T, method string) recorded {
	t.Helper()
	reqs := f.requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method {
			return reqs[i]
		}
	}
	t.Fatalf("no %s request recorded", method)
	return recorded{}
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code ward.Code, msg string) {
	writeJSONStatus(w, status, map[string]any{"error": map[string]string{"code": string(code), "message": msg}})
}

func (f *fakeAPI) listProjects(w http.ResponseWriter, _ *http.Request, _ []byte) {
	writeJSONStatus(w, 200, map[string]any{"projects": []ward.Project{{Name: "default", CreatedAt: fakeTime}, {Name: "acme", CreatedAt: fakeTime}}})
}

func (f *fakeAPI) createProject(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req ward.CreateProjectRequest
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, 400, ward.CodeInvalidJSON, "bad JSON")
		return
	}
	if req.Name == "acme" {
		apiError(w, 409, ward.CodeAlreadyExists, "project acme already exists")
		return
	}
	writeJSONStatus(w, 201, ward.Project{Name: req.Name, CreatedAt: fakeTime})
}

// patchProject changes default's settings as the API does: quotas, when
// given, replace all of them.
func (f *fakeAPI) patchProject(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req ward.ProjectSettings
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, 400, ward.CodeInvalidJSON, "bad JSON")
		return
	}
	if err := req.Validate(); err != nil {
		apiError(w, 400, ward.CodeInvalidArgument, err.Error())
		return
	}
	if req.RetentionDays != 0 {
		f.project.RetentionDays = req.RetentionDays
	}
	if req.Quotas != nil {
		f.project.Quotas = req.Quotas.Apply(f.project.Quotas)
	}
	writeJSONStatus(w, 200, f.project)
}

func (f *fakeAPI) createToken(w http.ResponseWriter, _ *http.Request, _ []byte) {
	writeJSONStatus(w, 201, ward.CreateTokenResponse{Token: "minted.jwt.value", ID: "tok_1", ExpiresAt: fakeTime.Add(24 * time.Hour)})
}

func (f *fakeAPI) listFunctions(w http.ResponseWriter, _ *http.Request, _ []byte) {
	fs := []ward.Function{}
	for _, k := range slices.Sorted(maps.Keys(f.functions)) {
		fs = append(fs, f.functions[k])
	}
	writeJSONStatus(w, 200, map[string]any{"functions": fs})
}

func (f *fakeAPI) getFunction(w http.ResponseWriter, r *http.Request, _ []byte) {
	fn, ok := f.functions[r.PathValue("fn")]
	if !ok {
		apiError(w, 404, ward.CodeNotFound, "function "+r.PathValue("fn")+" not found")
		return
	}
	writeJSONStatus(w, 200, fn)
}

func (f *fakeAPI) putFunction(w http.ResponseWriter, r *http.Request, body []byte) {
	var spec ward.FunctionSpec
	if err := json.Unmarshal(body, &spec); err != nil {
		apiError(w, 400, ward.CodeInvalidJSON, "bad JSON")
		return
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		apiError(w, 400, ward.CodeInvalidArgument, err.Error())
		return
	}
	name := r.PathValue("fn")
	fn, existed := f.functions[name]
	if !existed {
		fn = ward.Function{Project: r.PathValue("p"), Name: name, CreatedAt: fakeTime}
	}
	fn.Spec, fn.UpdatedAt = spec, fakeTime
	f.functions[name] = fn
	status := 201
	if existed {
		status = 200
	}
	writeJSONStatus(w, status, fn)
}

func (f *fakeAPI) deleteFunction(w http.ResponseWriter, r *http.Request, _ []byte) {
	if _, ok := f.functions[r.PathValue("fn")]; !ok {
		apiError(w, 404, ward.CodeNotFound, "function not found")
		return
	}
	delete(f.functions, r.PathValue("fn"))
	w.WriteHeader(204)
}

func (f *fakeAPI) putCode(w http.ResponseWriter, r *http.Request, body []byte) {
	fn, ok := f.functions[r.PathValue("fn")]
	if !ok {
		apiError(w, 404, ward.CodeNotFound, "function not found")
		return
	}
	fn.CodeVersion++
	fn.CodeDigest = fmt.Sprintf("sha256:%064x", len(body))
	fn.CodeSize = int64(len(body))
	f.functions[fn.Name] = fn
	writeJSONStatus(w, 200, ward.CodeUploadResponse{Digest: fn.CodeDigest, Version: fn.CodeVersion, Size: fn.CodeSize, Scan: "ok"})
}

func (f *fakeAPI) getConfig(w http.ResponseWriter, r *http.Request, _ []byte) {
	c := f.configs[r.PathValue("fn")]
	if c == nil {
		c = ward.Config{}
	}
	writeJSONStatus(w, 200, c)
}

func (f *fakeAPI) putConfig(w http.ResponseWriter, r *http.Request, body []byte) {
	var c ward.Config
	if err := json.Unmarshal(body, &c); err != nil {
		apiError(w, 400, ward.CodeInvalidJSON, "bad JSON")
		return
	}
	f.configs[r.PathValue("fn")] = c
	writeJSONStatus(w, 200, c)
}

// addTask stores a task that ends in final (with failure, if failed).
func (f *fakeAPI) addTask(fn string, final ward.Status, failure *ward.TaskError) *fakeTask {
	f.nextID++
	id := fmt.Sprintf("t_%d", f.nextID)
	ft := &fakeTask{
		task: ward.Task{
			ID: id, Project: "default", Function: fn, Status: ward.StatusQueued, MaxAttempts: 1,
			TimeoutS: 30, CreatedAt: fakeTime, RunAt: fakeTime,
		},
		final: final, failure: failure,
		result: []byte("\x00result-bytes\xff"), log: []byte("log line\n"),
	}
	f.tasks[id] = ft
	return ft
}

func (f *fakeAPI) submit(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req ward.SubmitRequest
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, 400, ward.CodeInvalidJSON, "bad JSON")
		return
	}
	final, failure := ward.StatusSucceeded, (*ward.TaskError)(nil)
	if req.Function == "fails" {
		final, failure = ward.StatusFailed, &ward.TaskError{Code: ward.CodeExitStatus, Message: "exit status 3"}
	}
	ft := f.addTask(req.Function, final, failure)
	ft.task.Priority, ft.task.Labels = req.Priority, req.Labels
	ft.payload = req.Payload
	if req.PayloadB64 != nil {
		ft.payload = req.PayloadB64
	}
	writeJSONStatus(w, 202, ft.task)
}

func (f *fakeAPI) listTasks(w http.ResponseWriter, r *http.Request, _ []byte) {
	l := ward.TaskList{Tasks: []ward.Task{}}
	for _, k := range slices.Sorted(maps.Keys(f.tasks)) {
		l.Tasks = append(l.Tasks, f.tasks[k].task)
	}
	if r.URL.Query().Get("cursor") == "" {
		l.NextCursor = "next-page"
	}
	writeJSONStatus(w, 200, l)
}

// getTask answers a long poll (wait=…) with the task's final state, as a
// server does once the task ends; without wait it answers the current state.
func (f *fakeAPI) getTask(w http.ResponseWriter, r *http.Request, _ []byte) {
	ft, ok := f.tasks[r.PathValue("id")]
	if !ok {
		apiError(w, 404, ward.CodeNotFound, "task "+r.PathValue("id")+" not found")
		return
	}
	if r.URL.Query().Get("wait") != "" {
		ft.task.Status, ft.task.Error = ft.final, ft.failure
		ft.task.Attempts = 1
		fin := fakeTime.Add(time.Second)
		ft.task.StartedAt, ft.task.FinishedAt = &fakeTime, &fin
	}
	writeJSONStatus(w, 200, ft.task)
}

func (f *fakeAPI) taskBody(w http.ResponseWriter, r *http.Request, _ []byte) {
	ft, ok := f.tasks[r.PathValue("id")]
	if !ok {
		apiError(w, 404, ward.CodeNotFound, "task not found")
		return
	}
	switch r.PathValue("body") {
	case "result":
		if !ft.task.Status.Terminal() {
			apiError(w, 409, ward.CodeInvalidState, "task "+ft.task.ID+" has not finished")
			return
		}
		w.Write(f.maybeDetokenize(r, ft.result))
	case "log":
		if r.URL.Query().Get("follow") == "1" {
			// A followed log comes in flushed pieces.
			w.Write([]byte("[followed]\n"))
			w.(http.Flusher).Flush()
		}
		w.Write(ft.log)
	case "payload":
		w.Write(ft.payload)
	default:
		apiError(w, 404, ward.CodeNotFound, "no such route")
	}
}

func (f *fakeAPI) cancel(w http.ResponseWriter, r *http.Request, _ []byte) {
	ft, ok := f.tasks[r.PathValue("id")]
	if !ok {
		apiError(w, 404, ward.CodeNotFound, "task not found")
		return
	}
	if ft.task.Status.Terminal() {
		apiError(w, 409, ward.CodeInvalidState, "task "+ft.task.ID+" has finished")
		return
	}
	ft.task.Status = ward.StatusCancelled
	ft.task.Error = &ward.TaskError{Code: ward.CodeCancelled}
	writeJSONStatus(w, 200, ft.task)
}

func (f *fakeAPI) retry(w http.ResponseWriter, r *http.Request, _ []byte) {
	ft, ok := f.tasks[r.PathValue("id")]
	if !ok {
		apiError(w, 404, ward.CodeNotFound, "task not found")
		return
	}
	if !ft.task.Status.Terminal() {
		apiError(w, 409, ward.CodeInvalidState, "task "+ft.task.ID+" has not finished")
		return
	}
	ft.task.Status, ft.task.Error = ward.StatusQueued, nil
	writeJSONStatus(w, 200, ft.task)
}

func (f *fakeAPI) invoke(w http.ResponseWriter, r *http.Request, body []byte) {
	switch r.PathValue("fn") {
	case "fails":
		writeJSONStatus(w, 502, map[string]any{
			"error":   map[string]string{"code": "exit_status", "message": "exit status 3"},
			"task_id": "t_99",
		})
	case "busy":
		w.Header().Set("Retry-After", "5")
		apiError(w, 429, ward.CodeFunctionBusy, "function busy at max_concurrency 1")
	default:
		w.Header().Set("Ward-Task-Id", "t_42")
		w.Write(f.maybeDetokenize(r, append([]byte("echo:"), body...)))
	}
}

// The fake's token vault: fakeToken stands for "cust-42"; any other token is
// unknown (past retention).
const (
	fakeToken   = "tok_c3hm5x34k3shs2jve26q3w7typ6s3gd3"
	fakeUnknown = "tok_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// maybeDetokenize re-identifies the vault's tokens in b for ?detokenize=1,
// as the server does for a caller with the scope.
func (f *fakeAPI) maybeDetokenize(r *http.Request, b []byte) []byte {
	if r.URL.Query().Get("detokenize") != "1" {
		return b
	}
	return bytes.ReplaceAll(b, []byte(fakeToken), []byte("cust-42"))
}

func (f *fakeAPI) detokenize(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req ward.DetokenizeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, 400, ward.CodeInvalidJSON, "bad JSON")
		return
	}
	if len(req.Tokens) == 0 || len(req.Tokens) > ward.MaxDetokenize {
		apiError(w, 400, ward.CodeInvalidArgument, "tokens: must hold 1 to 1000 tokens")
		return
	}
	out := ward.DetokenizeResponse{Values: map[string]json.RawMessage{}}
	for _, t := range req.Tokens {
		if t == fakeToken {
			out.Values[t] = json.RawMessage(`"cust-42"`)
		}
	}
	writeJSONStatus(w, 200, out)
}

// fanout makes one task per function; function "ruled" has input rules, and
// "fails" fails.
func (f *fakeAPI) fanout(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req ward.FanoutRequest
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, 400, ward.CodeInvalidJSON, "bad JSON")
		return
	}
	if slices.Contains(req.Functions, "nope") {
		apiError(w, 404, ward.CodeNotFound, "function nope not found")
		return
	}
	out := ward.BatchSubmitResponse{}
	for _, fn := range req.Functions {
		final, failure := ward.StatusSucceeded, (*ward.TaskError)(nil)
		if fn == "fails" {
			final, failure = ward.StatusFailed, &ward.TaskError{Code: ward.CodeExitStatus, Message: "exit status 3"}
		}
		ft := f.addTask(fn, final, failure)
		ft.task.Priority, ft.task.Labels = req.Priority, req.Labels
		if fn == "ruled" {
			ft.task.Input = &ward.PayloadInfo{Fields: []string{"/order/total", "/customer/id"}, Tokenized: []string{"/customer/id"}}
		}
		out.Tasks = append(out.Tasks, ft.task)
	}
	writeJSONStatus(w, 202, out)
}
