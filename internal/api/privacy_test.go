package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/privacy"
	"github.com/wardhq/ward/internal/runner"
	"github.com/wardhq/ward/internal/store"
)

// scoringSpec sees an order's amount and the customer's id, as a token.
func scoringSpec() ward.FunctionSpec {
	spec := ward.DefaultSpec()
	spec.Input = ward.Input{Fields: []string{"/order/amount", "/customer/id"}, Tokenize: []string{"/customer/id"}}
	return spec
}

const orderPayload = `{"order":{"amount":42,"card":"4111-1111"},"customer":{"id":"cust-77","email":"ada@example.com"}}`

func TestProjectionAndTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "score", scoringSpec())
	dev := e.token(ward.RoleDeveloper, "alpha")
	owner := e.token(ward.RoleOwner, "alpha")

	tk := e.submit("alpha", dev, ward.SubmitRequest{Function: "score", Payload: json.RawMessage(orderPayload)})
	// The submission's record says what was tokenized; reading the task
	// (a viewer may) adds what the stored payload holds.
	if tk.Input == nil || len(tk.Input.Fields) != 0 || !slices.Equal(tk.Input.Tokenized, []string{"/customer/id"}) {
		t.Fatalf("submitted task's input = %+v", tk.Input)
	}
	var got ward.Task
	e.do("GET", "/v1/projects/alpha/tasks/"+tk.ID, e.token(ward.RoleViewer, "alpha"), nil).wantStatus(t, http.StatusOK).decode(t, &got)
	if got.Input == nil || !slices.Equal(got.Input.Fields, []string{"/order/amount", "/customer/id"}) ||
		!slices.Equal(got.Input.Tokenized, []string{"/customer/id"}) || got.Input.Truncated {
		t.Fatalf("task input = %+v", got.Input)
	}
	stored, err := e.st.GetTaskBody(e.ctx, "alpha", tk.ID, store.BodyPayload)
	if err != nil {
		t.Fatal(err)
	}
	var job runner.Job
	e.runAll(func(j runner.Job) runner.Result {
		job = j
		return runner.Result{Stdout: j.Payload} // the result echoes the token
	})
	for what, b := range map[string][]byte{"stored payload": stored, "task's payload": job.Payload} {
		for _, never := range []string{"4111", "ada@example.com", "cust-77", "card", "email"} {
			if bytes.Contains(b, []byte(never)) {
				t.Errorf("%s holds %q: %s", what, never, b)
			}
		}
		if !bytes.Contains(b, []byte(`"amount":42`)) || len(privacy.FindTokens(b, 10)) != 1 {
			t.Errorf("%s lacks the amount or the token: %s", what, b)
		}
	}
	token := privacy.FindTokens(stored, 1)[0]

	// The same value gives the same token; another project another one.
	again := e.submit("alpha", dev, ward.SubmitRequest{Function: "score", Payload: json.RawMessage(orderPayload)})
	b2, _ := e.st.GetTaskBody(e.ctx, "alpha", again.ID, store.BodyPayload)
	if !bytes.Contains(b2, []byte(token)) {
		t.Errorf("same value, other token: %s", b2)
	}
	e.function("beta", "score", scoringSpec())
	other := e.submit("beta", e.admin, ward.SubmitRequest{Function: "score", Payload: json.RawMessage(orderPayload)})
	b3, _ := e.st.GetTaskBody(e.ctx, "beta", other.ID, store.BodyPayload)
	if bytes.Contains(b3, []byte(token)) || len(privacy.FindTokens(b3, 10)) != 1 {
		t.Errorf("another project got the same token: %s", b3)
	}

	// Re-identification: the owner gets the original, the developer the token.
	before := len(e.auditEntries())
	res := e.do("GET", "/v1/projects/alpha/tasks/"+tk.ID+"/result?detokenize=1", owner, nil).wantStatus(t, http.StatusOK)
	if !bytes.Contains(res.body, []byte(`"id":"cust-77"`)) || bytes.Contains(res.body, []byte(token)) {
		t.Errorf("owner's detokenized result: %s", res.body)
	}
	res = e.do("GET", "/v1/projects/alpha/tasks/"+tk.ID+"/result?detokenize=1", dev, nil).wantStatus(t, http.StatusOK)
	if bytes.Contains(res.body, []byte("cust-77")) || !bytes.Contains(res.body, []byte(token)) {
		t.Errorf("developer's result: %s", res.body)
	}
	detok := 0
	for _, en := range e.auditEntries()[before:] {
		if en["action"] == "detokenize" {
			detok++
			if en["actor"] == "" || !strings.Contains(en["resource"].(string), tk.ID) {
				t.Errorf("detokenize audit entry %v", en)
			}
		}
	}
	if detok != 1 {
		t.Errorf("%d detokenize audit entries, want 1 (the owner's)", detok)
	}

	// Batch re-identification.
	var dr ward.DetokenizeResponse
	unknown := privacy.TokenPrefix + strings.Repeat("b", 32)
	e.do("POST", "/v1/projects/alpha/detokenize", owner, ward.DetokenizeRequest{Tokens: []string{token, unknown}}).
		wantStatus(t, http.StatusOK).decode(t, &dr)
	if string(dr.Values[token]) != `"cust-77"` || dr.Values[unknown] != nil {
		t.Errorf("detokenize = %v", dr.Values)
	}
	e.do("POST", "/v1/projects/alpha/detokenize", dev, ward.DetokenizeRequest{Tokens: []string{token}}).wantError(t, 403, ward.CodeForbidden, "")
	e.do("POST", "/v1/projects/alpha/detokenize", owner, ward.DetokenizeRequest{Tokens: []string{"tok_short"}}).wantError(t, 400, ward.CodeInvalidArgument, "tokens[0]")
	e.do("POST", "/v1/projects/alpha/detokenize", owner, ward.DetokenizeRequest{}).wantError(t, 400, ward.CodeInvalidArgument, "tokens")
	// beta's owner cannot re-identify alpha's token.
	var none ward.DetokenizeResponse
	e.do("POST", "/v1/projects/beta/detokenize", e.token(ward.RoleOwner, "beta"), ward.DetokenizeRequest{Tokens: []string{token}}).
		wantStatus(t, http.StatusOK).decode(t, &none)
	if len(none.Values) != 0 {
		t.Errorf("beta re-identified alpha's token: %v", none.Values)
	}
}

func TestInputRulesBadSpecs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.token(ward.RoleDeveloper, "alpha")
	for _, tc := range []struct {
		name, body, field string
	}{
		{"no slash", `{"input":{"fields":["order"]}}`, "input.fields[0]"},
		{"bad escape", `{"input":{"fields":["/a~2b"]}}`, "input.fields[0]"},
		{"duplicate", `{"input":{"fields":["/a","/a"]}}`, "input.fields[1]"},
		{"strict without fields", `{"input":{"strict":true}}`, "input"},
		{"bad schema", `{"input":{"schema":{"type":5}}}`, "input.schema"},
		{"remote schema", `{"input":{"schema":{"$ref":"https://example.com/s.json"}}}`, "input.schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("PUT", "/v1/projects/alpha/functions/f", dev, tc.body)
			r.wantStatus(t, http.StatusBadRequest)
			var b errorBody
			r.decode(t, &b)
			if b.Error.Code != ward.CodeInvalidArgument || !strings.HasPrefix(b.Error.Field, tc.field) {
				t.Errorf("error = %+v, want invalid_argument on %s", b.Error, tc.field)
			}
		})
	}
	if _, err := e.st.GetFunction(e.ctx, "alpha", "f"); err == nil {
		t.Error("a function with bad input rules was stored")
	}
}

func TestInputRulesBadPayloads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	strict := scoringSpec()
	strict.Input.Strict = true
	e.function("alpha", "score", strict)
	nested := ward.DefaultSpec()
	nested.Input = ward.Input{Tokenize: []string{"/customer"}}
	e.function("alpha", "nested", nested)
	dev := e.token(ward.RoleDeveloper, "alpha")

	e.do("POST", "/v1/projects/alpha/tasks", dev, ward.SubmitRequest{Function: "score", PayloadB64: []byte("not json")}).
		wantError(t, 400, privacy.CodeNotJSON, "")
	r := e.do("POST", "/v1/projects/alpha/tasks", dev, ward.SubmitRequest{Function: "score", Payload: json.RawMessage(orderPayload)})
	r.wantError(t, 400, privacy.CodeNotAllowed, "payload")
	if !bytes.Contains(r.body, []byte("/customer/email")) || bytes.Contains(r.body, []byte("ada@example.com")) || bytes.Contains(r.body, []byte("4111")) {
		t.Errorf("strict error must name pointers, never values: %s", r.body)
	}
	e.do("POST", "/v1/projects/alpha/tasks", dev, ward.SubmitRequest{Function: "nested", Payload: json.RawMessage(orderPayload)}).
		wantError(t, 400, privacy.CodeNotScalar, "/customer")
	e.do("POST", "/v1/projects/alpha/tasks/batch", dev, ward.BatchSubmitRequest{Tasks: []ward.SubmitRequest{
		{Function: "score", Payload: json.RawMessage(`{"order":{"amount":1}}`)},
		{Function: "score", PayloadB64: []byte("x")},
	}}).wantError(t, 400, privacy.CodeNotJSON, "tasks[1].payload")
	// Nothing was stored by the refusals.
	list, err := e.st.ListTasks(e.ctx, &store.ListTasksParams{Project: "alpha", Limit: 10})
	if err != nil || len(list) != 0 {
		t.Fatalf("tasks after refusals: %d %v", len(list), err)
	}
	// A schema is checked at submit, errors by path, never by value.
	schema := ward.DefaultSpec()
	schema.Input = ward.Input{Schema: json.RawMessage(`{"type":"object","properties":{"order":{"type":"object","properties":{"amount":{"type":"number","maximum":100}}}}}`)}
	e.function("alpha", "checked", schema)
	r = e.do("POST", "/v1/projects/alpha/tasks", dev, ward.SubmitRequest{Function: "checked", Payload: json.RawMessage(`{"order":{"amount":123456}}`)})
	r.wantError(t, 400, privacy.CodeSchema, "payload")
	if !bytes.Contains(r.body, []byte("/order/amount: maximum")) || bytes.Contains(r.body, []byte("123456")) {
		t.Errorf("schema error: %s", r.body)
	}
	// A payload within the rules passes.
	e.submit("alpha", dev, ward.SubmitRequest{Function: "score", Payload: json.RawMessage(`{"order":{"amount":7},"customer":{"id":"c"}}`)})
}

func TestFanout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	scan := ward.DefaultSpec()
	scan.Input = ward.Input{Fields: []string{"/attachments"}}
	check := ward.DefaultSpec()
	check.Input = ward.Input{Fields: []string{"/to", "/from"}}
	e.function("alpha", "scanner", scan)
	e.function("alpha", "checker", check)
	sub := e.token(ward.RoleSubmitter, "alpha")
	msg := `{"from":"ada@example.com","to":["bob@example.com"],"subject":"plans","body":"the secret plan","attachments":[{"name":"a.pdf","data":"JVBERi0"}]}`
	var out ward.BatchSubmitResponse
	e.do("POST", "/v1/projects/alpha/tasks/fanout", sub, ward.FanoutRequest{Functions: []string{"scanner", "checker"}, Payload: json.RawMessage(msg)}).
		wantStatus(t, http.StatusAccepted).decode(t, &out)
	if len(out.Tasks) != 2 || out.Tasks[0].Function != "scanner" || out.Tasks[1].Function != "checker" {
		t.Fatalf("fanout tasks = %+v", out.Tasks)
	}
	want := map[string]struct{ has, hasNot []string }{
		"scanner": {[]string{"a.pdf", "JVBERi0"}, []string{"ada@", "bob@", "secret plan", "plans"}},
		"checker": {[]string{"ada@example.com", "bob@example.com"}, []string{"a.pdf", "secret plan", "plans"}},
	}
	for _, tk := range out.Tasks {
		b, err := e.st.GetTaskBody(e.ctx, "alpha", tk.ID, store.BodyPayload)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range want[tk.Function].has {
			if !bytes.Contains(b, []byte(s)) {
				t.Errorf("%s lacks %q: %s", tk.Function, s, b)
			}
		}
		for _, s := range want[tk.Function].hasNot {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q: %s", tk.Function, s, b)
			}
		}
	}
	e.do("POST", "/v1/projects/alpha/tasks/fanout", sub, ward.FanoutRequest{Functions: []string{"scanner", "scanner"}}).wantError(t, 400, ward.CodeInvalidArgument, "functions[1]")
	e.do("POST", "/v1/projects/alpha/tasks/fanout", sub, ward.FanoutRequest{}).wantError(t, 400, ward.CodeInvalidArgument, "functions")
	e.do("POST", "/v1/projects/alpha/tasks/fanout", sub, ward.FanoutRequest{Functions: []string{"scanner", "nope"}, Payload: json.RawMessage(msg)}).
		wantError(t, 404, ward.CodeNotFound, "functions[1].function")
}
