package examples_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	_ "image/png" // decode the thumbnail's header
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/gobuild"
)

// example is one example compiled for a wazero runtime of its own.
type example struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	name     string
}

// buildExample builds examples/<name> to wasm with gobuild and compiles it,
// skipping the test when there is no go toolchain.
func buildExample(t *testing.T, name string) *example {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("skipping: no go toolchain on PATH to build the examples (%v)", err)
	}
	ctx := t.Context()
	code, err := gobuild.Wasm(ctx, gobuild.Options{Dir: name})
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	// The interpreter starts much faster than the compiler on these few
	// short runs, above all under -race; the engine is not what is tested.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCloseOnContextDone(true))
	t.Cleanup(func() { rt.Close(context.Background()) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	compiled, err := rt.CompileModule(ctx, code)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return &example{rt: rt, compiled: compiled, name: name}
}

// outcome is how one run ended.
type outcome struct {
	exit           uint32
	stdout, stderr string
}

// run runs the example once as a ward sandbox would: the payload on stdin
// and, when payloadFile is non-nil, that file at /ward/payload (with
// WARD_PAYLOAD_FILE set).
func (e *example) run(t *testing.T, stdin []byte, payloadFile []byte) outcome {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(e.name).
		WithStdin(bytes.NewReader(stdin)).
		WithStdout(&stdout).
		WithStderr(&stderr).
		WithEnv("WARD_TASK_ID", "t_test").
		WithEnv("WARD_FUNCTION", e.name)
	if payloadFile != nil {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "payload"), payloadFile, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg = cfg.WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(dir, "/ward")).
			WithEnv("WARD_PAYLOAD_FILE", "/ward/payload")
	}
	mod, err := e.rt.InstantiateModule(t.Context(), e.compiled, cfg)
	var exit uint32
	var exitErr *sys.ExitError
	switch {
	case errors.As(err, &exitErr):
		exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", e.name, err)
	}
	if mod != nil {
		mod.Close(t.Context())
	}
	return outcome{exit: exit, stdout: stdout.String(), stderr: stderr.String()}
}

func TestHello(t *testing.T) {
	t.Parallel()
	e := buildExample(t, "hello")
	tests := []struct {
		name       string
		stdin      []byte
		file       []byte
		wantExit   uint32
		wantStdout string
		wantStderr string
	}{
		{"payload file", []byte(`{"name":"stdin"}`), []byte(`{"name":"Ada"}`), 0, `{"greeting":"Hello, Ada!"}`, ""},
		{"stdin only", []byte(`{"name":"Ada"}`), nil, 0, `{"greeting":"Hello, Ada!"}`, ""},
		{"no name", nil, []byte(`{}`), 0, `{"greeting":"Hello, world!"}`, ""},
		{"empty payload", nil, []byte{}, 0, `{"greeting":"Hello, world!"}`, ""},
		{"invalid json", nil, []byte(`{"name":`), 1, "", "error: payload must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.run(t, tt.stdin, tt.file)
			if got.exit != tt.wantExit || got.stdout != tt.wantStdout {
				t.Errorf("exit %d, stdout %q; want exit %d, stdout %q (stderr %q)", got.exit, got.stdout, tt.wantExit, tt.wantStdout, got.stderr)
			}
			if !strings.Contains(got.stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", got.stderr, tt.wantStderr)
			}
		})
	}
}

func TestWordcount(t *testing.T) {
	t.Parallel()
	e := buildExample(t, "wordcount")
	got := e.run(t, nil, []byte(`{"text":"To be, or not to be: that is the question."}`))
	want := `{"words":10,"top":[{"word":"be","count":2},{"word":"to","count":2},{"word":"is","count":1},` +
		`{"word":"not","count":1},{"word":"or","count":1},{"word":"question","count":1},{"word":"that","count":1},{"word":"the","count":1}]}`
	if got.exit != 0 || got.stdout != want {
		t.Errorf("exit %d, stdout %s, stderr %q; want %s", got.exit, got.stdout, got.stderr, want)
	}
	bad := e.run(t, nil, []byte(`{"text":1}`))
	if bad.exit != 1 || bad.stdout != "" || !strings.Contains(bad.stderr, "error:") {
		t.Errorf("bad payload: exit %d, stdout %q, stderr %q; want exit 1 and an error on stderr", bad.exit, bad.stdout, bad.stderr)
	}
}

func TestThumbnail(t *testing.T) {
	t.Parallel()
	e := buildExample(t, "thumbnail")
	sample, err := os.ReadFile(filepath.Join("thumbnail", "sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := e.run(t, sample, sample)
	if got.exit != 0 {
		t.Fatalf("exit %d, stderr %q", got.exit, got.stderr)
	}
	var resp struct {
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		Format       string `json:"format"`
		ThumbnailB64 string `json:"thumbnail_b64"`
	}
	if err := json.Unmarshal([]byte(got.stdout), &resp); err != nil {
		t.Fatalf("result is not JSON: %v", err)
	}
	if resp.Width != 64 || resp.Height != 48 || resp.Format != "png" {
		t.Fatalf("thumbnail %d×%d %s, want 64×48 png", resp.Width, resp.Height, resp.Format)
	}
	data, err := base64.StdEncoding.DecodeString(resp.ThumbnailB64)
	if err != nil {
		t.Fatal(err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width != 64 || cfg.Height != 48 || format != "png" {
		t.Errorf("thumbnail image: %d×%d %s, %v", cfg.Width, cfg.Height, format, err)
	}
	if !strings.Contains(got.stderr, "thumbnail 64×48 png") {
		t.Errorf("log %q lacks the summary line", got.stderr)
	}

	bad := e.run(t, nil, []byte(`{"image_b64":"aGVsbG8=","max_side":64}`))
	if bad.exit != 1 || bad.stdout != "" || !strings.Contains(bad.stderr, "not a readable PNG or JPEG") {
		t.Errorf("bad image: exit %d, stdout %q, stderr %q", bad.exit, bad.stdout, bad.stderr)
	}
}

// TestSpecs checks every example's optional ward.json (the spec `ward dev`
// deploys it with) names only known fields and is valid.
func TestSpecs(t *testing.T) {
	t.Parallel()
	specs, err := filepath.Glob(filepath.Join("*", "ward.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) == 0 {
		t.Fatal("no ward.json found; thumbnail should have one")
	}
	for _, p := range specs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var spec ward.FunctionSpec
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if err := spec.WithDefaults().Validate(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestFraud(t *testing.T) {
	t.Parallel()
	e := buildExample(t, "fraud")
	// What the platform stores for fraud (its ward.json: amounts and a
	// tokenized customer id) is what the function reads.
	projected := []byte(`{"order":{"total":1249.50,"currency":"EUR","items":[{"qty":1,"price":1199.00},{"qty":2,"price":25.25}]},` +
		`"customer":{"id":"tok_abcdefghijklmnopqrstuvwxyz234567"}}`)
	got := e.run(t, nil, projected)
	var res struct {
		Customer string   `json:"customer"`
		Score    int      `json:"score"`
		Flags    []string `json:"flags"`
	}
	if got.exit != 0 || json.Unmarshal([]byte(got.stdout), &res) != nil {
		t.Fatalf("exit %d, stdout %q, stderr %q", got.exit, got.stdout, got.stderr)
	}
	if res.Customer != "tok_abcdefghijklmnopqrstuvwxyz234567" || res.Score <= 0 || res.Score > 100 || res.Flags == nil {
		t.Errorf("result %+v", res)
	}
	bad := e.run(t, nil, []byte(`[]`))
	if bad.exit != 1 || bad.stdout != "" {
		t.Errorf("bad payload: exit %d, stdout %q", bad.exit, bad.stdout)
	}
}
