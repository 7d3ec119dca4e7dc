package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

func TestLoadOrCreateKeyCreates(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state", "keys")
	path := filepath.Join(dir, "signing.pem")

	key, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(key) != ed25519.PrivateKeySize {
		t.Fatalf("key has %d bytes", len(key))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %04o, want 0600", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("key directory mode %04o, want 0700", perm)
	}
	// No temporary file is left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("key directory holds %d entries, want 1", len(entries))
	}

	// A second call loads the same key instead of making a new one.
	again, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !key.Equal(again) {
		t.Fatal("reloading returned a different key")
	}
	// The key signs and its public half verifies.
	msg := []byte("m")
	if !ed25519.Verify(again.Public().(ed25519.PublicKey), msg, ed25519.Sign(key, msg)) {
		t.Fatal("created key does not round-trip")
	}
}

func writePEM(t *testing.T, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
}

func TestLoadOrCreateKeyLoadsExisting(t *testing.T) {
	t.Parallel()
	_, want, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		path := filepath.Join(t.TempDir(), "k.pem")
		writePEM(t, path, "PRIVATE KEY", der, mode)
		got, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatalf("mode %04o: %v", mode, err)
		}
		if !want.Equal(got) {
			t.Fatalf("mode %04o: loaded a different key", mode)
		}
	}
}

func TestLoadOrCreateKeyRefusesLooseMode(t *testing.T) {
	t.Parallel()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o620, 0o602} {
		path := filepath.Join(t.TempDir(), "k.pem")
		writePEM(t, path, "PRIVATE KEY", der, mode)
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = LoadOrCreateKey(path)
		if ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Fatalf("mode %04o: err = %v, want invalid_argument", mode, err)
		}
		if !strings.Contains(err.Error(), "group or others") || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: unclear error %q", mode, err)
		}
		// The file is left alone: not replaced, not "fixed".
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("mode %04o: key file changed", mode)
		}
	}
}

func TestLoadOrCreateKeyRejectsBadContent(t *testing.T) {
	t.Parallel()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edDER, err := x509.MarshalPKCS8PrivateKey(ed)
	if err != nil {
		t.Fatal(err)
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER})
	tests := map[string][]byte{
		"empty":          nil,
		"not pem":        []byte("hello"),
		"wrong type":     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: edDER}),
		"ecdsa key":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}),
		"garbage der":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not der")}),
		"trailing data":  append(append([]byte{}, good...), "junk"...),
		"two keys":       append(append([]byte{}, good...), good...),
		"too large file": bytes.Repeat([]byte{' '}, maxKeyFileSize+1),
	}
	for name, data := range tests {
		path := filepath.Join(t.TempDir(), "k.pem")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKey(path)
		if ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Errorf("%s: err = %v, want invalid_argument", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "MC4CAQAw") { // base64 prefix of an Ed25519 PKCS#8 key
			t.Errorf("%s: error echoes key material", name)
		}
	}
}

func TestLoadOrCreateKeyRejectsDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k.pem")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); ward.CodeOf(err) != ward.CodeInvalidArgument {
		t.Fatalf("err = %v, want invalid_argument", err)
	}
}

func TestLoadOrCreateKeyUnwritableDirectory(t *testing.T) {
	t.Parallel()
	// The parent "directory" is a regular file, so nothing can be created.
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(filepath.Join(parent, "k.pem")); err == nil {
		t.Fatal("created a key under a regular file")
	}
}

func FuzzParseKey(f *testing.F) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parseKey(data)
		if err != nil {
			if key != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		if len(key) != ed25519.PrivateKeySize {
			t.Fatalf("accepted a key of %d bytes", len(key))
		}
	})
}
