package api

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/client"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/seal/box"
)

func TestSecretsWriteOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	e.function("alpha", "g", ward.DefaultSpec())
	dev := e.token(ward.RoleDeveloper, "alpha")
	const globalV, localV, otherV = "global-value-7d1", "local-value-9c3", "other-value-2b8"

	var s ward.Secret
	e.do("PUT", "/v1/projects/alpha/secrets/API_KEY", dev, globalV).wantStatus(t, http.StatusOK).decode(t, &s)
	if s.Name != "API_KEY" || s.Function != "" || s.Version != 1 || s.Size != len(globalV) {
		t.Fatalf("secret = %+v", s)
	}
	r := e.do("PUT", "/v1/projects/alpha/secrets/API_KEY", dev, globalV+"2").wantStatus(t, http.StatusOK)
	r.decode(t, &s)
	if s.Version != 2 || bytes.Contains(r.body, []byte(globalV)) {
		t.Fatalf("second write: %s", r.body)
	}
	e.do("PUT", "/v1/projects/alpha/functions/f/secrets/API_KEY", dev, localV).wantStatus(t, http.StatusOK)
	e.do("PUT", "/v1/projects/alpha/functions/g/secrets/ONLY_G", dev, otherV).wantStatus(t, http.StatusOK)

	for _, path := range []string{"/v1/projects/alpha/secrets", "/v1/projects/alpha/functions/f/secrets"} {
		r := e.do("GET", path, dev, nil).wantStatus(t, http.StatusOK)
		var l ward.SecretList
		r.decode(t, &l)
		if len(l.Secrets) != 1 || l.Secrets[0].Name != "API_KEY" {
			t.Errorf("%s: %s", path, r.body)
		}
		for _, v := range []string{globalV, localV, otherV} {
			if bytes.Contains(r.body, []byte(v)) {
				t.Errorf("%s lists a value", path)
			}
		}
	}
	// Each function's tasks get the global secrets overlaid by their own,
	// and never another function's.
	e.submit("alpha", dev, ward.SubmitRequest{Function: "f"})
	e.submit("alpha", dev, ward.SubmitRequest{Function: "g"})
	seen := map[string]map[string][]byte{}
	e.runAll(func(j runner.Job) runner.Result {
		seen[j.Function] = j.Secrets
		return runner.Result{}
	})
	if got := seen["f"]; string(got["API_KEY"]) != localV || got["ONLY_G"] != nil {
		t.Errorf("f's secrets: %q", got)
	}
	if got := seen["g"]; string(got["API_KEY"]) != globalV+"2" || string(got["ONLY_G"]) != otherV {
		t.Errorf("g's secrets: %q", got)
	}
	// The audit log names the secret, never its value.
	audit, err := os.ReadFile(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(audit, []byte(`"resource":"API_KEY"`)) {
		t.Error("secret writes are not audited")
	}
	for _, v := range []string{globalV, localV, otherV} {
		if bytes.Contains(audit, []byte(v)) {
			t.Error("the audit log holds a secret value")
		}
	}
	e.do("DELETE", "/v1/projects/alpha/functions/f/secrets/API_KEY", dev, nil).wantStatus(t, http.StatusNoContent)
	e.do("DELETE", "/v1/projects/alpha/functions/f/secrets/API_KEY", dev, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
}

func TestSecretsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	dev := e.token(ward.RoleDeveloper, "alpha")
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		code       ward.Code
		field      string
	}{
		{"dot name", "/v1/projects/alpha/secrets/.hidden", "v", 400, ward.CodeInvalidArgument, "name"},
		{"dash name", "/v1/projects/alpha/secrets/-x", "v", 400, ward.CodeInvalidArgument, "name"},
		{"long name", "/v1/projects/alpha/secrets/" + strings.Repeat("a", 129), "v", 400, ward.CodeInvalidArgument, "name"},
		{"space in name", "/v1/projects/alpha/secrets/a%20b", "v", 400, ward.CodeInvalidArgument, "name"},
		{"reserved", "/v1/projects/alpha/secrets/ward-thing", "v", 400, ward.CodeInvalidArgument, "name"},
		{"global sealing key", "/v1/projects/alpha/secrets/" + ward.SealingKeySecret, "v", 400, ward.CodeInvalidArgument, "name"},
		{"sealing key not a key", "/v1/projects/alpha/functions/f/secrets/" + ward.SealingKeySecret, "not a pem", 400, ward.CodeInvalidArgument, "value"},
		{"too large", "/v1/projects/alpha/secrets/BIG", bytes.Repeat([]byte("x"), ward.MaxSecretBytes+1), 413, ward.CodeBodyTooLarge, "value"},
		{"missing function", "/v1/projects/alpha/functions/nope/secrets/K", "v", 404, ward.CodeNotFound, ""},
		{"bad function name", "/v1/projects/alpha/functions/Nope/secrets/K", "v", 400, ward.CodeInvalidArgument, "function"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.do("PUT", tc.path, dev, tc.body).wantError(t, tc.status, tc.code, tc.field)
		})
	}
	// Exactly the limit fits; nothing was stored by the refusals above.
	e.do("PUT", "/v1/projects/alpha/secrets/EXACT", dev, bytes.Repeat([]byte("x"), ward.MaxSecretBytes)).wantStatus(t, http.StatusOK)
	l, err := e.st.ListSecrets(e.ctx, "alpha", "")
	if err != nil || len(l) != 1 {
		t.Fatalf("stored secrets: %+v %v", l, err)
	}
	for i := 1; i < ward.MaxSecretsPerSet; i++ {
		e.do("PUT", "/v1/projects/alpha/secrets/S"+string(rune('A'+i/26))+string(rune('A'+i%26)), dev, "v").wantStatus(t, http.StatusOK)
	}
	e.do("PUT", "/v1/projects/alpha/secrets/ONE_TOO_MANY", dev, "v").wantError(t, 400, ward.CodeInvalidArgument, "name")
	// Replacing one at the limit is fine.
	e.do("PUT", "/v1/projects/alpha/secrets/EXACT", dev, "v2").wantStatus(t, http.StatusOK)
	e.do("DELETE", "/v1/projects/alpha/functions/f/secrets/"+ward.SealingKeySecret, dev, nil).wantError(t, 400, ward.CodeInvalidArgument, "name")
}

func TestSealedSubmission(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "f", ward.DefaultSpec())
	e.function("alpha", "g", ward.DefaultSpec())
	sub := e.token(ward.RoleSubmitter, "alpha")

	getKey := func(fn string) ward.SealingKey {
		var k ward.SealingKey
		e.do("GET", "/v1/projects/alpha/functions/"+fn+"/sealing-key", sub, nil).wantStatus(t, http.StatusOK).decode(t, &k)
		return k
	}
	kf := getKey("f")
	if again := getKey("f"); again.KeyID != kf.KeyID || !bytes.Equal(again.PublicKey, kf.PublicKey) {
		t.Fatal("the sealing key changed between reads")
	}
	kg := getKey("g")
	if kg.KeyID == kf.KeyID {
		t.Fatal("two functions share a sealing key")
	}
	e.do("GET", "/v1/projects/alpha/functions/nope/sealing-key", sub, nil).wantError(t, 404, ward.CodeNotFound, "")

	env, err := client.Seal(kf, "alpha", "f", []byte(`{"card":"4111"}`))
	if err != nil {
		t.Fatal(err)
	}
	tk := e.submit("alpha", sub, ward.SubmitRequest{Function: "f", Sealed: env})
	if !tk.Sealed || tk.PayloadSize != len(env) {
		t.Fatalf("sealed task = %+v", tk)
	}
	// Sealed to g's key, submitted to f: refused at submit.
	toG, err := client.Seal(kg, "alpha", "g", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	e.do("POST", "/v1/projects/alpha/tasks", sub, ward.SubmitRequest{Function: "f", Sealed: toG}).wantError(t, 400, box.CodeKeyMismatch, "sealed")
	e.do("POST", "/v1/projects/alpha/tasks", sub, ward.SubmitRequest{Function: "f", Sealed: []byte("not an envelope")}).wantError(t, 400, box.CodeMalformed, "sealed")
	e.do("POST", "/v1/projects/alpha/tasks", sub, ward.SubmitRequest{Function: "f", Sealed: env, PayloadB64: []byte("x")}).wantError(t, 400, ward.CodeInvalidArgument, "payload")
	e.do("POST", "/v1/projects/alpha/tasks/batch", sub, ward.BatchSubmitRequest{Tasks: []ward.SubmitRequest{{Function: "f"}, {Function: "f", Sealed: toG}}}).
		wantError(t, 400, box.CodeKeyMismatch, "tasks[1].sealed")

	// The runner gets the envelope as it was sent, flagged, with the key.
	var job runner.Job
	if n := e.runAll(func(j runner.Job) runner.Result { job = j; return runner.Result{} }); n != 1 {
		t.Fatalf("ran %d tasks", n)
	}
	if !job.Sealed || !bytes.Equal(job.Payload, env) {
		t.Fatal("job payload is not the sealed envelope")
	}
	priv, err := box.ParsePrivateKey(job.Secrets[ward.SealingKeySecret])
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := box.Open(priv, box.Recipient{Project: "alpha", Function: "f"}, job.Payload); err != nil || string(pt) != `{"card":"4111"}` {
		t.Fatalf("open in the task: %q %v", pt, err)
	}

	// A queued sealed task whose function's key was replaced fails with
	// sealed_key_mismatch instead of running.
	queued := e.submit("alpha", sub, ward.SubmitRequest{Function: "f", Sealed: env})
	newPriv, _, err := box.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dev := e.token(ward.RoleDeveloper, "alpha")
	e.do("PUT", "/v1/projects/alpha/functions/f/secrets/"+ward.SealingKeySecret, dev, box.MarshalPrivateKey(newPriv)).wantStatus(t, http.StatusOK)
	if n := e.runAll(func(j runner.Job) runner.Result { t.Error("a task sealed to the old key ran"); return runner.Result{} }); n != 0 {
		t.Fatalf("ran %d tasks", n)
	}
	rec, err := e.st.GetTask(e.ctx, "alpha", queued.ID)
	if err != nil || rec.Status != ward.StatusFailed || rec.Error == nil || rec.Error.Code != box.CodeKeyMismatch {
		t.Fatalf("task sealed to the replaced key: %+v %v", rec.Task, err)
	}
	if k := getKey("f"); k.KeyID == kf.KeyID {
		t.Fatal("the replaced key is still served")
	}
}

func TestProjectSettingsAndDeletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := e.token(ward.RoleOwner, "alpha")
	var p ward.Project
	e.do("GET", "/v1/projects/alpha", owner, nil).wantStatus(t, http.StatusOK).decode(t, &p)
	if p.RetentionDays != ward.DefaultRetentionDays {
		t.Fatalf("default retention = %d", p.RetentionDays)
	}
	for _, body := range []string{`{"retention_days":0}`, `{"retention_days":-1}`, `{"retention_days":3651}`, `{}`} {
		e.do("PATCH", "/v1/projects/alpha", owner, body).wantError(t, 400, ward.CodeInvalidArgument, "retention_days")
	}
	e.do("PATCH", "/v1/projects/alpha", owner, `{"retention_days":2,"x":1}`).wantError(t, 400, ward.CodeUnknownField, "x")
	e.do("PATCH", "/v1/projects/alpha", owner, `{"retention_days":2}`).wantStatus(t, http.StatusOK).decode(t, &p)
	if p.RetentionDays != 2 {
		t.Fatalf("retention = %d", p.RetentionDays)
	}
	e.do("POST", "/v1/projects", e.admin, `{"name":"kept","retention_days":30}`).wantStatus(t, http.StatusCreated).decode(t, &p)
	if p.RetentionDays != 30 {
		t.Fatalf("created with retention %d", p.RetentionDays)
	}
	e.do("POST", "/v1/projects", e.admin, `{"name":"bad","retention_days":-3}`).wantError(t, 400, ward.CodeInvalidArgument, "retention_days")

	e.do("DELETE", "/v1/projects/alpha", owner, nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	e.do("DELETE", "/v1/projects/alpha", e.admin, nil).wantStatus(t, http.StatusNoContent)
	e.do("GET", "/v1/projects/alpha", e.admin, nil).wantError(t, 404, ward.CodeNotFound, "")
	e.do("DELETE", "/v1/projects/alpha", e.admin, nil).wantError(t, 404, ward.CodeNotFound, "")
	last := e.lastAudit()
	if last["action"] != "DELETE /v1/projects/{p}" || last["outcome"] != "not_found" {
		t.Errorf("audit = %v", last)
	}
}
