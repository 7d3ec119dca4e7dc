package seal

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

func TestRootKeyFileCreateAndLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "root.key")
	k1, err := LoadOrCreateRootKeyFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("key file mode = %04o, want 0600", got)
	}
	k2, err := LoadOrCreateRootKeyFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID() != k2.ID() {
		t.Fatalf("reloaded key id %s, want %s", k2.ID(), k1.ID())
	}
	ad := []byte("ad")
	ct, err := k1.Wrap([]byte("secret"), ad)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := k2.Unwrap(ct, ad)
	if err != nil || string(pt) != "secret" {
		t.Fatalf("Unwrap = %q, %v", pt, err)
	}
	if _, err := k2.Unwrap(ct, []byte("other")); err == nil {
		t.Fatal("Unwrap with other associated data succeeded")
	}
	// create=true on an existing file loads it, never replaces it.
	k3, err := LoadOrCreateRootKeyFile(path, true)
	if err != nil || k3.ID() != k1.ID() {
		t.Fatalf("second create: id %v, err %v", k3, err)
	}
}

func TestRootKeyFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	if _, err := LoadOrCreateRootKeyFile(good, true); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		want ward.Code
	}{
		{"missing, create=false", filepath.Join(dir, "missing.key"), CodeRootKeyMissing},
		{"group readable", write("group.key", content, 0o640), CodeInsecureKeyFile},
		{"world readable", write("world.key", content, 0o604), CodeInsecureKeyFile},
		{"garbage", write("garbage.key", []byte("not a keyset"), 0o600), CodeInvalidRootKey},
		{"empty", write("empty.key", nil, 0o600), CodeInvalidRootKey},
		{"directory", dir, CodeInvalidRootKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadOrCreateRootKeyFile(tt.path, false)
			if got := ward.CodeOf(err); got != tt.want {
				t.Fatalf("code = %s (%v), want %s", got, err, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.key")); !os.IsNotExist(err) {
		t.Fatalf("create=false created the key file: %v", err)
	}
}

func TestRootKeyFromEnv(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "root.key")
	fk, err := LoadOrCreateRootKeyFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := RootKeyFromEnv(base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ek.ID() != fk.ID() {
		t.Fatalf("env key id %s, file key id %s", ek.ID(), fk.ID())
	}
	ct, err := fk.Wrap([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := ek.Unwrap(ct, nil); err != nil || !bytes.Equal(pt, []byte("x")) {
		t.Fatalf("env key cannot unwrap the file key's output: %v", err)
	}

	const secretish = "c2VjcmV0LXZhbHVlLW5vdC1hLWtleXNldA=="
	tests := []struct {
		name, value string
		want        ward.Code
	}{
		{"empty", "", CodeRootKeyMissing},
		{"bad base64", "%%%not-base64", CodeInvalidRootKey},
		{"not a keyset", secretish, CodeInvalidRootKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := RootKeyFromEnv(tt.value)
			if got := ward.CodeOf(err); got != tt.want {
				t.Fatalf("code = %s (%v), want %s", got, err, tt.want)
			}
			if tt.value != "" && strings.Contains(err.Error(), tt.value) {
				t.Fatalf("error echoes the key value: %v", err)
			}
		})
	}
}
