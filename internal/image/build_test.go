package image

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

func buildOptions() BuildOptions {
	return BuildOptions{
		Files: []File{
			{Path: "/task", Mode: 0o755, Data: []byte("#!/bin/sh\necho hi\n")},
			{Path: "/etc/conf/task.json", Mode: 0o600, Data: []byte(`{"k":1}`), UID: 1000, GID: 1000},
			{Path: "/usr/bin/su", Mode: 0o755 | fs.ModeSetuid, Data: []byte("su")},
			{Path: "/data", Mode: fs.ModeDir | 0o700, UID: 1000, GID: 1000},
			{Path: "/bin", Mode: fs.ModeSymlink, Data: []byte("usr/bin")},
		},
		Entrypoint: []string{"/task"},
		Env:        []string{"PATH=/usr/bin", "MODE=test"},
		User:       "1000:1000",
		WorkingDir: "/data",
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	img, err := Build(buildOptions())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	want := Config{Entrypoint: []string{"/task"}, Env: []string{"PATH=/usr/bin", "MODE=test"}, User: "1000:1000", WorkingDir: "/data"}
	if !reflect.DeepEqual(img.Config, want) {
		t.Errorf("Config = %+v, want %+v", img.Config, want)
	}
	m := checkCanonical(t, img)
	if len(m.Layers) != 1 || m.Layers[0].MediaType != mtOCILayer {
		t.Errorf("layers = %+v, want one uncompressed layer", m.Layers)
	}

	// Deterministic, whatever the order of the files.
	again, err := Build(buildOptions())
	if err != nil {
		t.Fatal(err)
	}
	opts := buildOptions()
	for i, j := 0, len(opts.Files)-1; i < j; i, j = i+1, j-1 {
		opts.Files[i], opts.Files[j] = opts.Files[j], opts.Files[i]
	}
	reversed, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []*Image{again, reversed} {
		if other.Digest != img.Digest || !bytes.Equal(other.Archive, img.Archive) {
			t.Errorf("Build is not deterministic: %s, then %s", img.Digest, other.Digest)
		}
	}
	// A change of any option changes the digest.
	opts = buildOptions()
	opts.Env = append(opts.Env, "MORE=1")
	changed, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Digest == img.Digest {
		t.Errorf("a different Env gave the same digest")
	}

	// Build → Intake → Open round trip.
	in, err := Intake(img.Archive, IntakeOptions{})
	if err != nil {
		t.Fatalf("Intake: %v", err)
	}
	if in.Digest != img.Digest || !bytes.Equal(in.Archive, img.Archive) || !reflect.DeepEqual(in.Config, img.Config) {
		t.Errorf("Intake of a built image changed it")
	}
	opened, err := Open(in.Archive, in.Digest, IntakeOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := Open(in.Archive, changed.Digest, IntakeOptions{}); codeOf(t, err) != ward.CodeDigestMismatch {
		t.Errorf("Open with another image's digest: %v", err)
	}

	dir := t.TempDir()
	if err := opened.Unpack(context.Background(), dir, UnpackOptions{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	tree := readTree(t, dir)
	wantTree := map[string]string{
		"task": "#!/bin/sh\necho hi\n", "etc": "/", "etc/conf": "/", "etc/conf/task.json": `{"k":1}`,
		"usr": "/", "usr/bin": "/", "usr/bin/su": "su", "data": "/", "bin": "-> usr/bin",
	}
	if !reflect.DeepEqual(tree, wantTree) {
		t.Errorf("unpacked %q, want %q", tree, wantTree)
	}
	for p, w := range map[string]fs.FileMode{
		"task": 0o755, "etc": fs.ModeDir | 0o755, "etc/conf/task.json": 0o600,
		"usr/bin/su": 0o755 | fs.ModeSetuid, "data": fs.ModeDir | 0o700,
	} {
		if m := mode(t, filepath.Join(dir, p)); m != w {
			t.Errorf("mode of %s = %v, want %v", p, m, w)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	t.Parallel()
	task := File{Path: "/task", Mode: 0o755, Data: []byte("x")}
	cases := []struct {
		name  string
		files []File
		entry []string
		code  ward.Code
		msg   string
	}{
		{"relative path", []File{{Path: "task", Mode: 0o755}}, nil, ward.CodeInvalidArgument, "absolute"},
		{"the root", []File{{Path: "/", Mode: fs.ModeDir | 0o755}}, nil, ward.CodeInvalidArgument, "root"},
		{"unclean path", []File{{Path: "/a/../task", Mode: 0o755}}, nil, ward.CodeInvalidArgument, "clean"},
		{"listed twice", []File{task, task}, nil, ward.CodeInvalidArgument, "twice"},
		{"file under a file", []File{task, {Path: "/task/x", Mode: 0o644}}, nil, ward.CodeInvalidArgument, "not a directory"},
		{"device", []File{{Path: "/dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}}, nil, ward.CodeInvalidArgument, "neither"},
		{"fifo", []File{{Path: "/pipe", Mode: fs.ModeNamedPipe | 0o600}}, nil, ward.CodeInvalidArgument, "neither"},
		{"append-only bit", []File{{Path: "/log", Mode: fs.ModeAppend | 0o600}}, nil, ward.CodeInvalidArgument, "bits"},
		{"directory with data", []File{{Path: "/d", Mode: fs.ModeDir | 0o755, Data: []byte("x")}}, nil, ward.CodeInvalidArgument, "no data"},
		{"symlink without target", []File{{Path: "/l", Mode: fs.ModeSymlink}}, nil, ward.CodeInvalidArgument, "target"},
		{"negative owner", []File{{Path: "/f", Mode: 0o644, UID: -1}}, nil, ward.CodeInvalidArgument, "owner"},
		{"whiteout name", []File{{Path: "/.wh.task", Mode: 0o644}}, nil, ward.CodeInvalidArgument, "whiteout"},
		{"symlink leaving the root", []File{task, {Path: "/l", Mode: fs.ModeSymlink, Data: []byte("../../x")}}, []string{"/task"}, ward.CodeUnsafeLayer, "leaves the image root"},
		{"no entrypoint", []File{task}, nil, ward.CodeNoCommand, "no command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			entry := tc.entry
			if entry == nil && tc.code != ward.CodeNoCommand {
				entry = []string{"/task"}
			}
			img, err := Build(BuildOptions{Files: tc.files, Entrypoint: entry})
			if err == nil {
				t.Fatalf("Build succeeded: %s", img.Digest)
			}
			if c := codeOf(t, err); c != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %s %q, want %s with %q", c, err, tc.code, tc.msg)
			}
		})
	}
}

// TestBuildEmptyRoot shows a Build with no files still makes an image
// (an empty layer) that unpacks.
func TestBuildEmptyRoot(t *testing.T) {
	t.Parallel()
	img, err := Build(BuildOptions{Entrypoint: []string{"/bin/true"}})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	dir := t.TempDir()
	if err := img.Unpack(context.Background(), dir, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("unpacked %v", entries)
	}
}

func TestBuildArch(t *testing.T) {
	t.Parallel()
	opts := buildOptions()
	opts.Arch = otherArch()
	img, err := Build(opts)
	if err != nil {
		t.Fatalf("Build for %s: %v", opts.Arch, err)
	}
	native, err := Build(buildOptions())
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest == native.Digest {
		t.Errorf("the architecture does not change the digest")
	}
	_, files := readCanonical(t, img.Archive)
	var idx indexJSON
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if p := idx.Manifests[0].Platform; p == nil || p.Architecture != otherArch() {
		t.Errorf("index platform = %+v", p)
	}
	if _, err := Intake(img.Archive, IntakeOptions{}); codeOf(t, err) != ward.CodeInvalidImage || !strings.Contains(err.Error(), otherArch()) {
		t.Errorf("Intake here of an image for %s: %v", otherArch(), err)
	}
	if _, err := Open(img.Archive, img.Digest, IntakeOptions{}); codeOf(t, err) != ward.CodeInvalidImage {
		t.Errorf("Open here of an image for %s: %v", otherArch(), err)
	}
	opts.Arch = "x86-64"
	if _, err := Build(opts); codeOf(t, err) != ward.CodeInvalidArgument {
		t.Errorf("Build for %q: %v", opts.Arch, err)
	}
}
