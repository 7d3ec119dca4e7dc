package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

// motdLayer is a second small layer.
func motdLayer(t testing.TB) []byte {
	return tarOf(t, file("etc/motd", "hello"))
}

// readCanonical reads a canonical archive's entries in order.
func readCanonical(t *testing.T, archive []byte) ([]*tar.Header, map[string][]byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	var hdrs []*tar.Header
	files := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("canonical archive: %v", err)
		}
		hdrs = append(hdrs, hdr)
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[hdr.Name] = b
		}
	}
	return hdrs, files
}

// checkCanonical checks that img.Archive is a canonical archive of exactly
// one image, img.Digest, and returns that image's manifest.
func checkCanonical(t *testing.T, img *Image) manifestJSON {
	t.Helper()
	hdrs, files := readCanonical(t, img.Archive)
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
		if h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("entry %s: mtime %v owner %d:%d %q:%q, want epoch and 0:0 unnamed", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if want := map[byte]int64{tar.TypeReg: 0o644, tar.TypeDir: 0o755}[h.Typeflag]; h.Mode != want {
			t.Errorf("entry %s: type %c mode %o", h.Name, h.Typeflag, h.Mode)
		}
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("entries are not sorted: %q", names)
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", files["oci-layout"])
	}
	var idx indexJSON
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != img.Digest {
		t.Fatalf("index.json lists %+v, want one manifest %s", idx.Manifests, img.Digest)
	}
	if p := idx.Manifests[0].Platform; p == nil || p.OS != "linux" || p.Architecture != runtime.GOARCH {
		t.Errorf("index platform = %+v", p)
	}
	want := map[string]bool{"blobs/": true, "blobs/sha256/": true, "index.json": true, "oci-layout": true}
	blob := func(d string) []byte {
		name := "blobs/sha256/" + hexOf(d)
		want[name] = true
		b, ok := files[name]
		if !ok {
			t.Fatalf("blob %s is missing", d)
		}
		if ward.Digest(b) != d {
			t.Fatalf("blob %s does not match its name", d)
		}
		return b
	}
	var m manifestJSON
	if err := json.Unmarshal(blob(img.Digest), &m); err != nil {
		t.Fatal(err)
	}
	blob(m.Config.Digest)
	for _, l := range m.Layers {
		blob(l.Digest)
	}
	for _, n := range names {
		if !want[n] {
			t.Errorf("unexpected entry %s", n)
		}
		delete(want, n)
	}
	if len(want) > 0 {
		t.Errorf("missing entries %v", want)
	}
	return m
}

// readTree reads the files of an unpacked root filesystem: path → content
// for files, "-> target" for symlinks, "/" for directories.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + l
		case fi.IsDir():
			out[rel] = "/"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIntakeAccepts(t *testing.T) {
	t.Parallel()
	twoLayers := func(t testing.TB) [][]byte { return [][]byte{basicLayer(t), motdLayer(t)} }
	cases := []struct {
		name    string
		archive func(t *testing.T) ([]byte, string) // the archive and the digest Intake must keep ("" if synthesized)
		docker  bool
	}{
		{"oci gzip layers", func(t *testing.T) ([]byte, string) {
			return ociImage{layers: twoLayers(t), gzip: true}.archive(t)
		}, false},
		{"oci plain layers", func(t *testing.T) ([]byte, string) {
			return ociImage{layers: twoLayers(t)}.archive(t)
		}, false},
		{"oci docker media types", func(t *testing.T) ([]byte, string) {
			return ociImage{layers: twoLayers(t), gzip: true, layerType: mtDockerLayer, editMan: func(m *manifestJSON) {
				m.MediaType = ""
				m.Config.MediaType = mtDockerConfig
			}}.archive(t)
		}, false},
		{"oci layout written by tar with ./ names", func(t *testing.T) ([]byte, string) {
			files, d := ociImage{layers: twoLayers(t), gzip: true}.files(t)
			es := []ent{dir("./"), dir("./blobs/"), dir("./blobs/sha256/")}
			for _, n := range sortedKeys(files) {
				es = append(es, file("./"+n, string(files[n])))
			}
			return tarOf(t, es...), d
		}, false},
		{"oci multi-platform index", func(t *testing.T) ([]byte, string) {
			files := map[string][]byte{}
			other := ociImage{layers: [][]byte{motdLayer(t)}, arch: otherArch(), platform: true}.manifestOf(t, files)
			ours := ociImage{layers: twoLayers(t), gzip: true, platform: true}.manifestOf(t, files)
			attestation := descriptor{MediaType: mtOCIManifest, Digest: ward.Digest([]byte("absent")), Size: 6,
				Platform: &platform{Architecture: "unknown", OS: "unknown"}}
			return archiveOf(t, layoutFiles(t, files, other, attestation, ours)), ours.Digest
		}, false},
		{"oci nested index", func(t *testing.T) ([]byte, string) {
			files := map[string][]byte{}
			other := ociImage{layers: [][]byte{motdLayer(t)}, arch: otherArch(), platform: true}.manifestOf(t, files)
			ours := ociImage{layers: twoLayers(t), gzip: true, platform: true}.manifestOf(t, files)
			inner := mustJSON(t, indexJSON{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: []descriptor{other, ours}})
			files["blobs/sha256/"+hexOf(ward.Digest(inner))] = inner
			top := descriptor{MediaType: mtOCIIndex, Digest: ward.Digest(inner), Size: int64(len(inner))}
			return archiveOf(t, layoutFiles(t, files, top)), ours.Digest
		}, false},
		{"docker save legacy", func(t *testing.T) ([]byte, string) {
			return dockerImage{layers: twoLayers(t)}.archive(t)
		}, true},
		{"docker save legacy with a linked duplicate layer", func(t *testing.T) ([]byte, string) {
			return dockerImage{layers: [][]byte{basicLayer(t), motdLayer(t), motdLayer(t)}}.archive(t)
		}, true},
		{"docker save blobs names", func(t *testing.T) ([]byte, string) {
			return dockerImage{layers: twoLayers(t), blobs: true}.archive(t)
		}, true},
		{"docker save compressed blobs", func(t *testing.T) ([]byte, string) {
			return dockerImage{layers: twoLayers(t), blobs: true, gzip: true}.archive(t)
		}, true},
		{"docker 25 with an OCI layout (used, manifest.json ignored)", func(t *testing.T) ([]byte, string) {
			return dockerImage{layers: twoLayers(t), blobs: true, withOCI: true, editFiles: func(files map[string][]byte) {
				files["manifest.json"] = []byte("not json")
			}}.archive(t)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			archive, digest := tc.archive(t)
			img, err := Intake(archive, IntakeOptions{})
			if err != nil {
				t.Fatalf("Intake: %v", err)
			}
			if digest != "" && img.Digest != digest {
				t.Errorf("Digest = %s, want the uploaded manifest's %s", img.Digest, digest)
			}
			if got := img.Config.Args(); !reflect.DeepEqual(got, []string{"/bin/task"}) {
				t.Errorf("Args = %q", got)
			}
			m := checkCanonical(t, img)
			if tc.docker {
				var cfg configFile
				_, files := readCanonical(t, img.Archive)
				if err := json.Unmarshal(files["blobs/sha256/"+hexOf(m.Config.Digest)], &cfg); err != nil {
					t.Fatal(err)
				}
				if m.MediaType != mtOCIManifest || m.SchemaVersion != 2 || m.Config.MediaType != mtOCIConfig {
					t.Errorf("synthesized manifest: %+v", m)
				}
				for i, l := range m.Layers {
					if l.MediaType != mtOCILayer || l.Digest != cfg.RootFS.DiffIDs[i] {
						t.Errorf("synthesized layer %d: %+v, want an uncompressed tar with digest %s", i, l, cfg.RootFS.DiffIDs[i])
					}
				}
			}
			if img.UnpackedSize() <= 0 {
				t.Errorf("UnpackedSize = %d", img.UnpackedSize())
			}

			again, err := Intake(img.Archive, IntakeOptions{})
			if err != nil {
				t.Fatalf("Intake of the canonical archive: %v", err)
			}
			if again.Digest != img.Digest || !bytes.Equal(again.Archive, img.Archive) {
				t.Errorf("Intake of the canonical archive changed it")
			}
			opened, err := Open(img.Archive, img.Digest, IntakeOptions{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if opened.Digest != img.Digest || !reflect.DeepEqual(opened.Config, img.Config) {
				t.Errorf("Open = %s %+v, want %s %+v", opened.Digest, opened.Config, img.Digest, img.Config)
			}

			dir := t.TempDir()
			if err := opened.Unpack(context.Background(), dir, UnpackOptions{}); err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			tree := readTree(t, dir)
			if tree["bin/sh"] != "-> task" || !strings.Contains(tree["bin/task"], secret) || tree["bin/task2"] != tree["bin/task"] {
				t.Errorf("unpacked tree = %q", tree)
			}
			if _, ok := tree["etc/motd"]; !ok {
				t.Errorf("etc/motd of layer 2 is missing: %q", tree)
			}
		})
	}
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// corruptLayer flips a byte in the middle of the archive's gzip blobs.
func corruptLayer(files map[string][]byte) {
	for name, b := range files {
		if strings.HasPrefix(name, "blobs/") && bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			c := bytes.Clone(b)
			c[len(c)/2] ^= 0x40
			files[name] = c
		}
	}
}

// layerImage is an OCI archive of the given gzip layers.
func layerImage(layers ...[]byte) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		a, _ := ociImage{layers: layers, gzip: true}.archive(t)
		return a
	}
}

func TestIntakeRejects(t *testing.T) {
	t.Parallel()
	bt := func(es ...ent) []byte { return tarOf(t, es...) }
	payload := file("data", secret)
	zeros := bt(payload, file("big", string(make([]byte, 8<<20))))
	var many []ent
	for i := 0; i < 50; i++ {
		many = append(many, file("f"+strings.Repeat("x", i), secret))
	}
	oci := func(o ociImage) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			if o.layers == nil {
				o.layers = [][]byte{basicLayer(t), motdLayer(t)}
			}
			a, _ := o.archive(t)
			return a
		}
	}
	docker := func(o dockerImage) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			if o.layers == nil {
				o.layers = [][]byte{basicLayer(t), motdLayer(t)}
			}
			a, _ := o.archive(t)
			return a
		}
	}
	outer := func(extra ...ent) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			files, _ := ociImage{layers: [][]byte{basicLayer(t)}, gzip: true}.files(t)
			return archiveOf(t, files, extra...)
		}
	}
	cases := []struct {
		name    string
		archive func(t *testing.T) []byte
		opts    IntakeOptions
		code    ward.Code
		msg     string // a part of the message
	}{
		// The outer archive.
		{"not a tar", func(*testing.T) []byte { return []byte(strings.Repeat("not a tar archive; ", 100)) }, IntakeOptions{}, ward.CodeInvalidImage, "not a tar"},
		{"short garbage", func(*testing.T) []byte { return []byte("hello") }, IntakeOptions{}, ward.CodeInvalidImage, "not a tar"},
		{"no bytes", func(*testing.T) []byte { return nil }, IntakeOptions{}, ward.CodeInvalidImage, "empty"},
		{"empty tar", func(t *testing.T) []byte { return tarOf(t) }, IntakeOptions{}, ward.CodeInvalidImage, "empty"},
		{"neither layout nor docker save", func(t *testing.T) []byte {
			return archiveOf(t, map[string][]byte{"hello.txt": []byte(secret)})
		}, IntakeOptions{}, ward.CodeInvalidImage, "neither"},
		{"duplicate entry", outer(file("index.json", "{}")), IntakeOptions{}, ward.CodeInvalidImage, "twice"},
		{"symlink leaving the archive", outer(symlink("escape", "../../etc/passwd")), IntakeOptions{}, ward.CodeInvalidImage, "symlink"},
		{"dangling symlink", outer(symlink("dangling", "nowhere")), IntakeOptions{}, ward.CodeInvalidImage, "symlink"},
		{"symlink to a directory", outer(symlink("dirlink", "blobs")), IntakeOptions{}, ward.CodeInvalidImage, "symlink"},
		{"character device", outer(ent{name: "null", typ: tar.TypeChar, mode: 0o666}), IntakeOptions{}, ward.CodeInvalidImage, "character device"},
		{"fifo", outer(ent{name: "pipe", typ: tar.TypeFifo, mode: 0o666}), IntakeOptions{}, ward.CodeInvalidImage, "fifo"},
		{"hard link", outer(hardlink("again", "index.json")), IntakeOptions{}, ward.CodeInvalidImage, "hard link"},
		{"absolute name", outer(file("/abs", "x")), IntakeOptions{}, ward.CodeInvalidImage, "relative"},
		{"dot-dot name", outer(file("../up", "x")), IntakeOptions{}, ward.CodeInvalidImage, "relative"},

		// The OCI layout and its JSON.
		{"bad oci-layout", oci(ociImage{editFiles: func(f map[string][]byte) { f["oci-layout"] = []byte("{") }}), IntakeOptions{}, ward.CodeInvalidImage, "oci-layout"},
		{"oci-layout version", oci(ociImage{editFiles: func(f map[string][]byte) { f["oci-layout"] = []byte(`{"imageLayoutVersion":"9"}`) }}), IntakeOptions{}, ward.CodeInvalidImage, "version"},
		{"no index.json", oci(ociImage{editFiles: func(f map[string][]byte) { delete(f, "index.json") }}), IntakeOptions{}, ward.CodeInvalidImage, "index.json"},
		{"malformed index.json", oci(ociImage{editFiles: func(f map[string][]byte) { f["index.json"] = []byte(`{"manifests": [`) }}), IntakeOptions{}, ward.CodeInvalidImage, "index.json"},
		{"index schemaVersion", oci(ociImage{editFiles: func(f map[string][]byte) {
			f["index.json"] = bytes.Replace(f["index.json"], []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1)
		}}), IntakeOptions{}, ward.CodeInvalidImage, "schemaVersion"},
		{"empty index", oci(ociImage{editFiles: func(f map[string][]byte) { f["index.json"] = []byte(`{"schemaVersion":2,"manifests":[]}`) }}), IntakeOptions{}, ward.CodeInvalidImage, "no manifests"},
		{"manifest schemaVersion 1", oci(ociImage{editMan: func(m *manifestJSON) { m.SchemaVersion = 1 }}), IntakeOptions{}, ward.CodeInvalidImage, "schemaVersion"},
		{"manifest is an artifact", oci(ociImage{editMan: func(m *manifestJSON) { m.Config.MediaType = "application/vnd.oci.empty.v1+json" }}), IntakeOptions{}, ward.CodeInvalidImage, "config media type"},
		{"manifest media type differs", oci(ociImage{editMan: func(m *manifestJSON) { m.MediaType = mtDockerManifest }}), IntakeOptions{}, ward.CodeInvalidImage, "media type"},
		{"no layers", oci(ociImage{editMan: func(m *manifestJSON) { m.Layers = nil }}), IntakeOptions{}, ward.CodeInvalidImage, "no layers"},
		{"missing layer blob", oci(ociImage{gzip: true, editFiles: func(f map[string][]byte) {
			for n, b := range f {
				if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
					delete(f, n)
				}
			}
		}}), IntakeOptions{}, ward.CodeInvalidImage, "missing"},
		{"malformed digest", oci(ociImage{editMan: func(m *manifestJSON) { m.Layers[0].Digest = "sha512:abc" }}), IntakeOptions{}, ward.CodeInvalidImage, "sha256"},
		{"zstd layer", oci(ociImage{gzip: true, layerType: mtOCILayerZstd}), IntakeOptions{}, ward.CodeInvalidImage, "zstd"},
		{"non-distributable layer", oci(ociImage{gzip: true, layerType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"}), IntakeOptions{}, ward.CodeInvalidImage, "foreign"},
		{"docker foreign layer", oci(ociImage{gzip: true, layerType: mtDockerForeign}), IntakeOptions{}, ward.CodeInvalidImage, "foreign"},
		{"layer with urls", oci(ociImage{gzip: true, editMan: func(m *manifestJSON) { m.Layers[0].URLs = []string{"https://example.com/l"} }}), IntakeOptions{}, ward.CodeInvalidImage, "foreign"},
		{"unknown layer type", oci(ociImage{layerType: "text/plain"}), IntakeOptions{}, ward.CodeInvalidImage, "not supported"},
		{"gzip type over a plain tar", oci(ociImage{layerType: mtOCILayerGzip}), IntakeOptions{}, ward.CodeInvalidImage, "gzip"},
		{"layer is not a tar", layerImage([]byte(strings.Repeat(secret, 100))), IntakeOptions{}, ward.CodeInvalidImage, "not a valid"},

		// Digests and sizes.
		{"corrupted layer byte", oci(ociImage{gzip: true, editFiles: corruptLayer}), IntakeOptions{}, ward.CodeDigestMismatch, "does not match its digest"},
		{"wrong layer size", oci(ociImage{gzip: true, editMan: func(m *manifestJSON) { m.Layers[1].Size++ }}), IntakeOptions{}, ward.CodeDigestMismatch, "bytes"},
		{"config blob is not JSON", oci(ociImage{editMan: func(m *manifestJSON) {
			m.Config.Digest = m.Layers[0].Digest
			m.Config.Size = m.Layers[0].Size
		}}), IntakeOptions{}, ward.CodeInvalidImage, "config is not valid JSON"},
		{"changed manifest blob", oci(ociImage{editFiles: func(f map[string][]byte) {
			var idx indexJSON
			_ = json.Unmarshal(f["index.json"], &idx)
			name := "blobs/sha256/" + hexOf(idx.Manifests[0].Digest)
			f[name] = append(bytes.Clone(f[name][:len(f[name])-1]), ' ')
		}}), IntakeOptions{}, ward.CodeDigestMismatch, "manifest"},
		{"wrong diff_id", oci(ociImage{gzip: true, editConfig: func(c *testConfig) { c.RootFS.DiffIDs[1] = ward.Digest([]byte("other")) }}), IntakeOptions{}, ward.CodeDigestMismatch, "diff_id"},
		{"diff_ids fewer than layers", oci(ociImage{editConfig: func(c *testConfig) { c.RootFS.DiffIDs = c.RootFS.DiffIDs[:1] }}), IntakeOptions{}, ward.CodeInvalidImage, "diff_ids"},

		// The config.
		{"no command", oci(ociImage{editConfig: func(c *testConfig) { c.Config.Cmd, c.Config.Entrypoint = nil, nil }}), IntakeOptions{}, ward.CodeNoCommand, "no command"},
		{"os with a NUL byte", oci(ociImage{editConfig: func(c *testConfig) { c.OS = "linux\x00" }}), IntakeOptions{}, ward.CodeInvalidImage, `"linux\x00"`},
		{"docker: config not JSON", docker(dockerImage{editFiles: func(f map[string][]byte) {
			bad := []byte("{" + secret)
			name := hexOf(ward.Digest(bad)) + ".json"
			f[name] = bad
			var items []map[string]any
			_ = json.Unmarshal(f["manifest.json"], &items)
			items[0]["Config"] = name
			f["manifest.json"], _ = json.Marshal(items)
		}}), IntakeOptions{}, ward.CodeInvalidImage, "config is not valid JSON"},
		{"wrong architecture", oci(ociImage{arch: otherArch()}), IntakeOptions{}, ward.CodeInvalidImage, "linux/" + otherArch()},
		{"wrong os", oci(ociImage{editConfig: func(c *testConfig) { c.OS = "windows" }}), IntakeOptions{}, ward.CodeInvalidImage, "windows"},
		{"no architecture", oci(ociImage{editConfig: func(c *testConfig) { c.Architecture = "" }}), IntakeOptions{}, ward.CodeInvalidImage, `""`},
		{"NUL in Env", oci(ociImage{env: []string{"A=" + secret + "\x00"}}), IntakeOptions{}, ward.CodeInvalidImage, "Env"},

		// Platforms.
		{"index for another platform only", oci(ociImage{arch: otherArch(), platform: true}), IntakeOptions{}, ward.CodeInvalidImage, "no image for linux/" + runtime.GOARCH},
		{"several images, no platforms", func(t *testing.T) []byte {
			files := map[string][]byte{}
			a := ociImage{layers: [][]byte{basicLayer(t)}}.manifestOf(t, files)
			b := ociImage{layers: [][]byte{motdLayer(t)}}.manifestOf(t, files)
			return archiveOf(t, layoutFiles(t, files, a, b))
		}, IntakeOptions{}, ward.CodeInvalidImage, "upload one image"},

		// docker save.
		{"docker: two images", docker(dockerImage{editFiles: func(f map[string][]byte) {
			f["manifest.json"] = []byte(`[{"Config":"a.json","Layers":[]},{"Config":"b.json","Layers":[]}]`)
		}}), IntakeOptions{}, ward.CodeInvalidImage, "2 images"},
		{"docker: manifest.json not JSON", docker(dockerImage{editFiles: func(f map[string][]byte) { f["manifest.json"] = []byte("[") }}), IntakeOptions{}, ward.CodeInvalidImage, "manifest.json"},
		{"docker: config changed", docker(dockerImage{editFiles: func(f map[string][]byte) {
			for n, b := range f {
				if strings.HasSuffix(n, ".json") && n != "manifest.json" && !strings.Contains(n, "/") {
					f[n] = append(bytes.Clone(b), ' ')
				}
			}
		}}), IntakeOptions{}, ward.CodeDigestMismatch, "config"},
		{"docker: config name without digest", docker(dockerImage{editFiles: func(f map[string][]byte) {
			var items []map[string]any
			_ = json.Unmarshal(f["manifest.json"], &items)
			f["config.json"] = f[items[0]["Config"].(string)]
			items[0]["Config"] = "config.json"
			f["manifest.json"], _ = json.Marshal(items)
		}}), IntakeOptions{}, ward.CodeInvalidImage, "digest"},
		{"docker: missing layer", docker(dockerImage{editFiles: func(f map[string][]byte) {
			for n := range f {
				if strings.HasSuffix(n, "/layer.tar") {
					delete(f, n)
				}
			}
		}}), IntakeOptions{}, ward.CodeInvalidImage, "missing"},
		{"docker: layer changed", docker(dockerImage{editFiles: func(f map[string][]byte) {
			for n, b := range f {
				if strings.HasSuffix(n, "/layer.tar") {
					if i := bytes.Index(b, []byte(secret)); i >= 0 {
						c := bytes.Clone(b)
						c[i] ^= 0x20
						f[n] = c
					}
				}
			}
		}}), IntakeOptions{}, ward.CodeDigestMismatch, "diff_id"},
		{"docker: blob changed", docker(dockerImage{blobs: true, gzip: true, editFiles: corruptLayer}), IntakeOptions{}, ward.CodeDigestMismatch, "digest"},
		{"docker: wrong diff_id", docker(dockerImage{editConfig: func(c *testConfig) { c.RootFS.DiffIDs[0] = ward.Digest(nil) }}), IntakeOptions{}, ward.CodeDigestMismatch, "diff_id"},
		{"docker: zstd layer", docker(dockerImage{layers: [][]byte{append([]byte{0x28, 0xb5, 0x2f, 0xfd}, secret...)}}), IntakeOptions{}, ward.CodeInvalidImage, "zstd"},
		{"docker: no command", docker(dockerImage{editConfig: func(c *testConfig) { c.Config.Cmd = nil }}), IntakeOptions{}, ward.CodeNoCommand, "no command"},

		// Layer entries.
		{"../etc/passwd", layerImage(bt(payload, file("../etc/passwd", secret))), IntakeOptions{}, ward.CodeUnsafeLayer, `"../etc/passwd" leaves the image root`},
		{"a/../../x", layerImage(bt(payload, file("a/../../x", secret))), IntakeOptions{}, ward.CodeUnsafeLayer, "leaves the image root"},
		{"/../x", layerImage(bt(payload, file("/../x", secret))), IntakeOptions{}, ward.CodeUnsafeLayer, "leaves the image root"},
		{"character device", layerImage(bt(payload, ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666})), IntakeOptions{}, ward.CodeUnsafeLayer, "character device"},
		{"block device", layerImage(bt(payload, ent{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660})), IntakeOptions{}, ward.CodeUnsafeLayer, "block device"},
		{"fifo", layerImage(bt(payload, ent{name: "run/pipe", typ: tar.TypeFifo, mode: 0o600})), IntakeOptions{}, ward.CodeUnsafeLayer, "fifo"},
		{"hard link to ../x", layerImage(bt(payload, hardlink("h", "../x"))), IntakeOptions{}, ward.CodeUnsafeLayer, "hard link"},
		{"hard link to a missing entry", layerImage(bt(payload, hardlink("h", "missing"))), IntakeOptions{}, ward.CodeUnsafeLayer, "no earlier entry"},
		{"hard link to a later entry", layerImage(bt(hardlink("h", "data"), payload)), IntakeOptions{}, ward.CodeUnsafeLayer, "no earlier entry"},
		{"hard link to itself", layerImage(bt(payload, hardlink("data", "data"))), IntakeOptions{}, ward.CodeUnsafeLayer, "no earlier entry"},
		{"hard link to a directory", layerImage(bt(dir("d/"), hardlink("h", "d"))), IntakeOptions{}, ward.CodeUnsafeLayer, "directory"},
		{"hard link through a symlink", layerImage(bt(dir("real/"), payload, file("real/f", secret), symlink("via", "real"), hardlink("h", "via/f"))), IntakeOptions{}, ward.CodeUnsafeLayer, "no earlier entry"},
		{"hard link to a whited-out file", layerImage(bt(payload), bt(file(".wh.data", ""), hardlink("h", "data"))), IntakeOptions{}, ward.CodeUnsafeLayer, "no earlier entry"},
		{"symlink x -> ../../..", layerImage(bt(payload, symlink("x", "../../.."))), IntakeOptions{}, ward.CodeUnsafeLayer, "leaves the image root"},
		{"symlink a/b -> ../../y", layerImage(bt(payload, symlink("a/b", "../../y"))), IntakeOptions{}, ward.CodeUnsafeLayer, "leaves the image root"},
		{"link -> /etc then link/passwd", layerImage(bt(symlink("link", "/etc"), file("link/passwd", secret))), IntakeOptions{}, ward.CodeUnsafeLayer, `goes through the symlink "link"`},
		{"link -> /etc then link/passwd a layer later", layerImage(bt(symlink("link", "/etc")), bt(file("link/passwd", secret))), IntakeOptions{}, ward.CodeUnsafeLayer, "goes through the symlink"},
		{"relative link then a write through it", layerImage(bt(dir("real/"), symlink("sub/link", "../real"), file("sub/link/f", secret))), IntakeOptions{}, ward.CodeUnsafeLayer, "symlink"},
		{"whiteout through a symlink", layerImage(bt(symlink("link", "/etc")), bt(file("link/.wh.passwd", ""))), IntakeOptions{}, ward.CodeUnsafeLayer, "symlink"},
		{"opaque marker through a symlink", layerImage(bt(symlink("link", "/etc")), bt(file("link/.wh..wh..opq", ""))), IntakeOptions{}, ward.CodeUnsafeLayer, "symlink"},
		{"symlink replacing the root", layerImage(bt(payload, symlink("./", "/elsewhere"))), IntakeOptions{}, ward.CodeUnsafeLayer, "root"},
		{"entry under a file", layerImage(bt(payload, file("data/x", secret))), IntakeOptions{}, ward.CodeInvalidImage, "not a directory"},
		{"whiteout used as a directory", layerImage(bt(file(".wh.x/y", ""))), IntakeOptions{}, ward.CodeInvalidImage, "whiteout"},
		{"empty whiteout", layerImage(bt(file("a/.wh.", ""))), IntakeOptions{}, ward.CodeInvalidImage, "whiteout"},
		{"owner out of range", layerImage(bt(ent{name: "f", typ: tar.TypeReg, mode: 0o644, uid: 1 << 33})), IntakeOptions{}, ward.CodeInvalidImage, "owner"},
		{"name part too long", layerImage(bt(file(strings.Repeat("n", 300), secret))), IntakeOptions{}, ward.CodeInvalidImage, "longer"},
		{"sparse file", layerImage(sparseTar(t)), IntakeOptions{}, ward.CodeInvalidImage, "sparse"},

		// Limits.
		{"gzip bomb over MaxUnpackedBytes", layerImage(zeros), IntakeOptions{MaxUnpackedBytes: 1 << 20}, ward.CodeInvalidImage, "too large"},
		{"plain layer over MaxUnpackedBytes", oci(ociImage{layers: [][]byte{zeros}}), IntakeOptions{MaxUnpackedBytes: 1 << 20}, ward.CodeInvalidImage, "too large"},
		{"layers together over MaxUnpackedBytes", layerImage(bt(file("a", string(make([]byte, 600<<10)))), bt(file("b", string(make([]byte, 600<<10))))), IntakeOptions{MaxUnpackedBytes: 1 << 20}, ward.CodeInvalidImage, "too large"},
		{"too many entries", layerImage(bt(many...)), IntakeOptions{MaxEntries: 10}, ward.CodeInvalidImage, "more than 10 entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, err := Intake(tc.archive(t), tc.opts)
			if err == nil {
				t.Fatalf("Intake accepted it (digest %s)", img.Digest)
			}
			if img != nil {
				t.Errorf("Intake returned an image with its error")
			}
			if c := codeOf(t, err); c != tc.code {
				t.Errorf("code = %s, want %s (%v)", c, tc.code, err)
			}
			msg := err.Error()
			t.Logf("%s: %s", codeOf(t, err), msg)
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not say %q", msg, tc.msg)
			}
			if len(msg) > 300 || strings.Contains(msg, secret) {
				t.Errorf("message is too long or shows file contents: %q", msg)
			}
		})
	}
}

// TestCountingReaderStopsEarly shows that a layer that decompresses to an
// endless stream is read no further than one byte past the limit.
func TestCountingReaderStopsEarly(t *testing.T) {
	t.Parallel()
	endless := &countedZeros{}
	cr := &countingReader{r: endless, limit: 1000}
	n, err := io.Copy(io.Discard, cr)
	if !errors.Is(err, errTooLarge) {
		t.Fatalf("err = %v, want errTooLarge", err)
	}
	if n != 1001 || endless.n != 1001 {
		t.Errorf("copied %d, read %d from the source; want 1001", n, endless.n)
	}
}

type countedZeros struct{ n int64 }

func (z *countedZeros) Read(p []byte) (int, error) {
	clear(p)
	z.n += int64(len(p))
	return len(p), nil
}

func TestOpen(t *testing.T) {
	t.Parallel()
	archive, digest := ociImage{layers: [][]byte{basicLayer(t)}, gzip: true}.archive(t)
	img, err := Intake(archive, IntakeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != digest {
		t.Fatalf("Digest = %s, want %s", img.Digest, digest)
	}
	opened, err := Open(img.Archive, digest, IntakeOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if &opened.Archive[0] != &img.Archive[0] {
		t.Errorf("Open copied the archive")
	}
	other := ward.Digest([]byte("another image"))
	for _, d := range []string{other, "", "sha256:" + strings.Repeat("x", 500)} {
		_, err := Open(img.Archive, d, IntakeOptions{})
		if c := codeOf(t, err); c != ward.CodeDigestMismatch {
			t.Errorf("Open with digest %.20q: code %s, want digest_mismatch (%v)", d, c, err)
		}
		if len(err.Error()) > 300 {
			t.Errorf("message too long: %d bytes", len(err.Error()))
		}
	}
	// Open checks as Intake does: a docker save archive is not canonical,
	// and the limits hold.
	dockerArchive, _ := dockerImage{layers: [][]byte{basicLayer(t)}}.archive(t)
	if _, err := Open(dockerArchive, digest, IntakeOptions{}); codeOf(t, err) != ward.CodeInvalidImage {
		t.Errorf("Open of a docker save archive: %v", err)
	}
	if _, err := Open(img.Archive, digest, IntakeOptions{MaxEntries: 2}); codeOf(t, err) != ward.CodeInvalidImage {
		t.Errorf("Open over MaxEntries: %v", err)
	}
	// A changed byte in a stored layer is caught.
	bad := bytes.Clone(img.Archive)
	l := img.layers[0].data
	off := bytes.Index(bad, l)
	bad[off+len(l)/2] ^= 1
	if _, err := Open(bad, digest, IntakeOptions{}); codeOf(t, err) != ward.CodeDigestMismatch {
		t.Errorf("Open of a changed archive: %v", err)
	}
}

func TestConfigArgs(t *testing.T) {
	t.Parallel()
	c := Config{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}}
	if got := c.Args(); !reflect.DeepEqual(got, []string{"/bin/sh", "-c", "echo hi"}) {
		t.Errorf("Args = %q", got)
	}
	got := c.Args()
	got[0] = "changed"
	if c.Entrypoint[0] != "/bin/sh" {
		t.Errorf("Args shares its array with Entrypoint")
	}
	if got := (Config{Cmd: []string{"x"}}).Args(); !reflect.DeepEqual(got, []string{"x"}) {
		t.Errorf("Args = %q", got)
	}
}

func TestQuoteBound(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", strings.Repeat("a", 500), strings.Repeat("\x8a", 500), strings.Repeat("é", 300), "\x00\n\t"} {
		out := q(s)
		if len(out) > maxMessageString+2+len("…") {
			t.Errorf("q(%.10q…) is %d bytes", s, len(out))
		}
		if !strings.HasPrefix(out, `"`) {
			t.Errorf("q(%.10q…) = %s", s, out)
		}
	}
	if q("a\nb") != `"a\nb"` {
		t.Errorf("q does not quote")
	}
}

// TestNameBudget shows that the names the checks keep in memory are
// bounded (at 64 MiB in Intake; lowered here).
func TestNameBudget(t *testing.T) {
	t.Parallel()
	var es []ent
	for i := 0; i < 20; i++ {
		es = append(es, file(strings.Repeat("n", 200)+strconv.Itoa(i), "x"))
	}
	l := tarOf(t, es...)
	s := newScanner(IntakeOptions{}.withDefaults())
	s.maxNames = 2000
	_, err := s.layer(1, l, false, ward.Digest(l), false)
	if codeOf(t, err) != ward.CodeInvalidImage || !strings.Contains(err.Error(), "names add up") {
		t.Errorf("err = %v", err)
	}
	s = newScanner(IntakeOptions{}.withDefaults())
	if _, err := s.layer(1, l, false, ward.Digest(l), false); err != nil {
		t.Errorf("within the budget: %v", err)
	}
}
