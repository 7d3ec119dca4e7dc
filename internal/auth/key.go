package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wardhq/ward"
)

// maxKeyFileSize bounds how much of a key file is read; a PEM Ed25519 key is
// about 120 bytes.
const maxKeyFileSize = 64 << 10

const pemTypePKCS8 = "PRIVATE KEY"

// LoadOrCreateKey returns the Ed25519 token-signing key stored at path as a
// PEM-encoded PKCS#8 private key. When the file does not exist it generates a
// key with crypto/rand and writes it with mode 0600, creating the parent
// directory with mode 0700. It refuses a key file that group or others may
// access, a file that is not a regular file, and any content other than one
// PKCS#8 Ed25519 key; those errors are invalid_argument *ward.Error values.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := loadKey(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return createKey(path)
}

// LoadKey returns the signing key at path like LoadOrCreateKey, but a
// missing file is an error: servers of a cluster share the key that
// `ward server init` made, so none may make its own.
func LoadKey(path string) (ed25519.PrivateKey, error) { return loadKey(path) }

func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: open signing key: %w", err)
	}
	defer f.Close()
	// Check the opened file, not the path, so the checks and the read see the
	// same file.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth: stat signing key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "auth: signing key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, ward.Errorf(ward.CodeInvalidArgument,
			"auth: signing key %s is accessible by group or others (mode %04o); restrict it with chmod 600", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: read signing key: %w", err)
	}
	if len(data) > maxKeyFileSize {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "auth: signing key %s is too large to be a key", path)
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "auth: signing key %s: %s", path, err)
	}
	return key, nil
}

// parseKey decodes exactly one PEM PKCS#8 Ed25519 private key. Its errors
// never include the file's content.
func parseKey(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != pemTypePKCS8 {
		return nil, fmt.Errorf("PEM block is not of type %q", pemTypePKCS8)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a valid PKCS#8 private key")
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return key, nil
}

func createKey(path string) (ed25519.PrivateKey, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: create signing key directory: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("auth: encode signing key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemTypePKCS8, Bytes: der})

	// Write a private temporary file, then hard-link it into place: the key
	// appears complete or not at all, and a key another process created in
	// the meantime is never overwritten.
	tmp, err := os.CreateTemp(dir, ".ward-signing-key-*")
	if err != nil {
		return nil, fmt.Errorf("auth: create signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeAndClose(tmp, data); err != nil {
		return nil, fmt.Errorf("auth: write signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path)
		}
		return nil, fmt.Errorf("auth: install signing key: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("auth: sync signing key directory: %w", err)
	}
	return key, nil
}

func writeAndClose(f *os.File, data []byte) error {
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
