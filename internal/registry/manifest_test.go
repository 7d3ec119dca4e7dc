package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/image"
)

// hashOf returns a sha256 v1.Hash whose hex repeats b.
func hashOf(b byte) string { return "sha256:" + strings.Repeat(fmt.Sprintf("%02x", b), 32) }

// desc is a descriptor as JSON.
type desc map[string]any

func layerDesc(b byte, size int64) desc {
	return desc{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": hashOf(b), "size": size}
}

// manifestJSON returns an OCI manifest with a config of 100 bytes.
func manifestJSON(t testing.TB, layers ...desc) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"config":        desc{"mediaType": types.OCIConfigJSON, "digest": hashOf(0xcc), "size": 100},
		"layers":        layers,
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePlatform(t *testing.T) {
	t.Parallel()
	good := map[string]v1.Platform{
		"":              {OS: "linux", Architecture: runtime.GOARCH},
		"linux/arm64":   {OS: "linux", Architecture: "arm64"},
		"linux/arm/v7":  {OS: "linux", Architecture: "arm", Variant: "v7"},
		"windows/amd64": {OS: "windows", Architecture: "amd64"},
	}
	for s, want := range good {
		got, err := parsePlatform(s)
		if err != nil || got.OS != want.OS || got.Architecture != want.Architecture || got.Variant != want.Variant {
			t.Errorf("parsePlatform(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"linux", "/", "linux/", "/amd64", "linux/arm/", "linux/arm/v7/x", "Linux/amd64",
		"linux/amd 64", "linux/" + strings.Repeat("a", 33), "linux\\amd64"} {
		_, err := parsePlatform(s)
		wantCode(t, err, ward.CodeInvalidArgument)
	}
}

func TestMediaTypeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, hint string
		want            types.MediaType
		code            ward.Code
	}{
		{"own field wins", `{"schemaVersion":2,"mediaType":"` + string(types.DockerManifestSchema2) + `"}`, string(types.OCIImageIndex), types.DockerManifestSchema2, ""},
		{"hint with parameters", `{"schemaVersion":2}`, string(types.OCIManifestSchema1) + "; charset=utf-8", types.OCIManifestSchema1, ""},
		{"docker list hint", `{"schemaVersion":2,"manifests":[]}`, string(types.DockerManifestList), types.DockerManifestList, ""},
		{"index by shape", `{"schemaVersion":2,"manifests":[]}`, "application/json", types.OCIImageIndex, ""},
		{"manifest by shape", `{"schemaVersion":2,"config":{}}`, "", types.OCIManifestSchema1, ""},
		{"schema 1", `{"schemaVersion":1,"fsLayers":[]}`, "", "", ward.CodeInvalidImage},
		{"signed schema 1", `{"schemaVersion":1}`, string(types.DockerManifestSchema1Signed), "", ward.CodeInvalidImage},
		{"artifact", `{"schemaVersion":2,"mediaType":"application/vnd.example.thing"}`, "", "", ward.CodeInvalidImage},
		{"not JSON", `{"schemaVersion":`, string(types.OCIManifestSchema1), "", ward.CodeInvalidImage},
		{"too large", `{"schemaVersion":2,"x":"` + strings.Repeat("a", image.MaxJSON) + `"}`, string(types.OCIManifestSchema1), "", ward.CodeInvalidImage},
	}
	for _, tt := range tests {
		got, err := mediaTypeOf([]byte(tt.raw), tt.hint, "reg.example/app:v1")
		if tt.code != "" {
			wantCode(t, err, tt.code)
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: mediaTypeOf = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestChooseManifest(t *testing.T) {
	t.Parallel()
	entry := func(b byte, p *v1.Platform) desc {
		d := desc{"mediaType": types.OCIManifestSchema1, "digest": hashOf(b), "size": 500}
		if p != nil {
			d["platform"] = p
		}
		return d
	}
	index := func(entries ...desc) []byte {
		return mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": types.OCIImageIndex, "manifests": entries})
	}
	arm6 := &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}
	arm7 := &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	amd := &v1.Platform{OS: "linux", Architecture: "amd64"}
	win := &v1.Platform{OS: "windows", Architecture: "amd64"}
	att := &v1.Platform{OS: "unknown", Architecture: "unknown"}

	choose := func(raw []byte, plat string) (v1.Descriptor, error) {
		p, err := parsePlatform(plat)
		if err != nil {
			t.Fatal(err)
		}
		return chooseManifest(raw, p, "reg.example/app:v1")
	}
	wantPick := func(raw []byte, plat string, b byte) {
		t.Helper()
		d, err := choose(raw, plat)
		if err != nil {
			t.Fatalf("%s: %v", plat, err)
		}
		if d.Digest.String() != hashOf(b) {
			t.Fatalf("%s: chose %s, want %s", plat, d.Digest, hashOf(b))
		}
	}

	all := index(entry(1, win), entry(2, arm6), entry(3, arm7), entry(4, amd), entry(5, att))
	wantPick(all, "linux/amd64", 4)
	wantPick(all, "linux/arm", 2)
	wantPick(all, "linux/arm/v7", 3)
	wantPick(all, "windows/amd64", 1)
	wantPick(index(entry(9, nil)), "linux/s390x", 9)

	_, err := choose(all, "linux/arm/v8")
	we := wantCode(t, err, ward.CodeInvalidImage)
	if !strings.HasSuffix(we.Message, "it has linux/amd64, linux/arm/v6, linux/arm/v7, windows/amd64") {
		t.Fatalf("message = %q", we.Message)
	}

	_, err = choose(index(entry(1, nil), entry(2, nil)), "linux/amd64")
	we = wantCode(t, err, ward.CodeInvalidImage)
	if !strings.Contains(we.Message, "names no platforms") {
		t.Fatalf("message = %q", we.Message)
	}

	var many []desc
	for i := range 20 {
		many = append(many, entry(byte(i), &v1.Platform{OS: "linux", Architecture: fmt.Sprintf("arch%02d", i)}))
	}
	_, err = choose(index(many...), "linux/amd64")
	we = wantCode(t, err, ward.CodeInvalidImage)
	if !strings.Contains(we.Message, "and 4 more") || strings.Contains(we.Message, "arch16") {
		t.Fatalf("message = %q", we.Message)
	}

	_, err = choose(index(entry(1, &v1.Platform{OS: "linux\n", Architecture: "amd64\"x"})), "linux/amd64")
	we = wantCode(t, err, ward.CodeInvalidImage)
	if strings.Contains(we.Message, "\n") {
		t.Fatalf("message %q holds a raw newline from the registry", we.Message)
	}

	sha512 := index(desc{"mediaType": types.OCIManifestSchema1, "digest": "sha512:" + strings.Repeat("ab", 64), "size": 10, "platform": amd})
	_, err = choose(sha512, "linux/amd64")
	wantCode(t, err, ward.CodeInvalidImage)

	for _, raw := range []string{`[]`, `{"schemaVersion":1,"manifests":[]}`, `{"schemaVersion":2,"manifests":[]}`,
		`{"schemaVersion":2,"manifests":[{"digest":"sha256:zz"}]}`} {
		_, err := choose([]byte(raw), "linux/amd64")
		wantCode(t, err, ward.CodeInvalidImage)
	}
}

func TestPlanImage(t *testing.T) {
	t.Parallel()
	raw := manifestJSON(t, layerDesc(1, 1000), layerDesc(2, 0), layerDesc(1, 1000), layerDesc(3, 513))
	pl, err := planImage(raw, types.OCIManifestSchema1, "reg.example/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if pl.digest.String() != ward.Digest(raw) {
		t.Fatalf("digest = %s, want %s", pl.digest, ward.Digest(raw))
	}
	var got []string
	for _, b := range pl.blobs {
		got = append(got, b.what+"="+b.desc.Digest.Hex[:2])
	}
	if want := "the config=cc layer 1=01 layer 2=02 layer 4=03"; strings.Join(got, " ") != want {
		t.Fatalf("blobs = %s, want %s", strings.Join(got, " "), want)
	}

	// archiveSize is the size of the archive the layout writer makes.
	w := newLayoutWriter(0)
	if err := w.file("oci-layout", []byte(ociLayout)); err != nil {
		t.Fatal(err)
	}
	if err := w.file("index.json", pl.indexJSON); err != nil {
		t.Fatal(err)
	}
	if err := w.file(blobPath(pl.digest), raw); err != nil {
		t.Fatal(err)
	}
	for _, b := range pl.blobs {
		if err := w.file(blobPath(b.desc.Digest), make([]byte, b.desc.Size)); err != nil {
			t.Fatal(err)
		}
	}
	archive, err := w.close()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(archive)) != pl.archiveSize {
		t.Fatalf("archive is %d bytes, planned %d", len(archive), pl.archiveSize)
	}

	bad := map[string][]byte{
		"no layers": manifestJSON(t),
		"foreign layer": manifestJSON(t, desc{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
			"digest": hashOf(1), "size": 10, "urls": []string{"https://elsewhere.example/blob"}}),
		"sha512 layer":    manifestJSON(t, desc{"mediaType": "x", "digest": "sha512:" + strings.Repeat("ab", 64), "size": 10}),
		"negative size":   manifestJSON(t, layerDesc(1, -1)),
		"sizes disagree":  manifestJSON(t, layerDesc(1, 10), layerDesc(1, 11)),
		"layer is config": manifestJSON(t, layerDesc(0xcc, 101)),
		"schema 1":        []byte(`{"schemaVersion":1,"config":{"mediaType":"` + string(types.OCIConfigJSON) + `","digest":"` + hashOf(1) + `","size":1},"layers":[]}`),
		"artifact config": mustJSON(t, map[string]any{"schemaVersion": 2, "config": desc{"mediaType": "application/vnd.example", "digest": hashOf(1), "size": 1},
			"layers": []desc{layerDesc(2, 1)}}),
		"config too large": mustJSON(t, map[string]any{"schemaVersion": 2, "config": desc{"mediaType": types.OCIConfigJSON, "digest": hashOf(1), "size": image.MaxJSON + 1},
			"layers": []desc{layerDesc(2, 1)}}),
		"bad digest": []byte(`{"schemaVersion":2,"config":{"mediaType":"` + string(types.OCIConfigJSON) + `","digest":"sha256:xyz","size":1},"layers":[]}`),
	}
	var layers []desc
	for i := range image.MaxLayers + 1 {
		layers = append(layers, layerDesc(byte(i), 1))
	}
	bad["too many layers"] = manifestJSON(t, layers...)
	for name, raw := range bad {
		_, err := planImage(raw, types.OCIManifestSchema1, "reg.example/app:v1")
		var we *ward.Error
		if !errors.As(err, &we) || we.Code != ward.CodeInvalidImage {
			t.Errorf("%s: error = %v, want invalid_image", name, err)
		}
	}
}

func TestEntrySize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]int64{0: 512, 1: 1024, 512: 1024, 513: 1536} {
		if got := entrySize(n); got != want {
			t.Errorf("entrySize(%d) = %d, want %d", n, got, want)
		}
	}
	if entrySize(1<<63-1) != 1<<63-1 || addSat(1<<62, 1<<62) != 1<<63-1 {
		t.Error("sizes do not saturate")
	}
}

func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"", "linux/amd64", "linux/arm/v7", "a/b/c/d", "//", "linux/", "LINUX/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePlatform(s)
		if err != nil {
			if ward.CodeOf(err) != ward.CodeInvalidArgument {
				t.Fatalf("code = %s", ward.CodeOf(err))
			}
			return
		}
		if s != "" && formatPlatform(p) != s {
			t.Fatalf("parsePlatform(%q) formats back as %q", s, formatPlatform(p))
		}
		if !platformPart(p.OS) || !platformPart(p.Architecture) {
			t.Fatalf("parsePlatform(%q) = %+v", s, p)
		}
	})
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"alpine", "reg.example:5000/team/app:v1", "reg.example/app@sha256:" + strings.Repeat("ab", 32),
		"user:pw@reg.example/app", "", "UPPER/case", "a/b@sha512:00"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, insecure bool) {
		r, err := parseRef(s, insecure)
		if err != nil {
			we := wantCode(t, err, ward.CodeInvalidArgument)
			if len(s) >= 12 && strings.Contains(we.Message, s) {
				t.Fatalf("message %q repeats the reference", we.Message)
			}
			return
		}
		if strings.Contains(r.Context().RegistryStr(), "@") {
			t.Fatalf("registry %q holds userinfo", r.Context().RegistryStr())
		}
	})
}

func FuzzManifest(f *testing.F) {
	f.Add(manifestJSON(f, layerDesc(1, 10), layerDesc(2, 20)), string(types.OCIManifestSchema1))
	f.Add(manifestJSON(f, layerDesc(1, 10), layerDesc(1, 10)), "")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`), string(types.OCIImageIndex))
	f.Add([]byte(`{"schemaVersion":1}`), "")
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:`+strings.Repeat("0", 64)+`","size":-5}}`), string(types.DockerManifestSchema2))
	f.Fuzz(func(t *testing.T, raw []byte, hint string) {
		mt, err := mediaTypeOf(raw, hint, "reg.example/app:v1")
		if err != nil {
			wantCode(t, err, ward.CodeInvalidImage)
			return
		}
		if mt.IsIndex() {
			_, err := chooseManifest(raw, defaultPlatform(), "reg.example/app:v1")
			if err != nil {
				wantCode(t, err, ward.CodeInvalidImage)
			}
			return
		}
		pl, err := planImage(raw, mt, "reg.example/app:v1")
		if err != nil {
			wantCode(t, err, ward.CodeInvalidImage)
			return
		}
		seen := map[v1.Hash]bool{pl.digest: true}
		total := entrySize(int64(len(raw)))
		for _, b := range pl.blobs {
			if b.desc.Digest.Algorithm != "sha256" || b.desc.Size < 0 || seen[b.desc.Digest] {
				t.Fatalf("planned blob %+v", b.desc)
			}
			seen[b.desc.Digest] = true
			total = addSat(total, entrySize(b.desc.Size))
		}
		if pl.archiveSize < total {
			t.Fatalf("archive size %d under its blobs' %d", pl.archiveSize, total)
		}
		var idx indexFile
		if err := json.Unmarshal(pl.indexJSON, &idx); err != nil || len(idx.Manifests) != 1 ||
			idx.Manifests[0].Digest != ward.Digest(raw) || idx.Manifests[0].MediaType != mt {
			t.Fatalf("index.json = %s", pl.indexJSON)
		}
	})
}

func FuzzChooseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"`+string(types.OCIManifestSchema1)+`","digest":"`+hashOf(1)+`","size":3,"platform":{"os":"linux","architecture":"`+runtime.GOARCH+`"}}]}`), "")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"`+hashOf(1)+`","size":3}]}`), "linux/arm/v7")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"`+hashOf(1)+`","size":3,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}`), "linux/arm")
	f.Fuzz(func(t *testing.T, raw []byte, plat string) {
		want, err := parsePlatform(plat)
		if err != nil {
			return
		}
		d, err := chooseManifest(raw, want, "reg.example/app:v1")
		if err != nil {
			wantCode(t, err, ward.CodeInvalidImage)
			return
		}
		if d.Digest.Algorithm != "sha256" || d.Size < 0 || d.Size > image.MaxJSON || len(d.URLs) > 0 {
			t.Fatalf("chose %+v", d)
		}
		if d.Platform != nil && !platformMatches(*d.Platform, want) {
			t.Fatalf("chose %+v for %+v", d.Platform, want)
		}
		if d.Platform == nil {
			if idx, _ := v1.ParseIndexManifest(strings.NewReader(string(raw))); len(idx.Manifests) != 1 {
				t.Fatalf("chose an entry without a platform among %d", len(idx.Manifests))
			}
		}
	})
}
