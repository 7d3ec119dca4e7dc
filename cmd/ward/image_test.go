package main

import (
	"encoding/json"
	"io"
	"log"
	"math/rand"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/image"
)

// lastSpec returns the spec of the last PUT of function fn.
func lastSpec(t *testing.T, api *fakeAPI, fn string) ward.FunctionSpec {
	t.Helper()
	var spec ward.FunctionSpec
	for _, req := range api.requests() {
		if req.Method == "PUT" && req.Path == "/v1/projects/default/functions/"+fn {
			spec = ward.FunctionSpec{}
			if err := json.Unmarshal(req.Body, &spec); err != nil {
				t.Fatal(err)
			}
		}
	}
	return spec
}

// wantImageUpload checks the last code upload is an image archive that
// passes the server's intake, and returns it.
func wantImageUpload(t *testing.T, api *fakeAPI, fn string) *image.Image {
	t.Helper()
	put := api.last(t, "PUT")
	if put.Path != "/v1/projects/default/functions/"+fn+"/code" || put.ContentType != "application/x-tar" {
		t.Fatalf("code upload = %s %s, want an application/x-tar upload of %s", put.Path, put.ContentType, fn)
	}
	img, err := image.Intake(put.Body, image.IntakeOptions{})
	if err != nil {
		t.Fatalf("the uploaded archive fails intake: %v", err)
	}
	if spec := lastSpec(t, api, fn); spec.Runtime != ward.RuntimeOCI {
		t.Errorf("spec runtime = %q, want oci", spec.Runtime)
	}
	return img
}

func TestDeployImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package for Linux")
	}
	t.Parallel()
	api := newFakeAPI(t)
	c := newCLI(t, api.srv.URL)

	// A Go package with --runtime oci: built and wrapped, no Docker.
	pkg := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":  "module example.com/box\n\ngo 1.21\n",
		"main.go": "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"box\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(pkg, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.run(t, "deploy", "box", pkg, "--runtime", "oci", "--memory", "128").wantCode(t, 0)
	img := wantImageUpload(t, api, "box")
	if got := img.Config.Args(); len(got) != 1 || got[0] != "/task" {
		t.Errorf("built image command = %q, want /task", got)
	}
	if spec := lastSpec(t, api, "box"); spec.Limits.MemoryMB != 128 {
		t.Errorf("spec = %+v", spec)
	}

	// An archive: a .tar is an image without --runtime.
	tarPath := filepath.Join(t.TempDir(), "box.tar")
	if err := os.WriteFile(tarPath, img.Archive, 0o600); err != nil {
		t.Fatal(err)
	}
	c.run(t, "deploy", "box2", tarPath).wantCode(t, 0)
	if got := wantImageUpload(t, api, "box2"); got.Digest != img.Digest {
		t.Errorf("uploaded digest %s, want the archive's %s", got.Digest, img.Digest)
	}

	// From a registry, pinned to the manifest digest whatever the tag.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	rimg, err := random.Image(512, 1, random.WithSource(rand.NewSource(7)))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := rimg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.Cmd = "linux", runtime.GOARCH, []string{"/app"}
	if rimg, err = mutate.ConfigFile(rimg, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/tools/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, rimg); err != nil {
		t.Fatal(err)
	}
	want, err := rimg.Digest()
	if err != nil {
		t.Fatal(err)
	}
	c.run(t, "deploy", "app", "--image", host+"/tools/app:v1", "--insecure-registry").wantCode(t, 0)
	if got := wantImageUpload(t, api, "app"); got.Digest != want.String() {
		t.Errorf("pulled digest %s, want the registry's %s", got.Digest, want)
	}

	// Bad uses fail before anything is sent.
	before := len(api.requests())
	for _, args := range [][]string{
		{"deploy", "x", pkg, "--runtime", "docker"},
		{"deploy", "x", pkg, "--image", host + "/tools/app:v1"},
		{"deploy", "x"},
		{"deploy", "x", "--image", host + "/tools/app:v1", "--runtime", "wasm"},
	} {
		if r := c.run(t, args...); r.code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage); stderr %q", args, r.code, r.stderr)
		}
	}
	r := c.run(t, "deploy", "x", "--image", host+"/tools/missing:v1", "--insecure-registry")
	r.wantCode(t, 1)
	if !strings.Contains(r.stderr, "not_found") {
		t.Errorf("pulling a missing image: stderr %q", r.stderr)
	}
	if n := len(api.requests()); n != before {
		t.Errorf("%d requests sent for bad deploys", n-before)
	}
}

func TestWriteRunnersDrivers(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var out strings.Builder
	err := writeRunners(&out, []ward.Runner{
		{ID: "r_1", State: ward.RunnerActive, Name: "a", Drivers: []string{"wasm", "oci"}, LastSeenAt: now},
		{ID: "r_2", State: ward.RunnerActive, Name: "b", Drivers: []string{"wasm"}, LastSeenAt: now},
		{ID: "r_3", State: ward.RunnerDrained, Name: "c", LastSeenAt: now},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "DRIVERS") {
		t.Fatalf("table = %q", out.String())
	}
	for i, want := range []string{"wasm,oci", "wasm", "-"} {
		if fields := strings.Fields(lines[i+1]); len(fields) < 4 || fields[3] != want {
			t.Errorf("row %d = %q, want drivers %q", i, lines[i+1], want)
		}
	}
}

// TestContainerFlagsBad: bad container sandbox flags are usage errors,
// found before anything starts.
func TestContainerFlagsBad(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "http://127.0.0.1:1")
	for _, args := range [][]string{
		{"dev", "--data", t.TempDir(), "--overcommit", "0.5"},
		{"dev", "--data", t.TempDir(), "--oci-state", ""},
		{"runner", "run", "https://127.0.0.1:1", "--dir", t.TempDir(), "--overcommit", "0"},
	} {
		r := c.run(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--o") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error naming the flag", args, r.code, r.stderr)
		}
	}
}
