package storetest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/store"
)

// secretTests cover project-global and function-local secrets.
var secretTests = []test{
	{"Secrets", testSecrets},
	{"SecretsIfAbsent", testSecretsIfAbsent},
	{"SecretsScopes", testSecretsScopes},
	{"SecretsDelete", testSecretsDelete},
	{"SecretsDeleteFunction", testSecretsDeleteFunction},
	{"SecretsNotFound", testSecretsNotFound},
}

// putSecret writes a secret that must be written (not Existing).
func (e *env) putSecret(project, function, name, value string, now time.Time) ward.Secret {
	e.t.Helper()
	res, err := e.s.PutSecret(e.ctx, &store.PutSecretParams{Project: project, Function: function, Name: name, Value: []byte(value), Now: now})
	if err != nil {
		e.t.Fatalf("PutSecret(%s, %q, %s): %v", project, function, name, err)
	}
	if res.Existing {
		e.t.Fatalf("PutSecret(%s, %q, %s) without IfAbsent reported Existing", project, function, name)
	}
	return res.Secret
}

// wantSecret fails unless got has the metadata.
func wantSecret(t *testing.T, what string, got ward.Secret, function, name string, version, size int, updated time.Time) {
	t.Helper()
	if got.Function != function || got.Name != name || got.Version != version || got.Size != size {
		t.Fatalf("%s = %s, want function %q name %q version %d size %d", what, mustJSON(t, got), function, name, version, size)
	}
	wantTime(t, what+".UpdatedAt", got.UpdatedAt, updated)
}

// secretKeys returns "function/name" of each secret, in order.
func secretKeys(secs []ward.Secret) string {
	keys := make([]string, len(secs))
	for i, s := range secs {
		keys[i] = s.Function + "/" + s.Name
	}
	return strings.Join(keys, ",")
}

// getSecrets reads the secrets a function's tasks see and returns their
// "function/name=value" list, in order.
func (e *env) getSecrets(project, function string) string {
	e.t.Helper()
	svs, err := e.s.GetSecrets(e.ctx, project, function)
	if err != nil {
		e.t.Fatalf("GetSecrets(%s, %q): %v", project, function, err)
	}
	if svs == nil {
		e.t.Fatalf("GetSecrets(%s, %q) = nil, want a slice", project, function)
	}
	keys := make([]string, len(svs))
	for i, s := range svs {
		keys[i] = s.Function + "/" + s.Name + "=" + string(s.Value)
	}
	return strings.Join(keys, ",")
}

// listSecrets lists one scope's secrets.
func (e *env) listSecrets(project, function string) []ward.Secret {
	e.t.Helper()
	secs, err := e.s.ListSecrets(e.ctx, project, function)
	if err != nil {
		e.t.Fatalf("ListSecrets(%s, %q): %v", project, function, err)
	}
	if secs == nil {
		e.t.Fatalf("ListSecrets(%s, %q) = nil, want a slice", project, function)
	}
	return secs
}

func testSecrets(t *testing.T, e *env) {
	e.project("p")
	e.function("p", "f", nil)
	if got := e.listSecrets("p", ""); len(got) != 0 {
		t.Fatalf("ListSecrets on a new project = %s", mustJSON(t, got))
	}
	if got := e.getSecrets("p", "f"); got != "" {
		t.Fatalf("GetSecrets on a new project = %s", got)
	}

	sec := e.putSecret("p", "", "API_KEY", "v1", t0)
	wantSecret(t, "PutSecret(new)", sec, "", "API_KEY", 1, 2, t0)
	// Each replacement bumps the version.
	sec = e.putSecret("p", "", "API_KEY", "v2-longer", at(time.Minute))
	wantSecret(t, "PutSecret(replace)", sec, "", "API_KEY", 2, 9, at(time.Minute))
	sec = e.putSecret("p", "", "API_KEY", "v3", at(2*time.Minute))
	wantSecret(t, "PutSecret(replace again)", sec, "", "API_KEY", 3, 2, at(2*time.Minute))
	if got := e.getSecrets("p", ""); got != "/API_KEY=v3" {
		t.Fatalf("GetSecrets after replacing = %s, want the last value", got)
	}

	sec = e.putSecret("p", "", "other", "value", t0)
	wantSecret(t, "PutSecret(other)", sec, "", "other", 1, 5, t0)

	// Values are binary-safe; an empty value is a value.
	bin := []byte{0, 1, 0xfe, 0xff, 0}
	if _, err := e.s.PutSecret(e.ctx, &store.PutSecretParams{Project: "p", Function: "f", Name: "bin", Value: bin, Now: t0}); err != nil {
		t.Fatal(err)
	}
	res, err := e.s.PutSecret(e.ctx, &store.PutSecretParams{Project: "p", Function: "f", Name: "empty", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	wantSecret(t, "PutSecret(empty value)", res.Secret, "f", "empty", 1, 0, t0)
	svs, err := e.s.GetSecrets(e.ctx, "p", "f")
	if err != nil || len(svs) != 4 {
		t.Fatalf("GetSecrets(p, f) = %d, %v; want 4", len(svs), err)
	}
	if svs[2].Name != "bin" || !bytes.Equal(svs[2].Value, bin) || svs[3].Name != "empty" || len(svs[3].Value) != 0 {
		t.Fatalf("GetSecrets(p, f) local values = %q, %q", svs[2].Value, svs[3].Value)
	}
	wantSecret(t, "GetSecrets(p, f)[0]", svs[0].Secret, "", "API_KEY", 3, 2, at(2*time.Minute))

	// Listing gives metadata only, by name.
	secs := e.listSecrets("p", "")
	if got := secretKeys(secs); got != "/API_KEY,/other" {
		t.Fatalf("ListSecrets(p) = %s, want /API_KEY,/other", got)
	}
	wantSecret(t, "ListSecrets(p)[0]", secs[0], "", "API_KEY", 3, 2, at(2*time.Minute))
	if j := mustJSON(t, secs); strings.Contains(j, "v3") || strings.Contains(j, "value") {
		t.Fatalf("ListSecrets carries values: %s", j)
	}
}

func testSecretsIfAbsent(t *testing.T, e *env) {
	e.project("p")
	e.function("p", "f", nil)
	e.putSecret("p", "f", "key", "first", t0)
	e.putSecret("p", "f", "key", "second", at(time.Second))

	res, err := e.s.PutSecret(e.ctx, &store.PutSecretParams{Project: "p", Function: "f", Name: "key", Value: []byte("third, ignored"),
		IfAbsent: true, Now: at(time.Minute)})
	if err != nil {
		t.Fatalf("PutSecret(IfAbsent, existing): %v", err)
	}
	if !res.Existing {
		t.Fatal("PutSecret(IfAbsent, existing): Existing = false")
	}
	wantSecret(t, "PutSecret(IfAbsent, existing)", res.Secret, "f", "key", 2, 6, at(time.Second))
	if got := e.getSecrets("p", "f"); got != "f/key=second" {
		t.Fatalf("GetSecrets after IfAbsent on an existing secret = %s, want it unchanged", got)
	}

	res, err = e.s.PutSecret(e.ctx, &store.PutSecretParams{Project: "p", Function: "f", Name: "fresh", Value: []byte("new"),
		IfAbsent: true, Now: at(time.Minute)})
	if err != nil || res.Existing {
		t.Fatalf("PutSecret(IfAbsent, absent) = %+v, %v; want written", res, err)
	}
	wantSecret(t, "PutSecret(IfAbsent, absent)", res.Secret, "f", "fresh", 1, 3, at(time.Minute))
	// The same name in the global scope is another secret.
	res, err = e.s.PutSecret(e.ctx, &store.PutSecretParams{Project: "p", Name: "key", Value: []byte("global"), IfAbsent: true, Now: at(time.Hour)})
	if err != nil || res.Existing {
		t.Fatalf("PutSecret(IfAbsent, global of a local name) = %+v, %v; want written", res, err)
	}
	if got := e.getSecrets("p", "f"); got != "/key=global,f/fresh=new,f/key=second" {
		t.Fatalf("GetSecrets = %s", got)
	}
}

func testSecretsScopes(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "f", nil)
	e.function("p", "g", nil)
	e.function("q", "f", nil)
	e.putSecret("p", "", "token", "p-global", t0)
	e.putSecret("p", "", "a", "p-global-a", t0)
	e.putSecret("p", "f", "token", "p-f", t0) // same name as a global one
	e.putSecret("p", "f", "z.key", "p-f-z", t0)
	e.putSecret("p", "g", "g_only", "p-g", t0)
	e.putSecret("q", "", "token", "q-global", t0)
	e.putSecret("q", "f", "token", "q-f", t0)

	for _, tc := range []struct{ project, fn, want string }{
		{"p", "", "/a,/token"},
		{"p", "f", "f/token,f/z.key"},
		{"p", "g", "g/g_only"},
		{"q", "", "/token"},
		{"q", "f", "f/token"},
	} {
		if got := secretKeys(e.listSecrets(tc.project, tc.fn)); got != tc.want {
			t.Errorf("ListSecrets(%s, %q) = %s, want %s", tc.project, tc.fn, got, tc.want)
		}
	}
	// Tasks see both scopes, the global ones first, each by name, with values.
	for _, tc := range []struct{ project, fn, want string }{
		{"p", "f", "/a=p-global-a,/token=p-global,f/token=p-f,f/z.key=p-f-z"},
		{"p", "g", "/a=p-global-a,/token=p-global,g/g_only=p-g"},
		{"p", "", "/a=p-global-a,/token=p-global"},
		{"q", "f", "/token=q-global,f/token=q-f"},
		// A function that does not exist (a task of a deleted function)
		// sees the global ones.
		{"p", "deleted", "/a=p-global-a,/token=p-global"},
	} {
		if got := e.getSecrets(tc.project, tc.fn); got != tc.want {
			t.Errorf("GetSecrets(%s, %q) = %s, want %s", tc.project, tc.fn, got, tc.want)
		}
	}
}

func testSecretsDelete(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "f", nil)
	e.putSecret("p", "", "k", "global", t0)
	e.putSecret("p", "", "k", "global v2", t0)
	e.putSecret("p", "f", "k", "local", t0)
	e.putSecret("q", "", "k", "q", t0)

	for _, tc := range []struct{ project, fn, name string }{
		{"p", "", "nope"},
		{"p", "f", "nope"},
		{"p", "nope", "k"}, // no such function
		{"nope", "", "k"},  // no such project
		{"q", "f", "k"},    // q has no function f
	} {
		err := e.s.DeleteSecret(e.ctx, tc.project, tc.fn, tc.name)
		wantCode(t, "DeleteSecret("+tc.project+", "+tc.fn+", "+tc.name+")", err, ward.CodeNotFound)
	}
	if got := e.getSecrets("p", "f"); got != "/k=global v2,f/k=local" {
		t.Fatalf("GetSecrets after failed deletes = %s", got)
	}

	if err := e.s.DeleteSecret(e.ctx, "p", "", "k"); err != nil {
		t.Fatalf("DeleteSecret(global): %v", err)
	}
	err := e.s.DeleteSecret(e.ctx, "p", "", "k")
	wantCode(t, "DeleteSecret(deleted)", err, ward.CodeNotFound)
	// Only that scope's secret went.
	if got := e.getSecrets("p", "f"); got != "f/k=local" {
		t.Fatalf("GetSecrets after deleting the global one = %s, want the local one only", got)
	}
	if got := e.getSecrets("q", ""); got != "/k=q" {
		t.Fatalf("GetSecrets(q) after deleting p's = %s", got)
	}
	// A secret written again starts at version 1.
	sec := e.putSecret("p", "", "k", "again", at(time.Hour))
	wantSecret(t, "PutSecret(after delete)", sec, "", "k", 1, 5, at(time.Hour))
}

func testSecretsDeleteFunction(t *testing.T, e *env) {
	e.project("p")
	e.function("p", "f", nil)
	e.function("p", "g", nil)
	e.putSecret("p", "", "shared", "global", t0)
	e.putSecret("p", "f", "mine", "f's", t0)
	e.putSecret("p", "g", "mine", "g's", t0)
	if err := e.s.DeleteFunction(e.ctx, "p", "f"); err != nil {
		t.Fatal(err)
	}
	if got := e.getSecrets("p", "f"); got != "/shared=global" {
		t.Fatalf("GetSecrets of a deleted function = %s, want the global one only", got)
	}
	_, err := e.s.ListSecrets(e.ctx, "p", "f")
	wantCode(t, "ListSecrets(deleted function)", err, ward.CodeNotFound)
	// A function created again has no secrets of its own.
	e.function("p", "f", nil)
	if got := e.listSecrets("p", "f"); len(got) != 0 {
		t.Fatalf("ListSecrets(recreated function) = %s, want none", mustJSON(t, got))
	}
	if got := e.getSecrets("p", "g"); got != "/shared=global,g/mine=g's" {
		t.Fatalf("GetSecrets(g) after deleting f = %s", got)
	}
}

func testSecretsNotFound(t *testing.T, e *env) {
	e.project("p")
	e.function("p", "f", nil)
	for _, tc := range []struct{ project, fn string }{{"nope", ""}, {"nope", "f"}, {"p", "nope"}} {
		what := "(" + tc.project + ", " + tc.fn + ")"
		_, err := e.s.PutSecret(e.ctx, &store.PutSecretParams{Project: tc.project, Function: tc.fn, Name: "k", Value: []byte("v"), Now: t0})
		wantCode(t, "PutSecret"+what, err, ward.CodeNotFound)
		_, err = e.s.PutSecret(e.ctx, &store.PutSecretParams{Project: tc.project, Function: tc.fn, Name: "k", Value: []byte("v"), IfAbsent: true, Now: t0})
		wantCode(t, "PutSecret(IfAbsent)"+what, err, ward.CodeNotFound)
		_, err = e.s.ListSecrets(e.ctx, tc.project, tc.fn)
		wantCode(t, "ListSecrets"+what, err, ward.CodeNotFound)
	}
	_, err := e.s.GetSecrets(e.ctx, "nope", "f")
	wantCode(t, "GetSecrets(missing project)", err, ward.CodeNotFound)
	_, err = e.s.GetSecrets(e.ctx, "nope", "")
	wantCode(t, "GetSecrets(missing project, global)", err, ward.CodeNotFound)
	_, err = e.s.PutSecret(e.ctx, &store.PutSecretParams{Project: "p", Name: "", Value: []byte("v"), Now: t0})
	wantCode(t, "PutSecret(no name)", err, ward.CodeInvalidArgument)
	// Nothing was written.
	if got := e.getSecrets("p", "f"); got != "" {
		t.Fatalf("GetSecrets after failed writes = %s, want none", got)
	}
}
