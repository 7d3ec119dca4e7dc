package client

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestContextRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "nested", "ward", "config.json")
	want := Context{Server: "http://127.0.0.1:8080", Token: testToken}
	if err := SaveContext(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadContext(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("file mode = %o, want 600", m)
	}
	dst, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if m := dst.Mode().Perm(); m != 0o700 {
		t.Errorf("dir mode = %o, want 700", m)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the config (temp file left over?)", len(entries))
	}
}

func TestSaveContextTightensMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"server":"old","token":"old"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SaveContext(path, Context{Server: "http://new", Token: "new"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("file mode = %o, want 600", m)
	}
	got, err := LoadContext(path)
	if err != nil || got.Server != "http://new" {
		t.Errorf("LoadContext = %+v, %v", got, err)
	}
}

func TestSaveContextFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := SaveContext(filepath.Join(blocker, "config.json"), Context{Server: "s", Token: testToken})
	if err == nil {
		t.Fatal("saving under a regular file succeeded")
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error %q contains the token", err)
	}
}

func TestLoadContextErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := LoadContext(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error = %v, want fs.ErrNotExist", err)
	}
	bad := []struct{ name, content string }{
		{"syntax", `{"server":"s","token":"` + testToken},
		{"trailing", `{"server":"s","token":"t"} {"x":1}`},
		{"unknown field", `{"server":"s","token":"t","sever":"x"}`},
		{"wrong type", `{"server":"s","token":["` + testToken + `"]}`},
		{"empty", ``},
		{"not an object", `"` + testToken + `"`},
		{"too big", `{"server":"` + strings.Repeat("a", maxContextFile) + `"}`},
	}
	for _, b := range bad {
		path := filepath.Join(dir, b.name+".json")
		if err := os.WriteFile(path, []byte(b.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadContext(path)
		if err == nil {
			t.Errorf("%s: no error", b.name)
			continue
		}
		if strings.Contains(err.Error(), testToken) {
			t.Errorf("%s: error %q contains the token", b.name, err)
		}
	}
}

func TestDefaultConfigPath(t *testing.T) {
	// Not parallel: it sets HOME.
	t.Setenv("HOME", "/home/someone")
	got, err := DefaultConfigPath("")
	if err != nil {
		t.Fatal(err)
	}
	if got != "/home/someone/.config/ward/config.json" {
		t.Errorf("DefaultConfigPath(\"\") = %q", got)
	}
	got, err = DefaultConfigPath("/etc/ward.json")
	if err != nil || got != "/etc/ward.json" {
		t.Errorf("DefaultConfigPath(env) = %q, %v", got, err)
	}
}
