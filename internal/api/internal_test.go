package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/pki"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/runner/remote"
	"github.com/wardhq/ward/internal/sandbox/wasm"
)

// internalAPI serves e's internal runner API over TLS with a server
// certificate of e's CA, and returns its URL.
func (e *testEnv) internalAPI() string {
	e.t.Helper()
	cert, err := e.ca.ServerCert([]string{"127.0.0.1"}, e.clock.Now(), time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(e.server.InternalHandler())
	srv.TLS = pki.ServerTLS(e.ca, cert)
	srv.StartTLS()
	e.t.Cleanup(srv.Close)
	return srv.URL
}

// joinToken makes a join token with the public API as admin.
func (e *testEnv) joinToken(ttl string) string {
	e.t.Helper()
	var jt ward.JoinTokenResponse
	e.do("POST", "/v1/runners/join-tokens", e.admin, map[string]string{"ttl": ttl}).wantStatus(e.t, http.StatusCreated).decode(e.t, &jt)
	if !strings.HasPrefix(jt.Token, "wardjoin_") || jt.ID == "" || !jt.ExpiresAt.After(e.clock.Now()) {
		e.t.Fatalf("join token %+v", jt)
	}
	return jt.Token
}

// joined joins a runner and returns a client of the internal API with its
// identity.
func (e *testEnv) joined(url string) (pki.Identity, *remote.Client) {
	e.t.Helper()
	id, err := remote.Join(e.ctx, url, e.joinToken(""))
	if err != nil {
		e.t.Fatal(err)
	}
	conf, err := id.ClientTLS()
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := remote.NewClient([]string{url}, conf, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return id, c
}

// A runner joins with a one-time token, registers, and leases, heartbeats
// and completes over mutual TLS; the server knows it by its certificate.
func TestRemoteRunnerProtocol(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.internalAPI()
	id, c := e.joined(url)
	if !strings.HasPrefix(id.RunnerID, "r_") {
		t.Fatalf("runner ID %q", id.RunnerID)
	}
	if err := c.Register(e.ctx, ward.Runner{ID: "r_someone-else", Name: "host-1", Slots: 4, MemoryMB: 512, Drivers: []string{"wasm"}, Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	var list struct{ Runners []ward.Runner }
	e.do("GET", "/v1/runners", e.admin, nil).wantStatus(t, http.StatusOK).decode(t, &list)
	var rn *ward.Runner
	for i := range list.Runners {
		if list.Runners[i].ID == id.RunnerID {
			rn = &list.Runners[i]
		}
	}
	if rn == nil || !rn.Remote || rn.Name != "host-1" || rn.Slots != 4 || rn.State != ward.RunnerActive {
		t.Fatalf("the certificate's runner is not the one registered: %+v", list.Runners)
	}

	e.function("alpha", "fn", ward.DefaultSpec())
	task := e.submit("alpha", e.admin, ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`{"n":7}`)})
	jobs, err := c.Lease(e.ctx, &runner.LeaseRequest{RunnerID: "ignored", Max: 8, FreeMemoryMB: 1024, Wait: time.Second})
	if err != nil || len(jobs) != 1 || jobs[0].TaskID != task.ID || string(jobs[0].Payload) != `{"n":7}` {
		t.Fatalf("lease: %+v, %v", jobs, err)
	}
	rec, _ := e.st.GetTask(e.ctx, "alpha", task.ID)
	if rec.RunnerID != id.RunnerID {
		t.Fatalf("task leased to %q, want the certificate's %q", rec.RunnerID, id.RunnerID)
	}
	reply, err := c.Heartbeat(e.ctx, "", []runner.LeaseRef{{TaskID: task.ID, LeaseID: jobs[0].LeaseID}})
	if err != nil || len(reply.Lost) != 0 || reply.State != ward.RunnerActive {
		t.Fatalf("heartbeat: %+v, %v", reply, err)
	}
	res := echo(jobs[0])
	res.TaskID, res.LeaseID, res.Project, res.Retry = jobs[0].TaskID, jobs[0].LeaseID, jobs[0].Project, jobs[0].Retry
	errs, err := c.Complete(e.ctx, []runner.Result{res})
	if err != nil || len(errs) != 1 || errs[0] != nil {
		t.Fatalf("complete: %v, %v", errs, err)
	}
	var got ward.Task
	e.do("GET", "/v1/projects/alpha/tasks/"+task.ID, e.admin, nil).wantStatus(t, http.StatusOK).decode(t, &got)
	if got.Status != ward.StatusSucceeded {
		t.Fatalf("task %s", got.Status)
	}
	if r := e.do("GET", "/v1/projects/alpha/tasks/"+task.ID+"/result", e.admin, nil); string(r.body) != `{"n":7}` {
		t.Fatalf("result %q", r.body)
	}
	code, err := c.Code(e.ctx, "alpha", jobs[0].CodeDigest)
	if err != nil || string(code) != string(module(t, "echo")) {
		t.Fatalf("code: %d bytes, %v", len(code), err)
	}
	if _, err := c.Code(e.ctx, "beta", jobs[0].CodeDigest); !errors.Is(err, ward.ErrNotFound) {
		t.Fatalf("code of another project: %v", err)
	}
	if err := c.Drained(e.ctx, ""); err != nil {
		t.Fatal(err)
	}
	if rn, _ := e.st.GetRunner(e.ctx, id.RunnerID); rn.State != ward.RunnerDrained {
		t.Fatalf("after drained: %s", rn.State)
	}

	// Every join was audited.
	joins := 0
	for _, en := range e.auditEntries() {
		if en["action"] == "runner.join" && en["outcome"] == "ok" && en["resource"] == id.RunnerID {
			joins++
		}
	}
	if joins != 1 {
		t.Fatalf("%d audited joins of %s", joins, id.RunnerID)
	}
}

// A result of a lease that was lost (it expired and the task went to
// another runner) is refused with 409 stale_lease and changes nothing.
func TestRemoteCompletionOfALostLeaseIsFenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.internalAPI()
	_, slow := e.joined(url)
	_, fast := e.joined(url)
	e.function("alpha", "fn", ward.DefaultSpec())
	task := e.submit("alpha", e.admin, ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`{"n":1}`)})
	lease := func(c *remote.Client) runner.Job {
		t.Helper()
		jobs, err := c.Lease(e.ctx, &runner.LeaseRequest{Max: 1, FreeMemoryMB: 1024})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("lease: %v, %v", jobs, err)
		}
		return jobs[0]
	}
	old := lease(slow)
	e.clock.Advance(time.Minute) // past the lease TTL
	if err := e.q.Reap(e.ctx); err != nil {
		t.Fatal(err)
	}
	cur := lease(fast)
	if cur.TaskID != task.ID || cur.LeaseID == old.LeaseID {
		t.Fatalf("re-lease: %+v", cur)
	}
	stale := runner.Result{TaskID: old.TaskID, LeaseID: old.LeaseID, Project: "alpha", Retry: old.Retry, Stdout: []byte(`"stale"`)}
	errs, err := slow.Complete(e.ctx, []runner.Result{stale})
	if err != nil || len(errs) != 1 || !errors.Is(errs[0], ward.ErrStaleLease) {
		t.Fatalf("stale completion: %v, %v", errs, err)
	}
	// The raw answer is a 409.
	r := e.internalPost(url, slow, remote.PathComplete, remote.CompleteRequest{Results: []runner.Result{stale}})
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), `"stale_lease"`) {
		t.Fatalf("stale completion answered %d %s", r.status, r.body)
	}
	if rec, _ := e.st.GetTask(e.ctx, "alpha", task.ID); rec.Status != ward.StatusRunning || rec.LeaseID != cur.LeaseID {
		t.Fatalf("after the stale result: %s, lease %s", rec.Status, rec.LeaseID)
	}
	res := runner.Result{TaskID: cur.TaskID, LeaseID: cur.LeaseID, Project: "alpha", Retry: cur.Retry, Stdout: []byte(`"fresh"`)}
	if errs, err := fast.Complete(e.ctx, []runner.Result{res}); err != nil || errs[0] != nil {
		t.Fatalf("current completion: %v, %v", errs, err)
	}
	if r := e.do("GET", "/v1/projects/alpha/tasks/"+task.ID+"/result", e.admin, nil); string(r.body) != `"fresh"` {
		t.Fatalf("result %q", r.body)
	}
}

// A remote runner streams a run's live log; followers read it while the
// run goes on. Bad chunks are refused with their code and change nothing.
func TestRemoteLiveLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.internalAPI()
	_, c := e.joined(url)
	e.function("alpha", "fn", ward.DefaultSpec())
	task := e.submit("alpha", e.admin, ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`{}`)})
	jobs, err := c.Lease(e.ctx, &runner.LeaseRequest{Max: 1, FreeMemoryMB: 1024})
	if err != nil || len(jobs) != 1 || jobs[0].TaskID != task.ID {
		t.Fatalf("lease: %v, %v", jobs, err)
	}
	j := jobs[0]
	chunk := runner.LogChunk{Project: "alpha", TaskID: j.TaskID, LeaseID: j.LeaseID, Data: []byte("one\n")}
	if err := c.StreamLog(e.ctx, chunk); err != nil {
		t.Fatal(err)
	}
	chunk.Offset, chunk.Data = 4, []byte("two\n")
	if err := c.StreamLog(e.ctx, chunk); err != nil {
		t.Fatal(err)
	}
	lg, release, ok := e.q.FollowLog("alpha", j.TaskID, j.LeaseID)
	if !ok {
		t.Fatal("no live log of the remote run")
	}
	defer release()
	if b, at, err := lg.Read(e.ctx, 0); err != nil || at != 0 || string(b) != "one\ntwo\n" {
		t.Fatalf("live log %q at %d, %v", b, at, err)
	}

	for _, tc := range []struct {
		name   string
		chunk  runner.LogChunk
		status int
		code   ward.Code
	}{
		{"no task", runner.LogChunk{Project: "alpha", LeaseID: j.LeaseID, Data: []byte("x")}, http.StatusBadRequest, ward.CodeInvalidArgument},
		{"negative offset", runner.LogChunk{Project: "alpha", TaskID: j.TaskID, LeaseID: j.LeaseID, Offset: -1, Data: []byte("x")}, http.StatusBadRequest, ward.CodeInvalidArgument},
		{"too big", runner.LogChunk{Project: "alpha", TaskID: j.TaskID, LeaseID: j.LeaseID, Offset: 8, Data: make([]byte, remote.MaxLogChunk+1)}, http.StatusRequestEntityTooLarge, ward.CodeBodyTooLarge},
		{"stale lease", runner.LogChunk{Project: "alpha", TaskID: j.TaskID, LeaseID: "l_other", Offset: 8, Data: []byte("x")}, http.StatusConflict, ward.CodeStaleLease},
	} {
		r := e.internalPost(url, c, remote.PathLog, tc.chunk)
		if r.status != tc.status || !strings.Contains(string(r.body), `"`+string(tc.code)+`"`) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	if end := lg.End(); end != 8 {
		t.Errorf("refused chunks changed the live log: it ends at %d", end)
	}
	// A bad JSON body.
	r := e.internalPost(url, c, remote.PathLog, map[string]any{"task_id": 5})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"invalid_json"`) {
		t.Errorf("bad body: %d %s", r.status, r.body)
	}
}

// internalPost sends one raw request over c's TLS identity.
func (e *testEnv) internalPost(url string, _ *remote.Client, path string, body any) response {
	e.t.Helper()
	id, err := remote.Join(e.ctx, url, e.joinToken(""))
	if err != nil {
		e.t.Fatal(err)
	}
	conf, err := id.ClientTLS()
	if err != nil {
		e.t.Fatal(err)
	}
	return rawPost(e.t, &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}, url+path, body)
}

func rawPost(t testing.TB, hc *http.Client, url string, body any) response {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := hc.Post(url, "application/json", strings.NewReader(string(b)))
	if err != nil {
		return response{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// Join tokens work once, expire, and are refused malformed, each with 401
// join_token_invalid and nothing issued.
func TestJoinTokenRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.internalAPI()
	tok := e.joinToken("10m")
	if _, err := remote.Join(e.ctx, url, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Join(e.ctx, url, tok); ward.CodeOf(err) != ward.CodeJoinTokenInvalid {
		t.Fatalf("reused token: %v", err)
	}
	expired := e.joinToken("1m")
	e.clock.Advance(2 * time.Minute)
	if _, err := remote.Join(e.ctx, url, expired); ward.CodeOf(err) != ward.CodeJoinTokenInvalid {
		t.Fatalf("expired token: %v", err)
	}
	// A token whose secret was altered: refused, and the real one still works.
	good := e.joinToken("10m")
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + strings.Repeat("A", len(parts[1])) + "." + parts[2]
	if _, err := remote.Join(e.ctx, url, forged); ward.CodeOf(err) != ward.CodeJoinTokenInvalid {
		t.Fatalf("forged secret: %v", err)
	}
	if _, err := remote.Join(e.ctx, url, good); err != nil {
		t.Fatalf("the real token after a forged attempt: %v", err)
	}
	// Raw requests: the status is 401.
	pinned, _ := pki.ParseJoinToken(good)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: pinned.PinnedTLS()}}
	r := rawPost(t, hc, url+remote.PathJoin, remote.JoinRequest{Token: good, CSR: "x"})
	if r.status != http.StatusUnauthorized && r.status != http.StatusBadRequest {
		t.Fatalf("join with a used token and a bad CSR: %d %s", r.status, r.body)
	}
	r = rawPost(t, hc, url+remote.PathJoin, remote.JoinRequest{Token: "wardjoin_nope", CSR: "x"})
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), `"join_token_invalid"`) || strings.Contains(string(r.body), "nope") {
		t.Fatalf("malformed token: %d %s", r.status, r.body)
	}
	// Failed joins are audited too.
	refused := 0
	for _, en := range e.auditEntries() {
		if en["action"] == "runner.join" && en["outcome"] == string(ward.CodeJoinTokenInvalid) {
			refused++
		}
	}
	if refused < 4 {
		t.Fatalf("%d refused joins audited, want at least 4", refused)
	}
}

// Without a certificate of the cluster CA, no runner route answers: none at
// all is 401; a self-signed one or one of another CA fails the handshake.
func TestInternalAPIRefusesStrangers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.internalAPI()
	trustServer := x509.NewCertPool()
	trustServer.AddCert(e.ca.Cert())

	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: trustServer, MinVersion: tls.VersionTLS13}}}
	for _, path := range []string{remote.PathRegister, remote.PathLease, remote.PathHeartbeat, remote.PathComplete, remote.PathRelease, remote.PathDrained, remote.PathLog} {
		r := rawPost(t, noCert, url+path, map[string]any{})
		if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), `"unauthenticated"`) {
			t.Errorf("%s without a certificate: %d %s", path, r.status, r.body)
		}
	}

	// A certificate naming a runner, signed by another CA.
	foreignDir := filepath.Join(t.TempDir(), "foreign")
	if _, err := pki.InitCA(foreignDir, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	foreign, err := pki.LoadCA(foreignDir)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, err := pki.NewRunnerKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := foreign.SignRunner(csrPEM, "r_foreign", e.clock.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignPair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// A self-signed certificate with the runner URI.
	selfKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "r_forged"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &selfKey.PublicKey, selfKey)
	if err != nil {
		t.Fatal(err)
	}
	selfPair := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: selfKey}

	for name, pair := range map[string]tls.Certificate{"foreign CA": foreignPair, "self-signed": selfPair} {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: trustServer, MinVersion: tls.VersionTLS13,
			// Present the certificate whatever CAs the server names.
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil },
		}}}
		r := rawPost(t, hc, url+remote.PathLease, map[string]any{"max": 1})
		if r.status != -1 {
			t.Errorf("%s certificate: answered %d %s, want a failed handshake", name, r.status, r.body)
		}
	}
}

// A runner drained with the public API is refused leases and learns it from
// its heartbeat.
func TestDrainReachesARemoteRunner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.internalAPI()
	id, c := e.joined(url)
	if err := c.Register(e.ctx, ward.Runner{Slots: 1, MemoryMB: 64}); err != nil {
		t.Fatal(err)
	}
	var rn ward.Runner
	e.do("POST", "/v1/runners/"+id.RunnerID+"/drain", e.admin, nil).wantStatus(t, http.StatusOK).decode(t, &rn)
	if rn.State != ward.RunnerDraining {
		t.Fatalf("drain answered %+v", rn)
	}
	if _, err := c.Lease(e.ctx, &runner.LeaseRequest{Max: 1, FreeMemoryMB: 64}); !errors.Is(err, ward.ErrRunnerDraining) {
		t.Fatalf("lease of a draining runner: %v", err)
	}
	reply, err := c.Heartbeat(e.ctx, "", nil)
	if err != nil || reply.State != ward.RunnerDraining {
		t.Fatalf("heartbeat: %+v, %v", reply, err)
	}
	e.do("POST", "/v1/runners/r_nobody/drain", e.admin, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	if err := c.Drained(e.ctx, ""); err != nil {
		t.Fatal(err)
	}
	e.do("POST", "/v1/runners/"+id.RunnerID+"/drain", e.admin, nil).wantError(t, http.StatusConflict, ward.CodeInvalidState, "")
}

// A real runner with the wasm sandbox runs tasks leased over the internal
// API, and drains on request.
func TestRemoteRunnerRunsTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.internalAPI()
	id, c := e.joined(url)
	sb, err := wasm.New(e.ctx, wasm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	r := runner.New(runner.Options{ID: id.RunnerID, Source: c, Sandbox: sb, Slots: 4, MemoryBudgetMB: 1024, MaxTasks: 20, Remote: true, LeaseWait: time.Second})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	e.function("alpha", "fn", ward.DefaultSpec())
	ids := make([]string, 25)
	for i := range ids {
		ids[i] = e.submit("alpha", e.admin, ward.SubmitRequest{Function: "fn", Payload: json.RawMessage(`{"i":` + string(rune('0'+i%10)) + `}`)}).ID
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		for _, tid := range ids {
			rec, _ := e.st.GetTask(e.ctx, "alpha", tid)
			t.Logf("%s %s attempts %d run_at %s runner %s err %+v", tid, rec.Status, rec.Attempts, rec.RunAt, rec.RunnerID, rec.Error)
		}
		t.Fatalf("the runner did not stop after 20 tasks; it leased %d", r.Leased())
	}
	n := map[ward.Status]int{}
	for _, tid := range ids {
		rec, err := e.st.GetTask(e.ctx, "alpha", tid)
		if err != nil {
			t.Fatal(err)
		}
		n[rec.Status]++
	}
	if n[ward.StatusSucceeded] != 20 || n[ward.StatusQueued] != 5 {
		t.Fatalf("a 20-task remote runner left %v", n)
	}
	if rn, _ := e.st.GetRunner(e.ctx, id.RunnerID); rn.State != ward.RunnerDrained || !rn.Remote || rn.MaxTasks != 20 {
		t.Fatalf("runner %+v", rn)
	}
}
