package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

// specPuts returns the specs deploy sent for function fn, in order.
func specPuts(t *testing.T, api *fakeAPI, fn string) []ward.FunctionSpec {
	t.Helper()
	var out []ward.FunctionSpec
	for _, req := range api.requests() {
		if req.Method == "PUT" && req.Path == "/v1/projects/default/functions/"+fn {
			var s ward.FunctionSpec
			if err := json.Unmarshal(req.Body, &s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}

// codeDir writes a wasm module and the given files into a new directory.
func codeDir(t *testing.T, files map[string]string) (dir, wasm string) {
	t.Helper()
	dir = t.TempDir()
	wasm = filepath.Join(dir, "fn.wasm")
	if err := os.WriteFile(wasm, wasmHeader, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, wasm
}

func TestDeployInputFlags(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	wasm := writeWasm(t, wasmHeader)

	r := c.run(t, "deploy", "fraud", wasm, "--fields", "/order/total,/customer", "--fields", `"/a,b"`,
		"--tokenize", "/customer/id", "--strict")
	r.wantCode(t, 0)
	want := ward.Input{Fields: []string{"/order/total", "/customer", "/a,b"}, Tokenize: []string{"/customer/id"}, Strict: true}
	if got := specPuts(t, api, "fraud")[0].Input; !reflect.DeepEqual(got, want) {
		t.Errorf("input = %+v, want %+v", got, want)
	}

	// A redeploy keeps the rules it is not told about; --strict=false and
	// --tokenize '' turn them off.
	c.run(t, "deploy", "fraud", wasm, "--memory", "96").wantCode(t, 0)
	if got := specPuts(t, api, "fraud")[1].Input; !reflect.DeepEqual(got, want) {
		t.Errorf("after a redeploy input = %+v, want %+v", got, want)
	}
	c.run(t, "deploy", "fraud", wasm, "--strict=false", "--tokenize", "").wantCode(t, 0)
	want = ward.Input{Fields: []string{"/order/total", "/customer", "/a,b"}}
	if got := specPuts(t, api, "fraud")[2].Input; !reflect.DeepEqual(got, want) {
		t.Errorf("input = %+v, want %+v", got, want)
	}

	r = c.run(t, "function", "get", "fraud")
	r.wantCode(t, 0)
	for _, line := range []string{"Input fields:      /order/total\n", "                   /customer\n", "Tokenized:         -\n", "Strict:            no (fields outside the list are dropped)\n"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("function get lacks %q:\n%s", line, r.stdout)
		}
	}
}

func TestDeployInputErrors(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	wasm := writeWasm(t, wasmHeader)
	_, withBadFile := codeDir(t, map[string]string{"ward.yaml": "input:\n  fields: [/a]\n  tokenize: [a]\n"})
	_, withUnknown := codeDir(t, map[string]string{"ward.json": `{"input":{"strict":true},"retention":1}`})

	// Pointer syntax is checked before anything is sent or built.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "f", wasm, "--fields", "order"}, `ward: invalid_argument: --fields[0]: invalid JSON pointer "order"`},
		{[]string{"deploy", "f", wasm, "--fields", "/a", "--tokenize", "/b,x"}, `ward: invalid_argument: --tokenize[1]: invalid JSON pointer "x"`},
		{[]string{"deploy", "f", withBadFile}, `ward.yaml: input.tokenize[0]: invalid JSON pointer "a"`},
		{[]string{"deploy", "f", withUnknown}, `ward.json: unknown field "retention"`},
		{[]string{"deploy", "f", wasm, "--spec", filepath.Join(t.TempDir(), "none.yaml")}, "ward: invalid_argument: spec file: open"},
	} {
		r := c.run(t, tt.args...)
		r.wantCode(t, 1)
		if !strings.Contains(r.stderr, tt.want) {
			t.Errorf("ward %s: stderr = %q, want %q", strings.Join(tt.args, " "), r.stderr, tt.want)
		}
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("%d requests sent for bad rules", n)
	}

	// Rules that do not fit together are refused before the spec is sent.
	r := c.run(t, "deploy", "f", wasm, "--strict")
	r.wantCode(t, 1)
	if !strings.HasPrefix(r.stderr, "ward: invalid_argument: input.strict: needs input.fields") {
		t.Errorf("stderr = %q", r.stderr)
	}
	r = c.run(t, "deploy", "f", wasm, "--fields", "/a,/a")
	r.wantCode(t, 1)
	if !strings.Contains(r.stderr, `input.fields[1]: pointer "/a" repeats input.fields[0]`) {
		t.Errorf("stderr = %q", r.stderr)
	}
	for _, req := range api.requests() {
		if req.Method != "GET" {
			t.Errorf("a refused spec still sent %s %s", req.Method, req.Path)
		}
	}
}

func TestDeploySpecFile(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	dir, wasm := codeDir(t, map[string]string{"ward.yaml": `
limits:
  memory_mb: 128
retries: {max_attempts: 3}
input:
  fields: [/order/total, /customer/id]
  tokenize: [/customer/id]
  schema: {type: object}
retention_days: 14
`})
	r := c.run(t, "deploy", "fraud", wasm)
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "Spec file:  "+filepath.Join(dir, "ward.yaml")) {
		t.Errorf("stdout = %q", r.stdout)
	}
	want := ward.FunctionSpec{
		Limits:  ward.Limits{MemoryMB: 128},
		Retries: ward.Retries{MaxAttempts: 3},
		Input: ward.Input{Fields: []string{"/order/total", "/customer/id"}, Tokenize: []string{"/customer/id"},
			Schema: json.RawMessage(`{"type":"object"}`)},
		RetentionDays: 14,
	}
	if got := specPuts(t, api, "fraud")[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("new function's spec = %+v, want %+v", got, want)
	}

	// The directory of a Go package is looked in too (the build itself is
	// TestDeployGoPackage's); flags override the file, and the file overrides
	// the server's spec.
	api.mu.Lock()
	fn := api.functions["fraud"]
	fn.Spec.Limits.TimeoutS = 99
	fn.Spec.Input.Strict = true
	api.functions["fraud"] = fn
	api.mu.Unlock()
	r = c.run(t, "-o", "json", "deploy", "fraud", wasm, "--memory", "256", "--tokenize", "/order/total")
	r.wantCode(t, 0)
	var res deployResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.SpecFile != filepath.Join(dir, "ward.yaml") || res.Version != 2 {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}
	got := specPuts(t, api, "fraud")[1]
	if got.Limits.MemoryMB != 256 || got.Limits.TimeoutS != 99 || got.Retries.MaxAttempts != 3 || got.RetentionDays != 14 {
		t.Errorf("limits and retries = %+v", got)
	}
	// The file's input section replaced the server's rules (strict is off).
	wantIn := ward.Input{Fields: []string{"/order/total", "/customer/id"}, Tokenize: []string{"/order/total"}, Schema: json.RawMessage(`{"type":"object"}`)}
	if !reflect.DeepEqual(got.Input, wantIn) {
		t.Errorf("input = %+v, want %+v", got.Input, wantIn)
	}

	// --spec names another file, in JSON.
	other := filepath.Join(t.TempDir(), "other.json")
	os.WriteFile(other, []byte(`{"limits":{"timeout_s":7}}`), 0o600)
	c.run(t, "deploy", "fraud", wasm, "--spec", other).wantCode(t, 0)
	got = specPuts(t, api, "fraud")[2]
	if got.Limits.TimeoutS != 7 || got.Limits.MemoryMB != 256 || !reflect.DeepEqual(got.Input, wantIn) {
		t.Errorf("spec from --spec = %+v", got)
	}

	r = c.run(t, "function", "get", "fraud")
	if !strings.Contains(r.stdout, "Schema:            yes, 17 bytes (-o json shows it)\n") {
		t.Errorf("function get = %s", r.stdout)
	}

	// Both files beside the code: refused, nothing sent.
	_, both := codeDir(t, map[string]string{"ward.json": "{}", "ward.yaml": ""})
	before := len(api.requests())
	r = c.run(t, "deploy", "fraud", both)
	r.wantCode(t, 1)
	if !strings.Contains(r.stderr, "both ward.json and ward.yaml") || len(api.requests()) != before {
		t.Errorf("stderr = %q, %d requests", r.stderr, len(api.requests())-before)
	}
}

func TestReadTokens(t *testing.T) {
	t.Parallel()
	a, b := fakeToken, fakeUnknown
	tests := []struct {
		args  []string
		stdin string
		want  []string
		err   string
	}{
		{args: []string{a, b, a}, want: []string{a, b}},
		{stdin: "\n " + b + " \r\n\n" + a + "\n" + b, want: []string{b, a}},
		{args: []string{a}, stdin: b, want: []string{a}},
		{args: []string{a, "secret-value"}, err: "argument 2 is not a token"},
		{args: []string{""}, err: "argument 1 is not a token"},
		{stdin: a + "\n" + strings.ToUpper(b) + "\n", err: "line 2 is not a token"},
		{stdin: a + " " + b + "\n", err: "line 1 is not a token"},
		{stdin: "\n\n", err: "give tokens"},
		{err: "give tokens"},
	}
	for _, tt := range tests {
		got, err := readTokens(tt.args, strings.NewReader(tt.stdin))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "secret-value") {
				t.Errorf("readTokens(%q, %q) = %v, %v; want an error with %q", tt.args, tt.stdin, got, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("readTokens(%q, %q) = %v, %v; want %v", tt.args, tt.stdin, got, err, tt.want)
		}
	}
}

func TestDetokenizeCmd(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)

	r := c.run(t, "detokenize", fakeToken, fakeUnknown)
	r.wantCode(t, 0)
	want := "TOKEN                                 VALUE\n" + fakeToken + `  "cust-42"` + "\n" + fakeUnknown + "  -\n"
	if r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "1 token(s) not held") {
		t.Errorf("stderr = %q", r.stderr)
	}
	req := api.last(t, "POST")
	if req.Path != "/v1/projects/default/detokenize" || string(req.Body) != `{"tokens":["`+fakeToken+`","`+fakeUnknown+`"]}` {
		t.Errorf("request = %s %s", req.Path, req.Body)
	}

	c.stdin = fakeToken + "\n"
	r = c.run(t, "-o", "json", "detokenize")
	r.wantCode(t, 0)
	var out detokenizeOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || string(out.Values[fakeToken]) != `"cust-42"` || out.Missing != nil {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}
	if strings.Contains(r.stdout, "missing") || r.stderr != "" {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}

	// More tokens than one request takes go in several.
	var many strings.Builder
	for i := range ward.MaxDetokenize + 5 {
		tok := []byte(fakeUnknown)
		for j, k := len(tok)-1, i; j >= len(tok)-3; j, k = j-1, k/26 {
			tok[j] = byte('a' + k%26)
		}
		many.WriteString(string(tok) + "\n")
	}
	many.WriteString(fakeToken + "\n")
	c.stdin = many.String()
	before := len(api.requests())
	r = c.run(t, "-o", "json", "detokenize")
	r.wantCode(t, 0)
	if n := len(api.requests()) - before; n != 2 {
		t.Errorf("%d requests for %d tokens, want 2", n, ward.MaxDetokenize+6)
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Values) != 1 || len(out.Missing) != ward.MaxDetokenize+5 {
		t.Errorf("values %d, missing %d (%v)", len(out.Values), len(out.Missing), err)
	}
}

func TestTaskInspect(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	api.mu.Lock()
	ruled := api.addTask("fraud", ward.StatusSucceeded, nil)
	ruled.task.PayloadSize = 161
	ruled.task.Input = &ward.PayloadInfo{Fields: []string{"/order/total", "/customer/id"}, Tokenized: []string{"/customer/id"}, Truncated: true}
	plain := api.addTask("hello", ward.StatusQueued, nil)
	sealed := api.addTask("vault", ward.StatusQueued, nil)
	sealed.task.Sealed = true
	api.mu.Unlock()

	r := c.run(t, "task", "inspect", ruled.task.ID)
	r.wantCode(t, 0)
	for _, line := range []string{
		"Payload size:  161 bytes\n", "Sealed:        no\n",
		"Fields:        /order/total\n", "               /customer/id\n", "Tokenized:     /customer/id\n",
		"(the lists are cut short: the payload holds more fields)",
	} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("inspect lacks %q:\n%s", line, r.stdout)
		}
	}
	r = c.run(t, "task", "get", ruled.task.ID)
	if !strings.Contains(r.stdout, "Payload holds:  2 field(s), 1 tokenized, lists cut short (ward task inspect lists them)") {
		t.Errorf("task get = %s", r.stdout)
	}
	api.mu.Lock()
	submitted := api.addTask("fraud", ward.StatusQueued, nil) // as a submission or a list shows it
	submitted.task.Input = &ward.PayloadInfo{Tokenized: []string{"/customer/id"}}
	api.mu.Unlock()
	r = c.run(t, "task", "get", submitted.task.ID)
	if !strings.Contains(r.stdout, "Payload holds:  1 tokenized (ward task inspect lists them)") {
		t.Errorf("task get without fields = %s", r.stdout)
	}
	r = c.run(t, "task", "inspect", plain.task.ID)
	if !strings.Contains(r.stdout, "Input rules:   none: the payload is stored as it was submitted") || strings.Contains(r.stdout, "Fields:") {
		t.Errorf("inspect without rules = %s", r.stdout)
	}
	r = c.run(t, "task", "inspect", sealed.task.ID)
	if !strings.Contains(r.stdout, "Sealed:        yes") || strings.Contains(r.stdout, "Input rules:") {
		t.Errorf("inspect sealed = %s", r.stdout)
	}
	r = c.run(t, "-o", "json", "task", "inspect", ruled.task.ID)
	r.wantCode(t, 0)
	var tk ward.Task
	if err := json.Unmarshal([]byte(r.stdout), &tk); err != nil || tk.Input == nil || !slices.Equal(tk.Input.Tokenized, []string{"/customer/id"}) {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}
	r = c.run(t, "task", "inspect", "t_99")
	r.wantCode(t, 1)
	if r.stderr != "ward: not_found: task t_99 not found\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestResultDetokenize(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	api.mu.Lock()
	known := api.addTask("fraud", ward.StatusSucceeded, nil)
	known.task.Status = ward.StatusSucceeded
	known.result = []byte(`{"customer":"` + fakeToken + `"}`)
	unknown := api.addTask("fraud", ward.StatusSucceeded, nil)
	unknown.task.Status = ward.StatusSucceeded
	unknown.result = []byte(`{"customer":"` + fakeUnknown + `"}`)
	api.mu.Unlock()

	r := c.run(t, "task", "result", known.task.ID)
	r.wantCode(t, 0)
	if r.stdout != string(known.result) || r.stderr != "" || api.last(t, "GET").Query != "" {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
	r = c.run(t, "task", "result", known.task.ID, "--detokenize")
	r.wantCode(t, 0)
	if r.stdout != `{"customer":"cust-42"}` || r.stderr != "" || api.last(t, "GET").Query != "detokenize=1" {
		t.Errorf("stdout = %q, stderr = %q, query %q", r.stdout, r.stderr, api.last(t, "GET").Query)
	}
	// Tokens left (no scope, or past retention): the result as it is, and a note.
	r = c.run(t, "task", "result", unknown.task.ID, "--detokenize")
	r.wantCode(t, 0)
	if r.stdout != string(unknown.result) || r.stderr != tokensLeftNote {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
}

func TestInvokeDetokenize(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)
	c.stdin = `{"id":"` + fakeToken + `"}`
	r := c.run(t, "invoke", "fraud", "--detokenize")
	r.wantCode(t, 0)
	if r.stdout != `echo:{"id":"cust-42"}` || r.stderr != "" {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
	if req := api.last(t, "POST"); req.Query != "detokenize=1" || req.ContentType != "application/json" {
		t.Errorf("request query %q, type %q", req.Query, req.ContentType)
	}
	r = c.run(t, "invoke", "fraud")
	if r.stdout != `echo:{"id":"`+fakeToken+`"}` || r.stderr != "" || api.last(t, "POST").Query != "" {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
	c.stdin = fakeUnknown
	r = c.run(t, "invoke", "fraud", "--detokenize")
	if r.stdout != "echo:"+fakeUnknown || r.stderr != tokensLeftNote {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
	r = c.run(t, "invoke", "fails", "--detokenize")
	r.wantCode(t, 1)
	if r.stderr != "ward: exit_status: exit status 3 (task t_99)\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestFanoutCmd(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)

	r := c.run(t, "task", "fanout", "--function", "ruled,hello", "--payload", `{"order":{"total":3}}`,
		"--priority", "2", "--label", "batch=7", "--delay", "1s")
	r.wantCode(t, 0)
	var sent map[string]any
	if err := json.Unmarshal(api.last(t, "POST").Body, &sent); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"functions": []any{"ruled", "hello"}, "payload": map[string]any{"order": map[string]any{"total": 3.0}},
		"priority": 2.0, "delay_s": 1.0, "labels": map[string]any{"batch": "7"},
	}
	if !reflect.DeepEqual(sent, want) {
		t.Errorf("sent %v, want %v", sent, want)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	wantLines := []string{
		"ID   FUNCTION  STATUS  FIELDS  TOKENIZED  ERROR",
		"t_1  ruled     queued  2       1          -",
		"t_2  hello     queued  all     -          -",
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("table:\n%s\nwant:\n%s", r.stdout, strings.Join(wantLines, "\n"))
	}

	// --wait: every task is awaited; one failure fails the command.
	r = c.run(t, "-o", "json", "task", "fanout", "--function", "ruled", "--function", "fails", "--payload-file", "-", "--wait")
	r.wantCode(t, 1)
	var out fanoutOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Tasks) != 2 ||
		out.Tasks[0].Status != ward.StatusSucceeded || out.Tasks[1].Status != ward.StatusFailed {
		t.Errorf("json = %q (%v)", r.stdout, err)
	}
	if !strings.HasPrefix(r.stderr, "ward: exit_status: task t_4 failed: exit status 3") {
		t.Errorf("stderr = %q", r.stderr)
	}
	r = c.run(t, "task", "fanout", "--function", "ruled", "--wait")
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "succeeded") {
		t.Errorf("stdout = %q", r.stdout)
	}

	r = c.run(t, "task", "fanout", "--function", "ruled", "--function", "nope")
	r.wantCode(t, 1)
	if r.stderr != "ward: not_found: function nope not found\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestPrivacyUsageErrors(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	for _, args := range [][]string{
		{"task", "fanout"},
		{"task", "fanout", "--payload", "{}"},
		{"task", "fanout", "--function", "Bad_Name"},
		{"task", "fanout", "--function", "a", "--payload", "{x"},
		{"task", "fanout", "--function", "a", "extra"},
		{"task", "fanout", "--function", "a", "--delay", "-1s"},
		{"task", "inspect"},
		{"task", "result", "t_1", "--detokenize=maybe"},
		{"detokenize"},
		{"deploy", "f", "x.wasm", "--strict=maybe"},
	} {
		r := newCLI(t, api.srv.URL).run(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--help") {
			t.Errorf("ward %s: exit %d, stderr %q; want a usage error", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("usage errors sent %d requests", n)
	}
}

func TestPrivacyHelp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "--help"}, "ward.json or ward.yaml"},
		{[]string{"deploy", "--help"}, "--strict=false"},
		{[]string{"task", "inspect", "--help"}, "No\nvalue is ever printed"},
		{[]string{"task", "result", "--help"}, "--detokenize"},
		{[]string{"invoke", "--help"}, "--detokenize"},
		{[]string{"detokenize", "--help"}, "detokenize scope"},
		{[]string{"task", "fanout", "--help"}, "own input rules"},
	} {
		r := newCLI(t, "").run(t, tt.args...)
		r.wantCode(t, 0)
		if !strings.Contains(r.stdout, tt.want) {
			t.Errorf("ward %s: help lacks %q", strings.Join(tt.args, " "), tt.want)
		}
	}
}

func FuzzReadTokens(f *testing.F) {
	f.Add(fakeToken + "\n\n " + fakeUnknown + "\r\n")
	f.Add("tok_\n")
	f.Add(strings.Repeat(fakeToken+"\n", 3))
	f.Add("tok_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, stdin string) {
		got, err := readTokens(nil, strings.NewReader(stdin))
		if err != nil {
			if len(got) != 0 {
				t.Errorf("tokens %q with error %v", got, err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no tokens and no error")
		}
		seen := map[string]bool{}
		for _, tok := range got {
			if len(tok) != len(fakeToken) || !strings.HasPrefix(tok, "tok_") || seen[tok] || !strings.Contains(stdin, tok) {
				t.Errorf("token %q from %q", tok, stdin)
			}
			seen[tok] = true
		}
	})
}
