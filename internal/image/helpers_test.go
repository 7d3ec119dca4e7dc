package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward"
)

// secret is put in test files' contents; no error message may show it.
const secret = "s3cr3t-file-content"

// ent is one tar entry of a test archive.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
	gid  int
}

func file(name, body string) ent { return ent{name: name, typ: tar.TypeReg, body: body, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

// tarOf writes the entries as a tar, in the order given.
func tarOf(t testing.TB, es ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Linkname: e.link,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  time.Unix(1700000000, 0),
		}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// archiveOf writes files (sorted by name) and then the extra entries as
// an outer archive.
func archiveOf(t testing.TB, files map[string][]byte, extra ...ent) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	es := make([]ent, 0, len(names)+len(extra))
	for _, n := range names {
		es = append(es, file(n, string(files[n])))
	}
	return tarOf(t, append(es, extra...)...)
}

// testConfig is an image config as tests write it.
type testConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Entrypoint []string `json:"Entrypoint,omitempty"`
		Cmd        []string `json:"Cmd,omitempty"`
		Env        []string `json:"Env,omitempty"`
		User       string   `json:"User,omitempty"`
		WorkingDir string   `json:"WorkingDir,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

// otherArch is an architecture this machine is not.
func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// ociImage describes an OCI image layout for a test.
type ociImage struct {
	layers     [][]byte // uncompressed layer tars
	gzip       bool
	layerType  string // overrides every layer's media type
	arch       string // default runtime.GOARCH
	platform   bool   // name the platform in index.json
	entrypoint []string
	cmd        []string
	env        []string
	user       string
	editConfig func(*testConfig)
	editLayers func(blobs [][]byte) // after compression, before digests
	editMan    func(*manifestJSON)
	editFiles  func(files map[string][]byte)
}

// manifestOf writes the image's blobs into files and returns its
// manifest's descriptor.
func (o ociImage) manifestOf(t testing.TB, files map[string][]byte) descriptor {
	t.Helper()
	put := func(b []byte) string {
		d := ward.Digest(b)
		files["blobs/sha256/"+hexOf(d)] = b
		return d
	}
	arch := o.arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	var cfg testConfig
	cfg.Architecture, cfg.OS = arch, "linux"
	cfg.Config.Entrypoint, cfg.Config.Cmd, cfg.Config.Env, cfg.Config.User = o.entrypoint, o.cmd, o.env, o.user
	if o.entrypoint == nil && o.cmd == nil {
		cfg.Config.Cmd = []string{"/bin/task"}
	}
	cfg.RootFS.Type = "layers"
	blobs := make([][]byte, len(o.layers))
	cfg.RootFS.DiffIDs = []string{}
	for i, l := range o.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, ward.Digest(l))
		blobs[i] = l
		if o.gzip {
			blobs[i] = gzipOf(t, l)
		}
	}
	if o.editConfig != nil {
		o.editConfig(&cfg)
	}
	if o.editLayers != nil {
		o.editLayers(blobs)
	}
	cfgBytes := mustJSON(t, cfg)
	m := manifestJSON{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		Config:        descriptor{MediaType: mtOCIConfig, Digest: put(cfgBytes), Size: int64(len(cfgBytes))},
	}
	for _, b := range blobs {
		mt := mtOCILayer
		if o.gzip {
			mt = mtOCILayerGzip
		}
		if o.layerType != "" {
			mt = o.layerType
		}
		m.Layers = append(m.Layers, descriptor{MediaType: mt, Digest: put(b), Size: int64(len(b))})
	}
	if o.editMan != nil {
		o.editMan(&m)
	}
	mb := mustJSON(t, m)
	d := descriptor{MediaType: mtOCIManifest, Digest: put(mb), Size: int64(len(mb))}
	if o.platform {
		d.Platform = &platform{Architecture: arch, OS: "linux"}
	}
	return d
}

// layoutFiles returns the files of an OCI layout over the given manifests.
func layoutFiles(t testing.TB, files map[string][]byte, manifests ...descriptor) map[string][]byte {
	t.Helper()
	files["oci-layout"] = []byte(`{"imageLayoutVersion": "1.0.0"}`)
	files["index.json"] = mustJSON(t, indexJSON{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: manifests})
	return files
}

// files returns the image's OCI layout files and its manifest digest.
func (o ociImage) files(t testing.TB) (map[string][]byte, string) {
	t.Helper()
	files := make(map[string][]byte)
	d := o.manifestOf(t, files)
	layoutFiles(t, files, d)
	if o.editFiles != nil {
		o.editFiles(files)
	}
	return files, d.Digest
}

// archive returns the image as an OCI layout tar and its manifest digest.
func (o ociImage) archive(t testing.TB) ([]byte, string) {
	t.Helper()
	files, d := o.files(t)
	return archiveOf(t, files), d
}

// dockerImage describes a docker save archive for a test.
type dockerImage struct {
	layers     [][]byte
	gzip       bool // layers stored compressed (as the containerd store exports)
	blobs      bool // Docker 25 names: blobs/sha256/<hex>
	withOCI    bool // also an OCI layout (Docker 25 and later)
	cmd        []string
	editConfig func(*testConfig)
	editFiles  func(files map[string][]byte)
}

// archive returns the docker save archive and, when withOCI is set, the
// digest of its OCI manifest.
func (o dockerImage) archive(t testing.TB) ([]byte, string) {
	t.Helper()
	files := make(map[string][]byte)
	var links []ent
	var cfg testConfig
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux"
	cfg.Config.Cmd = o.cmd
	if cfg.Config.Cmd == nil {
		cfg.Config.Cmd = []string{"/bin/task"}
	}
	cfg.RootFS.Type = "layers"
	var names []string
	saved := map[string]string{}
	var ociLayers []descriptor
	for i, l := range o.layers {
		diff := ward.Digest(l)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diff)
		blob := l
		if o.gzip {
			blob = gzipOf(t, l)
		}
		mt := mtOCILayer
		if o.gzip {
			mt = mtOCILayerGzip
		}
		ociLayers = append(ociLayers, descriptor{MediaType: mt, Digest: ward.Digest(blob), Size: int64(len(blob))})
		if o.blobs {
			name := "blobs/sha256/" + hexOf(ward.Digest(blob))
			files[name] = blob
			names = append(names, name)
			continue
		}
		id := hexOf(ward.Digest([]byte(fmt.Sprintf("v1-%d", i))))
		name := id + "/layer.tar"
		names = append(names, name)
		files[id+"/VERSION"] = []byte("1.0")
		files[id+"/json"] = []byte(`{"id":"` + id + `"}`)
		if first, ok := saved[diff]; ok {
			links = append(links, symlink(name, "../"+first))
			continue
		}
		saved[diff] = name
		files[name] = blob
	}
	if o.editConfig != nil {
		o.editConfig(&cfg)
	}
	cfgBytes := mustJSON(t, cfg)
	cfgName := hexOf(ward.Digest(cfgBytes)) + ".json"
	if o.blobs {
		cfgName = "blobs/sha256/" + hexOf(ward.Digest(cfgBytes))
	}
	files[cfgName] = cfgBytes
	files["manifest.json"] = mustJSON(t, []map[string]any{{"Config": cfgName, "RepoTags": []string{"task:latest"}, "Layers": names}})
	files["repositories"] = []byte(`{"task":{"latest":"x"}}`)
	var digest string
	if o.withOCI {
		m := mustJSON(t, manifestJSON{
			SchemaVersion: 2,
			MediaType:     mtOCIManifest,
			Config:        descriptor{MediaType: mtOCIConfig, Digest: ward.Digest(cfgBytes), Size: int64(len(cfgBytes))},
			Layers:        ociLayers,
		})
		digest = ward.Digest(m)
		files["blobs/sha256/"+hexOf(digest)] = m
		layoutFiles(t, files, descriptor{MediaType: mtOCIManifest, Digest: digest, Size: int64(len(m)),
			Platform: &platform{Architecture: runtime.GOARCH, OS: "linux"}})
	}
	if o.editFiles != nil {
		o.editFiles(files)
	}
	return archiveOf(t, files, links...), digest
}

// sparseTar returns a layer holding one sparse file in the PAX (GNU 1.0)
// format, which archive/tar reads but does not write: its extended header
// is written as a file whose type is then changed to 'x'.
func sparseTar(t testing.TB) []byte {
	t.Helper()
	rec := func(k, v string) string {
		n := len(k) + len(v) + 3
		n += len(strconv.Itoa(n))
		if r := fmt.Sprintf("%d %s=%s\n", n, k, v); len(r) == n {
			return r
		}
		return fmt.Sprintf("%d %s=%s\n", n+1, k, v)
	}
	pax := rec("GNU.sparse.major", "1") + rec("GNU.sparse.minor", "0") + rec("GNU.sparse.name", "sparse") + rec("GNU.sparse.realsize", "1000")
	data := make([]byte, 512, 517)
	copy(data, "1\n0\n5\n")
	data = append(data, "hello"...)
	b := tarOf(t, file("PaxHeaders/sparse", pax), file("sparse.data", string(data)))
	b[156] = 'x'
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// basicLayer is a small layer with a command, a directory and links.
func basicLayer(t testing.TB) []byte {
	return tarOf(t,
		dir("bin/"),
		ent{name: "bin/task", typ: tar.TypeReg, body: "#!/bin/sh\necho " + secret + "\n", mode: 0o755},
		dir("etc/"),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
		symlink("bin/sh", "task"),
		hardlink("bin/task2", "bin/task"),
	)
}

// codeOf returns err's ward code, failing the test if err is not a
// *ward.Error.
func codeOf(t testing.TB, err error) ward.Code {
	t.Helper()
	var we *ward.Error
	if !errors.As(err, &we) {
		t.Fatalf("error %v (%T) is not a *ward.Error", err, err)
	}
	return we.Code
}
