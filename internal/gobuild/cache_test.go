package gobuild

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCacheKey(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "mod")
	lib := filepath.Join(base, "lib")
	writeTree(t, root, map[string]string{
		"go.mod":               "module example.com/app\n\ngo 1.22\n\nreplace example.com/lib => ../lib\n",
		"go.sum":               "",
		"cmd/app/main.go":      "package main\n\nimport _ \"embed\"\n\n//go:embed data.txt static\nvar data string\n",
		"cmd/app/data.txt":     "data",
		"cmd/app/static/a.css": "a{}",
		"README.md":            "# app\n",
		"app.bin":              "\x7fELF",
		".git/HEAD":            "ref: refs/heads/main\n",
		"nested/go.mod":        "module example.com/nested\n",
		"nested/x.go":          "package nested\n",
		"cache/old.wasm":       "\x00asm",
		"internal/pkg/pkg.go":  "package pkg\n",
	})
	writeTree(t, lib, map[string]string{"go.mod": "module example.com/lib\n", "lib.go": "package lib\n"})

	in := keyInputs{
		version: "go version go1.26.0 linux/amd64",
		env:     []string{"PATH=/bin", "GOFLAGS=-mod=mod"},
		root:    root,
		dir:     filepath.Join(root, "cmd", "app"),
		skip:    filepath.Join(root, "cache"),
	}
	key := func(in keyInputs) string {
		t.Helper()
		k, err := cacheKey(in)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k0 := key(in)
	if len(k0) != 64 || strings.Trim(k0, "0123456789abcdef") != "" {
		t.Fatalf("key %q is not hex SHA-256", k0)
	}
	if key(in) != k0 {
		t.Fatal("key is not stable")
	}

	// Changes that must not change the key.
	unchanged := []struct {
		name string
		edit func()
	}{
		{"git metadata", func() { writeTree(t, root, map[string]string{".git/HEAD": "other"}) }},
		{"nested module", func() { writeTree(t, root, map[string]string{"nested/x.go": "package nested // edited\n"}) }},
		{"cache dir", func() { writeTree(t, root, map[string]string{"cache/new.wasm": "x"}) }},
		{"unrelated env", func() { in.env = append(in.env, "HOME=/elsewhere") }},
		{"binary outside embed dirs", func() { writeTree(t, root, map[string]string{"app.bin": "\x7fELF v2", "internal/pkg/notes.txt": "x"}) }},
		{"document", func() { writeTree(t, root, map[string]string{"README.md": "# app v2\n"}) }},
	}
	for _, c := range unchanged {
		c.edit()
		if got := key(in); got != k0 {
			t.Errorf("%s: key changed", c.name)
		}
	}

	// Changes that must change the key; each is kept, so keys must all differ.
	seen := map[string]string{k0: "initial"}
	changed := []struct {
		name string
		edit func()
	}{
		{"embeddable file", func() { writeTree(t, root, map[string]string{"cmd/app/data.txt": "data v2"}) }},
		{"embeddable file below", func() { writeTree(t, root, map[string]string{"cmd/app/static/a.css": "a{color:red}"}) }},
		{"go source", func() { writeTree(t, root, map[string]string{"cmd/app/main.go": "package main // v2\n"}) }},
		{"vendor", func() { writeTree(t, root, map[string]string{"vendor/modules.txt": "# x v1\n"}) }},
		{"assembly", func() { writeTree(t, root, map[string]string{"internal/pkg/f_wasm.s": "TEXT ·f(SB)\n"}) }},
		{"new file", func() { writeTree(t, root, map[string]string{"internal/pkg/more.go": "package pkg\n"}) }},
		{"removed file", func() {
			if err := os.Remove(filepath.Join(root, "internal", "pkg", "pkg.go")); err != nil {
				t.Fatal(err)
			}
		}},
		{"renamed file", func() {
			if err := os.Rename(filepath.Join(root, "internal", "pkg", "more.go"), filepath.Join(root, "internal", "pkg", "other.go")); err != nil {
				t.Fatal(err)
			}
		}},
		{"go.sum", func() { writeTree(t, root, map[string]string{"go.sum": "example.com/z v1.0.0 h1:abc=\n"}) }},
		{"replaced module", func() { writeTree(t, lib, map[string]string{"lib.go": "package lib // v2\n"}) }},
		{"go version", func() { in.version = "go version go1.26.1 linux/amd64" }},
		{"GOFLAGS", func() { in.env = append(in.env, "GOFLAGS=-tags=x") }},
		{"GOEXPERIMENT", func() { in.env = append(in.env, "GOEXPERIMENT=foo") }},
		{"package path", func() { in.dir = filepath.Join(root, "internal", "pkg") }},
	}
	for _, c := range changed {
		c.edit()
		got := key(in)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: key equals the key after %q", c.name, prev)
		}
		seen[got] = c.name
	}

	// main.go no longer embeds anything, so its directory's data files no
	// longer count.
	before := key(in)
	writeTree(t, root, map[string]string{"cmd/app/data.txt": "data v3"})
	if key(in) != before {
		t.Error("a file in a directory without //go:embed changed the key")
	}
}

func TestCacheKeyMissingReplaceDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"go.mod": "module m\n\nreplace x => ./missing\n", "main.go": "package main\n"})
	if _, err := cacheKey(keyInputs{root: root, dir: root}); err == nil {
		t.Error("want an error for a replace target that does not exist")
	}
}

func TestCacheKeySymlinks(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"go.mod": "module m\n", "real.go": "package one"})
	if err := os.Symlink("real.go", filepath.Join(root, "link.go")); err != nil {
		t.Skipf("skipping: cannot make symlinks: %v", err)
	}
	if err := os.Symlink("nowhere", filepath.Join(root, "dangling.go")); err != nil {
		t.Fatal(err)
	}
	in := keyInputs{root: root, dir: root}
	k1, err := cacheKey(in)
	if err != nil {
		t.Fatalf("cacheKey with symlinks: %v", err)
	}
	writeTree(t, root, map[string]string{"real.go": "package two"})
	k2, err := cacheKey(in)
	if err != nil {
		t.Fatal(err)
	}
	if k1 == k2 {
		t.Error("key did not change with the content of a file")
	}
}

func TestLocalReplaces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		gomod string
		want  []string
	}{
		{"none", "module m\n\ngo 1.22\n", nil},
		{"single relative", "module m\nreplace example.com/a => ../a\n", []string{"../a"}},
		{"single dot-slash", "module m\nreplace example.com/a v1.2.3 => ./vendor/a // local\n", []string{"./vendor/a"}},
		{"absolute", "module m\nreplace example.com/a => /src/a\n", []string{"/src/a"}},
		{"module target", "module m\nreplace example.com/a => example.com/b v1.0.0\n", nil},
		{"module path that looks relative is not", "module m\nreplace example.com/a => example.com/b\n", nil},
		{"quoted", "module m\nreplace \"example.com/a\" => \"../quoted dir\"\n", []string{"../quoted dir"}},
		{"block", "module m\n\nreplace (\n\texample.com/a => ../a\n\t// example.com/c => ../c\n\texample.com/b v1 => example.com/bb v2\n\texample.com/d => ./d\n)\n\nrequire x v1\n", []string{"../a", "./d"}},
		{"duplicates", "module m\nreplace a => ../a\nreplace b => ../a\n", []string{"../a"}},
		{"commented out", "module m\n// replace a => ../a\n", nil},
		{"replacement keyword as prefix", "module m\nreplacements a => ../a\n", nil},
		{"require block untouched", "module m\nrequire (\n\ta => ../a\n)\n", nil},
		{"dot", "module m\nreplace a => .\n", []string{"."}},
		{"no arrow", "module m\nreplace a ../a\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := localReplaces([]byte(tt.gomod))
			if !slices.Equal(got, tt.want) {
				t.Errorf("localReplaces = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzLocalReplaces(f *testing.F) {
	f.Add([]byte("module m\nreplace a => ../a\n"))
	f.Add([]byte("replace (\n a => ./b\n c v1 => d v2\n)\n"))
	f.Add([]byte("replace \"a\" => \"../\\x\"\nreplace `b` => `/c`\n"))
	f.Add([]byte("replace(\n)\nreplace\n=>\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := localReplaces(data)
		seen := map[string]bool{}
		for _, p := range got {
			if !isLocalPath(p) {
				t.Fatalf("%q is not a local path", p)
			}
			if seen[p] {
				t.Fatalf("%q listed twice", p)
			}
			seen[p] = true
		}
	})
}

func TestCompilerMessage(t *testing.T) {
	t.Parallel()
	line := "./main.go:3:2: undefined: x\n"
	long := strings.Repeat(line, 500)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "  \n", "(no compiler output)"},
		{"short", "# example.com/m\n" + line, "# example.com/m\n" + strings.TrimSpace(line)},
	}
	for _, tt := range tests {
		if got := compilerMessage(tt.in); got != tt.want {
			t.Errorf("%s: compilerMessage = %q, want %q", tt.name, got, tt.want)
		}
	}
	got := compilerMessage(long)
	if len(got) > maxErrorMessage {
		t.Errorf("long output kept %d bytes, cap %d", len(got), maxErrorMessage)
	}
	if !strings.HasSuffix(got, "\n…") {
		t.Errorf("cut message lacks the marker: %q", got[len(got)-20:])
	}
	body := strings.TrimSuffix(got, "\n…")
	if !strings.HasPrefix(long, body) || strings.Count(body, "\n")+1 != strings.Count(body, "undefined") {
		t.Error("long output not cut at a line boundary")
	}
}

func FuzzCompilerMessage(f *testing.F) {
	f.Add("./main.go:1:1: x")
	f.Add(strings.Repeat("é", 3000))
	f.Add(strings.Repeat("a\n", 2000))
	f.Fuzz(func(t *testing.T, s string) {
		got := compilerMessage(s)
		if len(got) > maxErrorMessage {
			t.Fatalf("message of %d bytes exceeds %d", len(got), maxErrorMessage)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("cut split a rune: %q", got)
		}
		if body := strings.TrimSuffix(got, "\n…"); body != got && !strings.HasPrefix(strings.TrimSpace(s), body) {
			t.Fatalf("cut message is not a prefix of the output")
		}
	})
}

func BenchmarkCacheKey(b *testing.B) {
	root := b.TempDir()
	files := map[string]string{"go.mod": "module m\n", "go.sum": strings.Repeat("x", 10<<10)}
	src := "package p\n\n" + strings.Repeat("// filler line of source code\n", 70)
	for i := range 500 {
		files[filepath.ToSlash(filepath.Join("pkg", string(rune('a'+i%20)), "f"+strconv.Itoa(i)+".go"))] = src
		files["docs/d"+strconv.Itoa(i)+".md"] = src // not a build input: listed, never read
	}
	writeTree(b, root, files)
	in := keyInputs{version: "go version go1.26.0 linux/amd64", root: root, dir: root}
	for b.Loop() {
		if _, err := cacheKey(in); err != nil {
			b.Fatal(err)
		}
	}
}
