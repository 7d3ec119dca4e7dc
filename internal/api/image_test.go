package api

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/image"
)

// testImage builds a single-layer image with one executable.
func testImage(t *testing.T, entrypoint ...string) *image.Image {
	t.Helper()
	img, err := image.Build(image.BuildOptions{
		Files:      []image.File{{Path: "/task", Mode: 0o755, Data: []byte("\x7fELF not really")}},
		Entrypoint: entrypoint,
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// rewriteTar returns archive with every entry's body passed through edit.
func rewriteTar(t *testing.T, archive []byte, edit func(name string, body []byte) []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		body = edit(hdr.Name, body)
		hdr.Size = int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// dockerSave returns a `docker save` archive of one layer holding the
// files (empty ones) and a config with the command cmd.
func dockerSave(t *testing.T, cmd []string, files ...string) []byte {
	t.Helper()
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	for _, name := range append([]string{"task"}, files...) {
		if err := lw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID := sha256hex(layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Cmd": cmd},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + diffID}},
	})
	if err != nil {
		t.Fatal(err)
	}
	configName := sha256hex(config) + ".json"
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "Layers": []string{diffID + "/layer.tar"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, f := range []struct {
		name string
		body []byte
	}{{"manifest.json", manifest}, {configName, config}, {diffID + "/layer.tar", layer.Bytes()}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestImageUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev, devID := e.tokenWithID(ward.RoleDeveloper, "alpha", time.Hour)
	e.do("PUT", "/v1/projects/alpha/functions/box", dev, `{"runtime":"oci"}`).wantStatus(t, http.StatusCreated)
	const path = "/v1/projects/alpha/functions/box/code"

	img := testImage(t, "/task")
	// A docker save archive is accepted too, and stored as an OCI layout.
	e.do("PUT", path, dev, dockerSave(t, []string{"/task"}), "Content-Type", "application/x-tar").wantStatus(t, http.StatusOK)
	var up ward.CodeUploadResponse
	e.do("PUT", path, dev, img.Archive, "Content-Type", "application/x-tar").wantStatus(t, http.StatusOK).decode(t, &up)
	if up.Digest != img.Digest || up.Version != 2 || up.Size != int64(len(img.Archive)) {
		t.Errorf("upload = %+v, want the manifest digest %s", up, img.Digest)
	}
	stored, err := e.st.GetCode(e.ctx, "alpha", up.Digest)
	if err != nil || !bytes.Equal(stored, img.Archive) {
		t.Errorf("stored code: %d bytes, %v; want the canonical archive", len(stored), err)
	}
	if _, err := image.Open(stored, up.Digest, image.IntakeOptions{}); err != nil {
		t.Errorf("the stored archive does not open under its digest: %v", err)
	}
	if last := e.lastAudit(); last["actor"] != devID || last["outcome"] != "ok" {
		t.Errorf("audit = %v", last)
	}

	// Bad archives: each refused with its code, the function unchanged.
	layerOf := func(name string) bool { return strings.HasPrefix(name, "blobs/sha256/") }
	corrupt := rewriteTar(t, img.Archive, func(name string, body []byte) []byte {
		if layerOf(name) && bytes.Contains(body, []byte("not really")) {
			body = bytes.Replace(body, []byte("not really"), []byte("NOT REALLY"), 1)
		}
		return body
	})
	bad := []struct {
		name   string
		body   []byte
		status int
		code   ward.Code
	}{
		{"not a tar", []byte("this is not an archive"), 400, ward.CodeInvalidImage},
		{"empty", []byte{}, 400, ward.CodeInvalidImage},
		{"a layer altered", corrupt, 400, ward.CodeDigestMismatch},
		{"no command", dockerSave(t, nil), 400, ward.CodeNoCommand},
		{"a path out of the root", dockerSave(t, []string{"/task"}, "../escape"), 400, ward.CodeUnsafeLayer},
	}
	for _, tc := range bad {
		e.do("PUT", path, dev, tc.body, "Content-Type", "application/x-tar").wantError(t, tc.status, tc.code, "")
		if last := e.lastAudit(); last["outcome"] != string(tc.code) {
			t.Errorf("%s: audit outcome %v, want %s", tc.name, last["outcome"], tc.code)
		}
	}
	// A module for an oci function, an image for a wasm one.
	e.do("PUT", path, dev, module(t, "echo"), "Content-Type", "application/wasm").wantError(t, http.StatusConflict, ward.CodeRuntimeMismatch, "")
	e.do("PUT", "/v1/projects/alpha/functions/mod", dev, `{}`).wantStatus(t, http.StatusCreated)
	e.do("PUT", "/v1/projects/alpha/functions/mod/code", dev, img.Archive, "Content-Type", "application/x-tar").
		wantError(t, http.StatusConflict, ward.CodeRuntimeMismatch, "")
	// A function with code keeps its runtime; one without code may change it.
	e.do("PUT", "/v1/projects/alpha/functions/box", dev, `{"runtime":"wasm"}`).wantError(t, http.StatusConflict, ward.CodeRuntimeMismatch, "runtime")
	e.do("PUT", "/v1/projects/alpha/functions/mod", dev, `{"runtime":"oci"}`).wantStatus(t, http.StatusOK)
	// Viewers upload nothing; other projects see nothing.
	e.do("PUT", path, e.token(ward.RoleViewer, "alpha"), img.Archive, "Content-Type", "application/x-tar").
		wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	e.do("PUT", "/v1/projects/beta/functions/box/code", e.token(ward.RoleDeveloper, "beta"), img.Archive, "Content-Type", "application/x-tar").
		wantError(t, http.StatusNotFound, ward.CodeNotFound, "")

	var fn ward.Function
	e.do("GET", "/v1/projects/alpha/functions/box", dev, nil).decode(t, &fn)
	if fn.CodeDigest != img.Digest || fn.CodeVersion != 2 || fn.Spec.Runtime != ward.RuntimeOCI {
		t.Errorf("after the rejected uploads: %+v", fn)
	}
}
