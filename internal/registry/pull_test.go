package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/image"
)

func TestPullSinglePlatform(t *testing.T) {
	t.Parallel()
	_, host := serve(t, quietRegistry())
	img := testImage(t, 1, "linux", runtime.GOARCH)
	want := push(t, host, "team/app:v1", img)
	ctx := context.Background()

	archive, digest, err := Pull(ctx, host+"/team/app:v1", testOptions())
	if err != nil {
		t.Fatalf("Pull by tag: %v", err)
	}
	if digest != want {
		t.Fatalf("digest = %s, want %s", digest, want)
	}
	got, err := image.Intake(archive, image.IntakeOptions{})
	if err != nil {
		t.Fatalf("Intake: %v", err)
	}
	if got.Digest != want {
		t.Fatalf("Intake digest = %s, want %s", got.Digest, want)
	}
	if strings.Join(got.Config.Args(), " ") != "/bin/app --serve" {
		t.Fatalf("command = %q", got.Config.Args())
	}

	again, digest2, err := Pull(ctx, host+"/team/app:v1", testOptions())
	if err != nil {
		t.Fatalf("second Pull: %v", err)
	}
	if digest2 != digest || !bytes.Equal(again, archive) {
		t.Fatal("pulling the same image twice gave different archives")
	}

	byDigest, digest3, err := Pull(ctx, host+"/team/app@"+want, testOptions())
	if err != nil {
		t.Fatalf("Pull by digest: %v", err)
	}
	if digest3 != want || !bytes.Equal(byDigest, archive) {
		t.Fatal("pulling by digest gave another archive than by tag")
	}
}

// TestArchiveLayout checks the archive entry by entry against what the
// registry holds.
func TestArchiveLayout(t *testing.T) {
	t.Parallel()
	_, host := serve(t, quietRegistry())
	img := testImage(t, 2, "linux", runtime.GOARCH)
	digest := push(t, host, "layout:v1", img)
	archive, _, err := Pull(context.Background(), host+"/layout:v1", testOptions())
	if err != nil {
		t.Fatal(err)
	}

	rawManifest, _ := img.RawManifest()
	rawConfig, _ := img.RawConfigFile()
	mt, _ := img.MediaType()
	m, _ := img.Manifest()
	wantFiles := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", nil}, // checked below
		{"blobs/sha256/" + strings.TrimPrefix(digest, "sha256:"), rawManifest},
		{"blobs/sha256/" + m.Config.Digest.Hex, rawConfig},
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(rc)
		rc.Close()
		wantFiles = append(wantFiles, struct {
			name string
			data []byte
		}{"blobs/sha256/" + d.Hex, buf.Bytes()})
	}

	entries := readArchive(t, archive)
	if len(entries) != len(wantFiles) {
		t.Fatalf("%d entries, want %d", len(entries), len(wantFiles))
	}
	for i, e := range entries {
		if e.hdr.Name != wantFiles[i].name {
			t.Fatalf("entry %d is %s, want %s", i, e.hdr.Name, wantFiles[i].name)
		}
		if e.hdr.Typeflag != '0' || e.hdr.Mode != 0o644 || e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.ModTime.Unix() != 0 {
			t.Fatalf("entry %s: type %c mode %o uid %d gid %d mtime %v", e.hdr.Name, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid, e.hdr.ModTime)
		}
		if wantFiles[i].data != nil && !bytes.Equal(e.data, wantFiles[i].data) {
			t.Fatalf("entry %s differs from the registry's blob", e.hdr.Name)
		}
	}
	var index struct {
		SchemaVersion int `json:"schemaVersion"`
		Manifests     []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(entries[1].data, &index); err != nil {
		t.Fatal(err)
	}
	if index.SchemaVersion != 2 || len(index.Manifests) != 1 {
		t.Fatalf("index.json = %s", entries[1].data)
	}
	if d := index.Manifests[0]; d.MediaType != string(mt) || d.Digest != digest || d.Size != int64(len(rawManifest)) {
		t.Fatalf("index.json descriptor = %+v, want %s %s %d", d, mt, digest, len(rawManifest))
	}
}

// TestMaxBytes checks the cap is exact and that an image over it is
// refused before any layer is fetched.
func TestMaxBytes(t *testing.T) {
	t.Parallel()
	var reqs requestLog
	_, host := serve(t, reqs.wrap(quietRegistry()))
	img := testImage(t, 3, "linux", runtime.GOARCH)
	push(t, host, "big:v1", img)
	ref := host + "/big:v1"

	archive, _, err := Pull(context.Background(), ref, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.MaxBytes = int64(len(archive))
	if _, _, err := Pull(context.Background(), ref, opts); err != nil {
		t.Fatalf("MaxBytes = the archive's size: %v", err)
	}

	before := reqs.count("/blobs/")
	opts.MaxBytes = int64(len(archive)) - 1
	_, _, err = Pull(context.Background(), ref, opts)
	wantCode(t, err, ward.CodeBodyTooLarge)
	if n := reqs.count("/blobs/") - before; n != 0 {
		t.Fatalf("a pull over the cap fetched %d blobs", n)
	}
}

func TestPullIndex(t *testing.T) {
	t.Parallel()
	_, host := serve(t, quietRegistry())
	platforms := []v1.Platform{
		{OS: "windows", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64"},
		{OS: "linux", Architecture: "amd64"},
		{OS: "unknown", Architecture: "unknown"},
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		platforms = append(platforms, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	}
	imgs, indexDigest := pushIndex(t, host, "multi:v1", platforms)
	digestFor := func(p string) string {
		for _, pi := range imgs {
			if formatPlatform(pi.platform) == p {
				return pi.digest
			}
		}
		t.Fatalf("no test image for %s", p)
		return ""
	}
	ctx := context.Background()
	hostPlatform := "linux/" + runtime.GOARCH

	t.Run("host platform", func(t *testing.T) {
		t.Parallel()
		archive, digest, err := Pull(ctx, host+"/multi:v1", testOptions())
		if err != nil {
			t.Fatal(err)
		}
		if digest != digestFor(hostPlatform) {
			t.Fatalf("digest = %s, want %s's %s", digest, hostPlatform, digestFor(hostPlatform))
		}
		got, err := image.Intake(archive, image.IntakeOptions{})
		if err != nil {
			t.Fatalf("Intake: %v", err)
		}
		if got.Digest != digest {
			t.Fatalf("Intake digest = %s, want %s", got.Digest, digest)
		}
	})
	t.Run("pinned index digest", func(t *testing.T) {
		t.Parallel()
		_, digest, err := Pull(ctx, host+"/multi@"+indexDigest, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		if digest != digestFor(hostPlatform) {
			t.Fatalf("digest = %s, want the platform manifest's %s (index %s)", digest, digestFor(hostPlatform), indexDigest)
		}
	})
	t.Run("linux/arm64", func(t *testing.T) {
		t.Parallel()
		opts := testOptions()
		opts.Platform = "linux/arm64"
		archive, digest, err := Pull(ctx, host+"/multi:v1", opts)
		if err != nil {
			t.Fatal(err)
		}
		if digest != digestFor("linux/arm64") {
			t.Fatalf("digest = %s, want %s", digest, digestFor("linux/arm64"))
		}
		// The config in the archive is the arm64 image's.
		var cfg struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
		}
		if err := json.Unmarshal(readArchive(t, archive)[3].data, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.OS != "linux" || cfg.Architecture != "arm64" {
			t.Fatalf("config platform = %s/%s", cfg.OS, cfg.Architecture)
		}
	})
	t.Run("missing platform", func(t *testing.T) {
		t.Parallel()
		opts := testOptions()
		opts.Platform = "linux/s390x"
		_, _, err := Pull(ctx, host+"/multi:v1", opts)
		we := wantCode(t, err, ward.CodeInvalidImage)
		for _, s := range []string{"linux/s390x", "linux/amd64", "linux/arm64", "windows/amd64"} {
			if !strings.Contains(we.Message, s) {
				t.Errorf("message %q does not name %s", we.Message, s)
			}
		}
		if strings.Contains(we.Message, "unknown") {
			t.Errorf("message %q lists the attestation platform", we.Message)
		}
	})
}

func TestPullNestedIndex(t *testing.T) {
	t.Parallel()
	host := func(t *testing.T, h func(http.Handler) http.Handler) string {
		_, host := serve(t, h(quietRegistry()))
		return host
	}
	img := testImage(t, 15, "linux", runtime.GOARCH)
	want, _ := img.Digest()
	inner := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}})
	outer := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: inner})
	pushOuter := func(t *testing.T, host string) {
		ref, err := name.ParseReference(host+"/nested:v1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(ref, outer); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("followed", func(t *testing.T) {
		t.Parallel()
		h := host(t, func(h http.Handler) http.Handler { return h })
		pushOuter(t, h)
		_, digest, err := Pull(context.Background(), h+"/nested:v1", testOptions())
		if err != nil {
			t.Fatal(err)
		}
		if digest != want.String() {
			t.Fatalf("digest = %s, want %s", digest, want)
		}
	})
	t.Run("platform manifest replaced", func(t *testing.T) {
		t.Parallel()
		other, _ := testImage(t, 16, "linux", runtime.GOARCH).RawManifest()
		h := host(t, func(h http.Handler) http.Handler {
			return rewrite(h, "/manifests/"+want.String(), func([]byte) []byte { return other }, withLength)
		})
		pushOuter(t, h)
		_, _, err := Pull(context.Background(), h+"/nested:v1", testOptions())
		wantCode(t, err, ward.CodeDigestMismatch)
	})
	t.Run("platform manifest missing", func(t *testing.T) {
		t.Parallel()
		h := host(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+want.String()) {
					http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"gone"}]}`, http.StatusNotFound)
					return
				}
				h.ServeHTTP(w, r)
			})
		})
		pushOuter(t, h)
		_, _, err := Pull(context.Background(), h+"/nested:v1", testOptions())
		wantCode(t, err, ward.CodeNotFound)
	})
}

func TestPullMissingLayer(t *testing.T) {
	t.Parallel()
	img := testImage(t, 17, "linux", runtime.GOARCH)
	layer, _ := firstLayer(t, img)
	reg := quietRegistry()
	_, host := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+layer) {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"gone"}]}`, http.StatusNotFound)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	push(t, host, "app:v1", img)
	_, _, err := Pull(context.Background(), host+"/app:v1", testOptions())
	we := wantCode(t, err, ward.CodeNotFound)
	if !strings.Contains(we.Message, "layer 1") {
		t.Fatalf("message = %q", we.Message)
	}
}

func TestPullWrongPlatformImage(t *testing.T) {
	t.Parallel()
	_, host := serve(t, quietRegistry())
	push(t, host, "win:v1", testImage(t, 4, "windows", "amd64"))
	_, _, err := Pull(context.Background(), host+"/win:v1", testOptions())
	we := wantCode(t, err, ward.CodeInvalidImage)
	if !strings.Contains(we.Message, "windows/amd64") {
		t.Fatalf("message %q does not name the image's platform", we.Message)
	}
}

func TestPullNotAnImage(t *testing.T) {
	t.Parallel()
	_, host := serve(t, quietRegistry())
	img := mutate.ConfigMediaType(testImage(t, 5, "linux", runtime.GOARCH), types.MediaType("application/vnd.example.chart.config.v1+json"))
	push(t, host, "chart:v1", img)
	_, _, err := Pull(context.Background(), host+"/chart:v1", testOptions())
	we := wantCode(t, err, ward.CodeInvalidImage)
	if !strings.Contains(we.Message, "not a container image") {
		t.Fatalf("message = %q", we.Message)
	}
}

func TestPullErrors(t *testing.T) {
	t.Parallel()
	_, host := serve(t, quietRegistry())
	img := testImage(t, 6, "linux", runtime.GOARCH)
	push(t, host, "app:v1", img)
	ctx := context.Background()

	tests := []struct {
		name     string
		ref      string
		platform string
		code     ward.Code
	}{
		{"unknown tag", host + "/app:v2", "", ward.CodeNotFound},
		{"unknown repository", host + "/nothing:v1", "", ward.CodeNotFound},
		{"unknown digest", host + "/app@sha256:" + strings.Repeat("ab", 32), "", ward.CodeNotFound},
		{"empty reference", "", "", ward.CodeInvalidArgument},
		{"upper case repository", host + "/App:v1", "", ward.CodeInvalidArgument},
		{"bad tag", host + "/app:v 1", "", ward.CodeInvalidArgument},
		{"short digest", host + "/app@sha256:abcd", "", ward.CodeInvalidArgument},
		{"not sha256", host + "/app@md5:" + strings.Repeat("ab", 16), "", ward.CodeInvalidArgument},
		{"platform without arch", host + "/app:v1", "linux", ward.CodeInvalidArgument},
		{"platform upper case", host + "/app:v1", "Linux/amd64", ward.CodeInvalidArgument},
		{"platform four parts", host + "/app:v1", "linux/arm/v7/x", ward.CodeInvalidArgument},
		{"platform empty part", host + "/app:v1", "linux//v7", ward.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions()
			opts.Platform = tt.platform
			_, _, err := Pull(ctx, tt.ref, opts)
			wantCode(t, err, tt.code)
		})
	}
}

func TestMalformedRefMessageHidesInput(t *testing.T) {
	t.Parallel()
	for _, ref := range []string{"user:hunter2secret@registry.example/app:v1", "https://user:hunter2secret@registry.example/app"} {
		_, _, err := Pull(context.Background(), ref, testOptions())
		we := wantCode(t, err, ward.CodeInvalidArgument)
		if strings.Contains(we.Message, "hunter2") {
			t.Fatalf("message %q repeats the reference", we.Message)
		}
	}
}

func TestPullDigestMismatch(t *testing.T) {
	t.Parallel()
	img := testImage(t, 7, "linux", runtime.GOARCH)
	layer, _ := firstLayer(t, img)
	m, _ := img.Manifest()
	config := m.Config.Digest.String()
	flip := func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }
	cut := func(b []byte) []byte { return b[:len(b)-10] }
	grow := func(b []byte) []byte { return append(b, "extra"...) }
	other := testImage(t, 8, "linux", runtime.GOARCH)
	otherManifest, _ := other.RawManifest()
	imgDigest, _ := img.Digest()

	tests := []struct {
		name    string
		suffix  string
		change  func([]byte) []byte
		framing framing
		byDig   bool
		msg     string
	}{
		{"layer byte flipped", "/blobs/" + layer, flip, withLength, false, "does not match its digest"},
		{"layer byte flipped, chunked", "/blobs/" + layer, flip, chunked, false, "does not match its digest"},
		// Held open, the blob never ends, so the registry client's own
		// check (at the end) never runs: Pull's check must catch the flip.
		{"layer byte flipped, held open", "/blobs/" + layer, flip, chunkedHeld, false, "does not match its digest"},
		{"config byte flipped", "/blobs/" + config, flip, withLength, false, "does not match its digest"},
		{"layer cut short", "/blobs/" + layer, cut, withLength, false, "bytes long"},
		{"layer cut short, chunked", "/blobs/" + layer, cut, chunked, false, "bytes long"},
		{"layer too long", "/blobs/" + layer, grow, withLength, false, "longer than"},
		{"layer too long, held open", "/blobs/" + layer, grow, chunkedHeld, false, "longer than"},
		{"manifest by digest replaced", "/manifests/" + imgDigest.String(), func([]byte) []byte { return bytes.Clone(otherManifest) }, withLength, true, "manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := quietRegistry()
			_, host := serve(t, rewrite(reg, tt.suffix, tt.change, tt.framing))
			digest := push(t, host, "app:v1", img)
			ref := host + "/app:v1"
			if tt.byDig {
				ref = host + "/app@" + digest
			}
			// A bound, so a check that misses the flip in a held-open
			// blob fails rather than hangs.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, _, err := Pull(ctx, ref, testOptions())
			we := wantCode(t, err, ward.CodeDigestMismatch)
			if !strings.Contains(we.Message, tt.msg) {
				t.Fatalf("message %q does not say %q", we.Message, tt.msg)
			}
		})
	}
}

func TestPullAuth(t *testing.T) {
	t.Parallel()
	img := testImage(t, 9, "linux", runtime.GOARCH)
	const user, password = "deployer", "s3cret-pa55word"
	basic := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	_, host := serve(t, basic(quietRegistry()))
	want := push(t, host, "private:v1", img, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
	ctx := context.Background()

	t.Run("right credentials", func(t *testing.T) {
		t.Parallel()
		opts := testOptions()
		opts.Keychain = staticKeychain{auth: &authn.Basic{Username: user, Password: password}}
		_, digest, err := Pull(ctx, host+"/private:v1", opts)
		if err != nil {
			t.Fatal(err)
		}
		if digest != want {
			t.Fatalf("digest = %s, want %s", digest, want)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		t.Parallel()
		_, _, err := Pull(ctx, host+"/private:v1", testOptions())
		we := wantCode(t, err, ward.CodeUnauthenticated)
		if !strings.Contains(we.Message, "docker login "+host) {
			t.Fatalf("message %q has no login hint", we.Message)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		opts := testOptions()
		opts.Keychain = staticKeychain{auth: &authn.Basic{Username: user, Password: "wrong-hunter2"}}
		_, _, err := Pull(ctx, host+"/private:v1", opts)
		we := wantCode(t, err, ward.CodeUnauthenticated)
		if strings.Contains(we.Message, "hunter2") || strings.Contains(we.Message, user) {
			t.Fatalf("message %q shows the credentials", we.Message)
		}
	})
	t.Run("keychain fails", func(t *testing.T) {
		t.Parallel()
		opts := testOptions()
		opts.Keychain = staticKeychain{err: errors.New("helper printed token hunter2")}
		_, _, err := Pull(ctx, host+"/private:v1", opts)
		we := wantCode(t, err, ward.CodeUnauthenticated)
		if strings.Contains(we.Message, "hunter2") {
			t.Fatalf("message %q repeats the keychain's error", we.Message)
		}
	})
}

// TestPullBearerToken runs the token flow: the registry asks for a bearer
// token, which a token endpoint hands out for the right credentials only.
func TestPullBearerToken(t *testing.T) {
	t.Parallel()
	const user, password, token = "robot", "tok-pa55", "granted-token"
	reg := quietRegistry()
	var realm string
	_, host := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"token":"` + token + `"}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	realm = "http://" + host + "/token"
	creds := &authn.Basic{Username: user, Password: password}
	want := push(t, host, "tokened:v1", testImage(t, 14, "linux", runtime.GOARCH), remote.WithAuth(creds))

	opts := testOptions()
	opts.Keychain = staticKeychain{auth: creds}
	_, digest, err := Pull(context.Background(), host+"/tokened:v1", opts)
	if err != nil {
		t.Fatal(err)
	}
	if digest != want {
		t.Fatalf("digest = %s, want %s", digest, want)
	}

	opts.Keychain = staticKeychain{auth: &authn.Basic{Username: user, Password: "hunter2-wrong"}}
	_, _, err = Pull(context.Background(), host+"/tokened:v1", opts)
	we := wantCode(t, err, ward.CodeUnauthenticated)
	if strings.Contains(we.Message, "hunter2") {
		t.Fatalf("message %q shows the credentials", we.Message)
	}
}

// TestDefaultKeychain pulls with credentials from a docker config, as
// `docker login` writes it. It sets DOCKER_CONFIG, so it is not parallel.
func TestDefaultKeychain(t *testing.T) {
	const user, password = "ci", "from-docker-config"
	reg := quietRegistry()
	_, host := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	img := testImage(t, 10, "linux", runtime.GOARCH)
	want := push(t, host, "ci:v1", img, remote.WithAuth(&authn.Basic{Username: user, Password: password}))

	dir := t.TempDir()
	config := `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+password)) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	_, digest, err := Pull(context.Background(), host+"/ci:v1", Options{Insecure: true})
	if err != nil {
		t.Fatalf("Pull with the default keychain: %v", err)
	}
	if digest != want {
		t.Fatalf("digest = %s, want %s", digest, want)
	}

	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Pull(context.Background(), host+"/ci:v1", Options{Insecure: true})
	wantCode(t, err, ward.CodeUnauthenticated)
}

func TestPullStatusCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		code   ward.Code
	}{
		{http.StatusUnauthorized, "", ward.CodeUnauthenticated},
		{http.StatusForbidden, `{"errors":[{"code":"DENIED","message":"no"}]}`, ward.CodeUnauthenticated},
		{http.StatusNotImplemented, "", ward.CodeUnavailable},
		{http.StatusBadRequest, `{"errors":[{"code":"NAME_INVALID","message":"bad name"}]}`, ward.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel()
			_, host := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					w.WriteHeader(http.StatusOK)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			_, _, err := Pull(context.Background(), host+"/app:v1", testOptions())
			wantCode(t, err, tt.code)
		})
	}
}

// TestUnauthorizedEverywhere answers 401 to every request, the ping too.
func TestUnauthorizedEverywhere(t *testing.T) {
	t.Parallel()
	_, host := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	_, _, err := Pull(context.Background(), host+"/app:v1", testOptions())
	we := wantCode(t, err, ward.CodeUnauthenticated)
	if !strings.Contains(we.Message, "docker login") {
		t.Fatalf("message %q has no login hint", we.Message)
	}
}

// TestDockerHubLoginHint checks the hint for Docker Hub names plain
// `docker login`. The registry name is routed to a local TLS server.
func TestDockerHubLoginHint(t *testing.T) {
	t.Parallel()
	srv := httptestTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="hub"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	opts := Options{Keychain: anonymous, Transport: dialTo(srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true})}
	_, _, err := Pull(context.Background(), "someone/private", opts)
	we := wantCode(t, err, ward.CodeUnauthenticated)
	if !strings.Contains(we.Message, "`docker login`") || !strings.Contains(we.Message, "index.docker.io/someone/private") {
		t.Fatalf("message = %q", we.Message)
	}
}

func TestPullTransportErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("closed server", func(t *testing.T) {
		t.Parallel()
		srv, host := serve(t, quietRegistry())
		srv.Close()
		_, _, err := Pull(ctx, host+"/app:v1", testOptions())
		we := wantCode(t, err, ward.CodeUnavailable)
		if !strings.Contains(we.Message, "refused") {
			t.Fatalf("message = %q", we.Message)
		}
	})
	t.Run("plain HTTP without insecure", func(t *testing.T) {
		t.Parallel()
		reg := quietRegistry()
		srv, host := serve(t, reg)
		push(t, host, "app:v1", testImage(t, 11, "linux", runtime.GOARCH))
		opts := Options{Keychain: anonymous, Transport: dialTo(srv.Listener.Addr().String(), nil)}
		_, _, err := Pull(ctx, "registry.example/app:v1", opts)
		we := wantCode(t, err, ward.CodeUnavailable)
		if !strings.Contains(we.Message, "insecure") {
			t.Fatalf("message %q has no hint", we.Message)
		}
		// With Insecure, the same registry name works over plain HTTP.
		opts.Insecure = true
		if _, _, err := Pull(ctx, "registry.example/app:v1", opts); err != nil {
			t.Fatalf("insecure pull: %v", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		srv := httptestTLS(t, quietRegistry())
		opts := Options{Keychain: anonymous, Transport: dialTo(srv.Listener.Addr().String(), nil)}
		_, _, err := Pull(ctx, "registry.example/app:v1", opts)
		we := wantCode(t, err, ward.CodeUnavailable)
		if !strings.Contains(we.Message, "certificate") {
			t.Fatalf("message = %q", we.Message)
		}
	})
	t.Run("connection cut in a layer", func(t *testing.T) {
		t.Parallel()
		img := testImage(t, 12, "linux", runtime.GOARCH)
		layer, _ := firstLayer(t, img)
		_, host := serve(t, cutBody(quietRegistry(), "/blobs/"+layer))
		push(t, host, "app:v1", img)
		_, _, err := Pull(ctx, host+"/app:v1", testOptions())
		wantCode(t, err, ward.CodeUnavailable)
	})
}

func TestPullCancelled(t *testing.T) {
	t.Parallel()
	t.Run("before", func(t *testing.T) {
		t.Parallel()
		_, host := serve(t, quietRegistry())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _, err := Pull(ctx, host+"/app:v1", testOptions())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	})
	t.Run("during a layer", func(t *testing.T) {
		t.Parallel()
		img := testImage(t, 13, "linux", runtime.GOARCH)
		layer, _ := firstLayer(t, img)
		reg := quietRegistry()
		started := make(chan struct{})
		var once sync.Once
		_, host := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+layer) {
				once.Do(func() { close(started) })
				<-r.Context().Done() // hold the layer until the client goes away
				return
			}
			reg.ServeHTTP(w, r)
		}))
		push(t, host, "app:v1", img)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-started
			cancel()
		}()
		_, _, err := Pull(ctx, host+"/app:v1", testOptions())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		_, host := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, _, err := Pull(ctx, host+"/app:v1", testOptions())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want context.DeadlineExceeded", err)
		}
	})
}
