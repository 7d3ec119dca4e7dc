package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawImage makes an Image straight from uncompressed layer tars, without
// Intake's checks, to show what Unpack does on its own.
func rawImage(t *testing.T, layers ...[]byte) *Image {
	t.Helper()
	img := &Image{}
	for _, data := range layers {
		l := layer{data: data}
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			wk, target, _ := whiteoutOf(path.Clean(strings.TrimLeft(hdr.Name, "/")))
			switch wk {
			case whFile:
				l.whiteouts = append(l.whiteouts, target)
			case whDir:
				l.opaques = append(l.opaques, target)
			}
		}
		img.layers = append(img.layers, l)
	}
	return img
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestUnpackLayers(t *testing.T) {
	t.Parallel()
	l1 := tarOf(t,
		dir("a/"), file("a/x", "x1"), file("a/y", "y1"), dir("a/sub/"), file("a/sub/z", "z1"),
		file("b", "b1"),
		dir("c/"), file("c/old", "old"),
		file("d", "d1"),
		dir("e/"), file("e/keep", "keep"),
		dir("f/"), file("f/g", "g"),
		dir("bin/"), ent{name: "bin/su", typ: tar.TypeReg, body: "su", mode: 0o4755},
		ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "shared/", typ: tar.TypeDir, mode: 0o2775},
		file("h", "h1"),
		ent{name: "ro/", typ: tar.TypeDir, mode: 0o555}, ent{name: "ro/inside", typ: tar.TypeReg, body: "i", mode: 0o400},
		dir(".wh..wh.plnk/"), file(".wh..wh.plnk/1.2", "aufs"), file(".wh..wh.aufs", ""),
		symlink("l", "a/y"), hardlink("hl", "h"), symlink("abs", "/etc"),
		file("/rooted/file", "absolute name"),
		file("implicit/parents/file", "p"),
		dir("w/"), file("w/old", "o"),
		symlink("lk", "/etc"),
	)
	l2 := tarOf(t,
		file("a/.wh.x", ""),
		file("c/.wh..wh..opq", ""), file("c/new", "new"), // marker before the layer's own entries
		file("e/new", "new"), file("e/.wh..wh..opq", ""), // and after
		dir("d/"), file("d/inside", "in"), // a directory replaces a file
		file("f", "now a file"), // a file replaces a directory
		file("b", "b2"),
		ent{name: "a/", typ: tar.TypeDir, mode: 0o700},      // a directory over a directory keeps its entries
		file("gone/.wh.nothing", ""),                        // a whiteout of nothing
		dir("lk/"), file("lk/f", "through a directory now"), // a directory replaces a symlink
	)
	l3 := tarOf(t,
		file(".wh.b", ""),
		hardlink("hl2", "a/y"),
		file("ro/inside2", "j"),
		file(".wh.l", ""), symlink("l", "a/sub/z"),
		file("w/new", "n"), file(".wh.w", ""), // removes the lower w only
	)
	archive, _ := ociImage{layers: [][]byte{l1, l2, l3}, gzip: true}.archive(t)
	img, err := Intake(archive, IntakeOptions{})
	if err != nil {
		t.Fatalf("Intake: %v", err)
	}
	dir := t.TempDir()
	if err := img.Unpack(context.Background(), dir, UnpackOptions{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	got := readTree(t, dir)
	want := map[string]string{
		"a": "/", "a/y": "y1", "a/sub": "/", "a/sub/z": "z1",
		"c": "/", "c/new": "new",
		"d": "/", "d/inside": "in",
		"e": "/", "e/new": "new",
		"f":   "now a file",
		"bin": "/", "bin/su": "su",
		"tmp": "/", "shared": "/",
		"h":  "h1",
		"ro": "/", "ro/inside": "i", "ro/inside2": "j",
		"l": "-> a/sub/z", "hl": "h1", "hl2": "y1", "abs": "-> /etc",
		"rooted": "/", "rooted/file": "absolute name",
		"implicit": "/", "implicit/parents": "/", "implicit/parents/file": "p",
		// no "gone": a whiteout does not make its directory
		"w": "/", "w/new": "n",
		"lk": "/", "lk/f": "through a directory now",
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s = %q, want %q", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected %s (%q)", p, got[p])
		}
	}
	modes := map[string]fs.FileMode{
		"bin/su":    0o755 | fs.ModeSetuid,
		"tmp":       fs.ModeDir | 0o777 | fs.ModeSticky,
		"shared":    fs.ModeDir | 0o775 | fs.ModeSetgid,
		"ro":        fs.ModeDir | 0o555,
		"ro/inside": 0o400,
		"a":         fs.ModeDir | 0o700,
		"implicit":  fs.ModeDir | 0o755,
		"a/y":       0o644,
	}
	for p, w := range modes {
		if m := mode(t, filepath.Join(dir, p)); m != w {
			t.Errorf("mode of %s = %v, want %v", p, m, w)
		}
	}
	same := func(a, b string) {
		fa, err1 := os.Stat(filepath.Join(dir, a))
		fb, err2 := os.Stat(filepath.Join(dir, b))
		if err1 != nil || err2 != nil || !os.SameFile(fa, fb) {
			t.Errorf("%s and %s are not one file", a, b)
		}
	}
	same("hl", "h")
	same("hl2", "a/y")
	fi, err := os.Stat(filepath.Join(dir, "a/y"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(time.Unix(1700000000, 0)) {
		t.Errorf("mtime of a/y = %v", fi.ModTime())
	}
	fi, err = os.Stat(filepath.Join(dir, "a/sub"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(time.Unix(1700000000, 0)) {
		t.Errorf("mtime of directory a/sub = %v", fi.ModTime())
	}
}

func TestUnpackChown(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("setting owners needs root; this test runs as uid", os.Geteuid())
	}
	const shift = 100000
	l := tarOf(t,
		ent{name: "home/app/", typ: tar.TypeDir, mode: 0o2750, uid: 1000, gid: 1000},
		ent{name: "home/app/tool", typ: tar.TypeReg, body: "x", mode: 0o6755, uid: 1000, gid: 2000},
		ent{name: "home/app/link", typ: tar.TypeSymlink, link: "tool", uid: 1001, gid: 1002},
		ent{name: "usr/bin/passwd", typ: tar.TypeReg, body: "p", mode: 0o4755},
	)
	archive, _ := ociImage{layers: [][]byte{l}, gzip: true}.archive(t)
	img, err := Intake(archive, IntakeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := img.Unpack(context.Background(), dir, UnpackOptions{IDShift: shift, Chown: true}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	cases := []struct {
		path     string
		uid, gid uint32
		mode     fs.FileMode
	}{
		{".", shift, shift, 0},
		{"home", shift, shift, fs.ModeDir | 0o755},
		{"usr/bin", shift, shift, fs.ModeDir | 0o755},
		{"home/app", shift + 1000, shift + 1000, fs.ModeDir | 0o750 | fs.ModeSetgid},
		{"home/app/tool", shift + 1000, shift + 2000, 0o755 | fs.ModeSetuid | fs.ModeSetgid},
		{"home/app/link", shift + 1001, shift + 1002, fs.ModeSymlink | 0o777},
		{"usr/bin/passwd", shift, shift, 0o755 | fs.ModeSetuid},
	}
	for _, c := range cases {
		fi, err := os.Lstat(filepath.Join(dir, c.path))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s is owned by %d:%d, want %d:%d", c.path, st.Uid, st.Gid, c.uid, c.gid)
		}
		if c.mode != 0 && fi.Mode() != c.mode {
			t.Errorf("mode of %s = %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}

	// An id that the shift would carry past the top is refused.
	big := tarOf(t, ent{name: "f", typ: tar.TypeReg, mode: 0o644, uid: maxID - 5})
	if err := rawImage(t, big).Unpack(context.Background(), t.TempDir(), UnpackOptions{IDShift: 10, Chown: true}); err == nil {
		t.Errorf("Unpack shifted uid %d past the top", maxID-5)
	}
}

// TestUnpackConfinement gives Unpack layers Intake would refuse, to show
// that its os.Root keeps every write inside the target directory.
func TestUnpackConfinement(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		layers  func(outside string) [][]byte
		succeed bool // Unpack may succeed (the entry replaces the link)
	}{
		{"write through an absolute link", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("esc", o)), tarOf(t, file("esc/pwned", "x"))}
		}, false},
		{"write through a relative link", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("up", "../"+filepath.Base(o))), tarOf(t, file("up/pwned", "x"))}
		}, false},
		{"directory through a link", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("esc", o)), tarOf(t, dir("esc/sub/"))}
		}, false},
		{"symlink through a link", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("esc", o)), tarOf(t, symlink("esc/l", "/"))}
		}, false},
		{"hard link through a link", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("esc", o), file("f", "x")), tarOf(t, hardlink("esc/h", "f"))}
		}, false},
		{"hard link to a file outside", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("esc", o)), tarOf(t, hardlink("h", "esc/secret"))}
		}, false},
		{"whiteout through a link", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("esc", o)), tarOf(t, file("esc/.wh.secret", ""))}
		}, false},
		{"opaque marker through a link", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("esc", o)), tarOf(t, file("esc/.wh..wh..opq", ""))}
		}, true},
		{"dot-dot name", func(o string) [][]byte {
			return [][]byte{tarOf(t, file("../"+filepath.Base(o)+"/pwned", "x"))}
		}, false},
		{"file over a link to a file outside", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("f", filepath.Join(o, "secret"))), tarOf(t, file("f", "replaced"))}
		}, true},
		{"directory over a link to outside", func(o string) [][]byte {
			return [][]byte{tarOf(t, symlink("d", o)), tarOf(t, ent{name: "d/", typ: tar.TypeDir, mode: 0o777})}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			outside := filepath.Join(parent, "outside")
			rootfs := filepath.Join(parent, "rootfs")
			for _, d := range []string{outside, rootfs} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("untouched"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := rawImage(t, tc.layers(outside)...).Unpack(context.Background(), rootfs, UnpackOptions{Chown: os.Geteuid() == 0})
			t.Logf("Unpack: %v", err)
			if err == nil && !tc.succeed {
				t.Errorf("Unpack succeeded")
			}
			if err != nil && tc.succeed {
				t.Errorf("Unpack: %v", err)
			}
			entries, rerr := os.ReadDir(outside)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(entries) != 1 || entries[0].Name() != "secret" {
				t.Errorf("outside holds %v", entries)
			}
			b, rerr := os.ReadFile(filepath.Join(outside, "secret"))
			fi, serr := os.Stat(outside)
			if rerr != nil || string(b) != "untouched" || serr != nil || fi.Mode() != fs.ModeDir|0o755 {
				t.Errorf("outside was changed: %q %v %v %v", b, rerr, serr, fi.Mode())
			}
		})
	}
}

// TestUnpackEtcLink shows both halves of the rule for an absolute link to
// /etc: Intake keeps the link, and a later write through it is refused by
// Intake and, without Intake, stays inside the target directory.
func TestUnpackEtcLink(t *testing.T) {
	t.Parallel()
	link := tarOf(t, symlink("etc", "/etc"), file("bin/task", "x"))
	archive, _ := ociImage{layers: [][]byte{link}}.archive(t)
	img, err := Intake(archive, IntakeOptions{})
	if err != nil {
		t.Fatalf("Intake of a link to /etc: %v", err)
	}
	dir := t.TempDir()
	if err := img.Unpack(context.Background(), dir, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "etc")); err != nil || target != "/etc" {
		t.Errorf("etc -> %q (%v)", target, err)
	}

	name := "ward-image-test-" + filepath.Base(t.TempDir())
	through := tarOf(t, file("etc/"+name, "pwned"))
	archive, _ = ociImage{layers: [][]byte{link, through}}.archive(t)
	if _, err := Intake(archive, IntakeOptions{}); err == nil || !strings.Contains(err.Error(), "through the symlink") {
		t.Errorf("Intake of a write through the link: %v", err)
	}
	err = rawImage(t, link, through).Unpack(context.Background(), t.TempDir(), UnpackOptions{})
	if _, serr := os.Lstat("/etc/" + name); serr == nil {
		os.Remove("/etc/" + name)
		t.Fatalf("Unpack wrote /etc/%s", name)
	}
	if err == nil {
		t.Errorf("Unpack of a write through /etc succeeded")
	}
}

func TestUnpackTargetDirectory(t *testing.T) {
	t.Parallel()
	img, err := Build(BuildOptions{Files: []File{{Path: "/task", Mode: 0o755, Data: []byte("x")}}, Entrypoint: []string{"/task"}})
	if err != nil {
		t.Fatal(err)
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "there"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := img.Unpack(context.Background(), full, UnpackOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Unpack into a non-empty directory: %v", err)
	}
	if err := img.Unpack(context.Background(), filepath.Join(full, "missing"), UnpackOptions{}); err == nil {
		t.Errorf("Unpack into a missing directory succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	empty := t.TempDir()
	if err := img.Unpack(ctx, empty, UnpackOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Unpack with a cancelled context: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("Unpack with a cancelled context wrote %v", entries)
	}
}
