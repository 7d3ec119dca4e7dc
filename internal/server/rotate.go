package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal"
)

// Rotation is the outcome of RotateRootKey.
type Rotation struct {
	EpochKeys int    // epoch keys rewrapped
	KeyFile   string // the new root key file, when the key is kept in a file
	// NewRootKey is the new key for WARD_ROOT_KEY (base64), when the old one
	// came from there: the caller must hand it to the operator, once.
	NewRootKey string
}

// RotateRootKey replaces the root key of the data directory's keystore:
// every epoch key is rewrapped under a new root key in one transaction; no
// data is rewritten and all of it stays readable. It needs the server to be
// stopped (it takes the data directory's lock). keysDir is the server's
// KeysDir ("" = dataDir/keys), keystoreDSN its KeystoreDSN ("" = the
// keystore file in keysDir). With rootKeyEnv empty the key lives in
// root.key there, which is replaced; otherwise rootKeyEnv is the current
// WARD_ROOT_KEY and the new one is returned in Rotation.NewRootKey.
func RotateRootKey(ctx context.Context, dataDir, keysDir, keystoreDSN, rootKeyEnv string) (Rotation, error) {
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return Rotation{}, err
	}
	defer unlock()
	dir := keysDir
	if dir == "" {
		dir = filepath.Join(dataDir, "keys")
	}
	ksPath := filepath.Join(dir, "keystore.db")
	if keystoreDSN == "" {
		if _, err := os.Stat(ksPath); err != nil {
			return Rotation{}, &ward.Error{Code: ward.CodeNotFound, Message: fmt.Sprintf("no keystore at %s", ksPath)}
		}
	}
	var old, next seal.RootKey
	var r Rotation
	keyFile := filepath.Join(dir, "root.key")
	newFile := keyFile + ".new"
	if rootKeyEnv != "" {
		if old, err = seal.RootKeyFromEnv(rootKeyEnv); err != nil {
			return Rotation{}, err
		}
		if next, r.NewRootKey, err = seal.NewRootKeyBase64(); err != nil {
			return Rotation{}, err
		}
	} else {
		if old, err = seal.LoadOrCreateRootKeyFile(keyFile, false); err != nil {
			return Rotation{}, err
		}
		// A leftover from an interrupted rotation that never committed.
		if err := os.Remove(newFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return Rotation{}, err
		}
		if next, err = seal.CreateRootKeyFile(newFile); err != nil {
			return Rotation{}, err
		}
	}
	var ks *seal.Keystore
	if keystoreDSN != "" {
		// A keystore several servers share: every one of them must be
		// stopped, which this lock cannot check for the others.
		ks, err = seal.OpenKeystoreDSN(ctx, keystoreDSN, old, nil)
	} else {
		ks, err = seal.OpenKeystore(ctx, ksPath, old, nil)
	}
	if err != nil {
		_ = os.Remove(newFile)
		return Rotation{}, err
	}
	r.EpochKeys, err = ks.Rewrap(ctx, next)
	if cerr := ks.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(newFile)
		return Rotation{}, err
	}
	if rootKeyEnv == "" {
		// The keystore now answers only to the new key: put it in place. Were
		// this rename lost to a crash, keys/root.key.new holds the key.
		if err := os.Rename(newFile, keyFile); err != nil {
			return Rotation{}, fmt.Errorf("the keystore was rewrapped, but moving %s to %s failed (move it by hand): %w", newFile, keyFile, err)
		}
		r.KeyFile = keyFile
	}
	return r, nil
}
