package image

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

// fuzzOpts keep fuzzed images small.
var fuzzOpts = IntakeOptions{MaxUnpackedBytes: 8 << 20, MaxEntries: 2000}

// checkIntake checks what Intake returned for a fuzzed archive: an error
// is a *ward.Error with one of the image codes and a short message; an
// image round-trips through Intake and Open and unpacks, writing nothing
// outside its directory.
func checkIntake(t *testing.T, archive []byte) {
	img, err := Intake(archive, fuzzOpts)
	if err != nil {
		var we *ward.Error
		if !errors.As(err, &we) {
			t.Fatalf("error %v (%T) is not a *ward.Error", err, err)
		}
		switch we.Code {
		case ward.CodeInvalidImage, ward.CodeDigestMismatch, ward.CodeUnsafeLayer, ward.CodeNoCommand:
		default:
			t.Fatalf("code %s: %v", we.Code, err)
		}
		if len(we.Message) > 300 {
			t.Fatalf("message of %d bytes: %q", len(we.Message), we.Message)
		}
		return
	}
	if _, ok := ward.DigestHex(img.Digest); !ok {
		t.Fatalf("Digest %q", img.Digest)
	}
	opened, err := Open(img.Archive, img.Digest, fuzzOpts)
	if err != nil {
		t.Fatalf("Open of Intake's archive: %v", err)
	}
	if opened.Digest != img.Digest || !reflect.DeepEqual(opened.Config, img.Config) {
		t.Fatalf("Open = %s %+v, Intake = %s %+v", opened.Digest, opened.Config, img.Digest, img.Config)
	}
	again, err := Intake(img.Archive, fuzzOpts)
	if err != nil || again.Digest != img.Digest || string(again.Archive) != string(img.Archive) {
		t.Fatalf("Intake of the canonical archive: %v", err)
	}
	parent := t.TempDir()
	rootfs, outside := filepath.Join(parent, "rootfs"), filepath.Join(parent, "outside")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := opened.Unpack(context.Background(), rootfs, UnpackOptions{}); err != nil {
		t.Fatalf("Unpack of an accepted image: %v", err)
	}
	if entries, err := os.ReadDir(outside); err != nil || len(entries) != 0 {
		t.Fatalf("Unpack wrote outside its directory: %v %v", entries, err)
	}
	if entries, err := os.ReadDir(parent); err != nil || len(entries) != 2 {
		t.Fatalf("Unpack wrote beside its directory: %v %v", entries, err)
	}
}

func FuzzIntake(f *testing.F) {
	basic, motd := basicLayer(f), motdLayer(f)
	add := func(b []byte, _ string) { f.Add(b) }
	add(ociImage{layers: [][]byte{basic, motd}, gzip: true}.archive(f))
	add(ociImage{layers: [][]byte{basic}}.archive(f))
	add(dockerImage{layers: [][]byte{basic, motd, motd}}.archive(f))
	add(dockerImage{layers: [][]byte{motd}, blobs: true, gzip: true}.archive(f))
	add(dockerImage{layers: [][]byte{basic}, blobs: true, withOCI: true}.archive(f))
	files := map[string][]byte{}
	other := ociImage{layers: [][]byte{motd}, arch: otherArch(), platform: true}.manifestOf(f, files)
	ours := ociImage{layers: [][]byte{basic}, platform: true}.manifestOf(f, files)
	f.Add(archiveOf(f, layoutFiles(f, files, other, ours)))
	built, err := Build(BuildOptions{Files: []File{{Path: "/task", Mode: 0o755, Data: []byte("x")}}, Entrypoint: []string{"/task"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(built.Archive)
	f.Add([]byte("not a tar"))
	f.Add(tarOf(f))
	add(ociImage{layers: [][]byte{tarOf(f, file("../etc/passwd", "x"))}}.archive(f))
	add(ociImage{layers: [][]byte{tarOf(f, symlink("x", "../../.."))}}.archive(f))
	f.Fuzz(func(t *testing.T, archive []byte) {
		checkIntake(t, archive)
	})
}

// FuzzLayers fuzzes the layer tars themselves: it wraps two fuzzed byte
// strings as the uncompressed layers of an otherwise valid image, so that
// the digests always match and every input reaches the layer checks.
func FuzzLayers(f *testing.F) {
	f.Add(basicLayer(f), motdLayer(f))
	f.Add(
		tarOf(f, dir("a/"), file("a/x", "1"), file("b", "2"), dir("c/"), file("c/old", "o"), symlink("l", "a/x"), hardlink("h", "b")),
		tarOf(f, file("a/.wh.x", ""), file("c/.wh..wh..opq", ""), file("c/new", "n"), dir("b/"), file("l", "now"), hardlink("h2", "h")),
	)
	f.Add(tarOf(f, symlink("link", "/etc")), tarOf(f, file("link/passwd", "x")))
	f.Add(tarOf(f, file("x", "1"), hardlink("y", "x")), tarOf(f, file(".wh.x", ""), hardlink("z", "y")))
	f.Add(tarOf(f, ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666}), tarOf(f))
	f.Add(tarOf(f, file("/abs/./name", "x"), file("a/../b", "y")), tarOf(f, dir(".wh..wh.plnk/"), file(".wh..wh..opq", "")))
	f.Fuzz(func(t *testing.T, l1, l2 []byte) {
		a, _ := ociImage{layers: [][]byte{l1, l2}}.archive(t)
		checkIntake(t, a)
	})
}

func FuzzResolveUser(f *testing.F) {
	f.Add("app:staff", []byte(testPasswd), []byte(testGroup))
	f.Add("1000", []byte(testPasswd), []byte(nil))
	f.Add("root", []byte(nil), []byte(nil))
	f.Add("1:2", []byte("x:x:1:1\n"), []byte("g:x:2:\n"))
	f.Add(":", []byte("::::\n"), []byte(":::\n"))
	f.Add("0000000000000000"+strings.Repeat("\x8a", 200), []byte("0"), []byte("0")) // a long unprintable name
	f.Fuzz(func(t *testing.T, user string, passwd, group []byte) {
		read := func(name string) ([]byte, error) {
			if name == "etc/passwd" {
				return passwd, nil
			}
			return group, nil
		}
		uid, gid, err := resolveUser(user, read)
		if err != nil {
			var we *ward.Error
			if !errors.As(err, &we) || we.Code != ward.CodeInvalidImage || len(we.Message) > 300 {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		if uid > maxID || gid > maxID {
			t.Fatalf("%q gave %d:%d", user, uid, gid)
		}
		if user == "" && (uid != 0 || gid != 0) {
			t.Fatalf("\"\" gave %d:%d", uid, gid)
		}
		// Numeric ids are taken as they are, whatever the files say.
		var u, g uint64
		if n, err := parseNumericPair(user); err == nil {
			u, g = n[0], n[1]
			if uint64(uid) != u || uint64(gid) != g {
				t.Fatalf("%q gave %d:%d", user, uid, gid)
			}
		}
	})
}

// parseNumericPair parses "N:M" of two decimal numbers.
func parseNumericPair(s string) ([2]uint64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			a, err1 := strconv.ParseUint(s[:i], 10, 32)
			b, err2 := strconv.ParseUint(s[i+1:], 10, 32)
			if err1 != nil || err2 != nil || s[:i] == "" || s[:i][0] == '+' || s[i+1:][0] == '+' {
				return [2]uint64{}, errors.New("not a pair")
			}
			return [2]uint64{a, b}, nil
		}
	}
	return [2]uint64{}, errors.New("not a pair")
}
