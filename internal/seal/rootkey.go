package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/wardhq/ward"
)

// Codes for key and envelope errors, in addition to those of package ward.
const (
	CodeIntegrity       ward.Code = "integrity"         // an envelope is malformed, altered, or bound to other associated data
	CodeKeyDestroyed    ward.Code = "key_destroyed"     // the epoch key that sealed an envelope was destroyed
	CodeRootKeyMissing  ward.Code = "root_key_missing"  // the root key file does not exist and may not be created
	CodeRootKeyMismatch ward.Code = "root_key_mismatch" // the root key is not the one the keystore was sealed with
	CodeInsecureKeyFile ward.Code = "insecure_key_file" // a key or keystore file is accessible to group or others
	CodeInvalidRootKey  ward.Code = "invalid_root_key"  // the root key material cannot be parsed
)

// RootKey is the top of the key hierarchy: it wraps and unwraps epoch keys.
// The associated data must be presented again, unchanged, to unwrap. A file
// or environment key implements it here; an external KMS (Vault transit, a
// cloud KMS) can implement it later without changing the keystore.
type RootKey interface {
	// Wrap encrypts plaintext bound to associatedData.
	Wrap(plaintext, associatedData []byte) ([]byte, error)
	// Unwrap decrypts a Wrap output; it fails if either input was altered.
	Unwrap(ciphertext, associatedData []byte) ([]byte, error)
	// ID names the key (not the secret) for messages and the keystore's record.
	ID() string
}

// tinkRootKey is a RootKey held in memory as a tink AES-256-GCM keyset.
type tinkRootKey struct {
	aead tink.AEAD
	id   string
}

func (k *tinkRootKey) Wrap(plaintext, associatedData []byte) ([]byte, error) {
	return k.aead.Encrypt(plaintext, associatedData)
}

func (k *tinkRootKey) Unwrap(ciphertext, associatedData []byte) ([]byte, error) {
	return k.aead.Decrypt(ciphertext, associatedData)
}

func (k *tinkRootKey) ID() string { return k.id }

func rootKeyFromHandle(h *keyset.Handle) (RootKey, error) {
	p, err := aead.New(h)
	if err != nil {
		return nil, &ward.Error{Code: CodeInvalidRootKey, Message: "root key: keyset is not an AEAD keyset"}
	}
	return &tinkRootKey{aead: p, id: fmt.Sprintf("tink-%08x", h.KeysetInfo().GetPrimaryKeyId())}, nil
}

// parseRootKeyset reads a binary cleartext tink keyset.
func parseRootKeyset(b []byte) (RootKey, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewBinaryReader(bytes.NewReader(b)))
	if err != nil {
		return nil, &ward.Error{Code: CodeInvalidRootKey, Message: "root key: not a valid tink keyset"}
	}
	return rootKeyFromHandle(h)
}

// LoadOrCreateRootKeyFile loads the root key from path, a binary tink
// keyset holding AES-256-GCM keys. When the file does not exist it is created
// with a new key (mode 0600) if create is true, and otherwise refused with
// CodeRootKeyMissing: the caller passes false when encrypted data already
// exists, so a lost key never silently becomes a new one. A file readable or
// writable by group or others is refused with CodeInsecureKeyFile.
//
// The file holds the keyset in clear. That is unavoidable for the root of the
// hierarchy: whatever would encrypt it would itself need a key stored
// somewhere. Its protection is the file mode, the host, and keeping it off
// the data store's disk and backups; a KMS-backed RootKey removes it.
func LoadOrCreateRootKeyFile(path string, create bool) (RootKey, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !create {
			return nil, &ward.Error{Code: CodeRootKeyMissing, Message: fmt.Sprintf("root key file %s does not exist and existing data needs it; restore the key file or set WARD_ROOT_KEY", path)}
		}
		return createRootKeyFile(path)
	case err != nil:
		return nil, fmt.Errorf("root key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &ward.Error{Code: CodeInvalidRootKey, Message: fmt.Sprintf("root key file %s is not a regular file", path)}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, &ward.Error{Code: CodeInsecureKeyFile, Message: fmt.Sprintf("root key file %s has mode %04o; it must not be accessible to group or others (chmod 600)", path, fi.Mode().Perm())}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("root key file: %w", err)
	}
	k, err := parseRootKeyset(b)
	if err != nil {
		return nil, fmt.Errorf("root key file %s: %w", path, err)
	}
	return k, nil
}

func createRootKeyFile(path string) (RootKey, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("root key: new keyset: %w", err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewBinaryWriter(&buf)); err != nil {
		return nil, fmt.Errorf("root key: serialize keyset: %w", err)
	}
	// O_EXCL: never overwrite a key file that appeared meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("root key file: create: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("root key file: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("root key file: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("root key file: close: %w", err)
	}
	return rootKeyFromHandle(h)
}

// RootKeyFromEnv parses a root key given as standard base64 of the same
// binary tink keyset a root key file holds (for example the value of
// WARD_ROOT_KEY, produced with `base64 -w0 root.key`). Errors never echo
// the value.
func RootKeyFromEnv(value string) (RootKey, error) {
	if value == "" {
		return nil, &ward.Error{Code: CodeRootKeyMissing, Message: "root key from environment is empty"}
	}
	b, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, &ward.Error{Code: CodeInvalidRootKey, Message: "root key from environment is not valid base64"}
	}
	return parseRootKeyset(b)
}

// CreateRootKeyFile creates a root key file at path (mode 0600) holding a new
// key; an existing file is never overwritten.
func CreateRootKeyFile(path string) (RootKey, error) {
	return createRootKeyFile(path)
}

// NewRootKeyBase64 returns a new root key and its encoding for WARD_ROOT_KEY.
func NewRootKeyBase64() (RootKey, string, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, "", fmt.Errorf("root key: new keyset: %w", err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewBinaryWriter(&buf)); err != nil {
		return nil, "", fmt.Errorf("root key: serialize keyset: %w", err)
	}
	k, err := rootKeyFromHandle(h)
	if err != nil {
		return nil, "", err
	}
	return k, base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
