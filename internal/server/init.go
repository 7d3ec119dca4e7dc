package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/auth"
	"github.com/wardhq/ward/internal/pki"
)

// InitReport says what Init made and what it found.
type InitReport struct {
	KeysDir       string
	RootKeyMade   bool // KeysDir/root.key was created (false: found, or WARD_ROOT_KEY)
	SigningMade   bool // KeysDir/signing.key was created
	CAMade        bool // the cluster CA (KeysDir/ca.crt, ca.key) was created
	StoreReady    bool // the store's schema is migrated
	KeystoreReady bool // the keystore opens under the root key
	// AdminToken is a new admin API token, made when the store had no
	// token at all (the first Init); shown once.
	AdminToken string
}

// Init prepares what the servers of a cluster share, once, before any of
// them starts: in cfg.KeysDir the root key (unless cfg.RootKey is set), the
// token signing key and the cluster CA; the store's schema; and the
// keystore, opened under the root key to prove they belong together. What
// exists is kept, so Init may run again; a root key that does not open an
// existing keystore is an error, and a root key Init made for it is
// removed again. Copy KeysDir to every server (it holds secrets: 0700).
func Init(ctx context.Context, cfg Config) (InitReport, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeysDir == "" {
		return InitReport{}, errors.New("init: the keys directory is required")
	}
	rep := InitReport{KeysDir: cfg.KeysDir}
	if cfg.StoreDSN != "" && cfg.KeystoreDSN == "" {
		return rep, ward.Errorf(ward.CodeInvalidArgument, "a PostgreSQL store needs a PostgreSQL keystore that every server shares (--keystore postgres://…)")
	}
	if err := os.MkdirAll(cfg.KeysDir, 0o700); err != nil {
		return rep, fmt.Errorf("keys dir: %w", err)
	}
	if cfg.StoreDSN == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return rep, fmt.Errorf("data dir: %w", err)
		}
	}
	rootPath := filepath.Join(cfg.KeysDir, "root.key")
	if cfg.RootKey == "" {
		if _, err := os.Stat(rootPath); errors.Is(err, fs.ErrNotExist) {
			rep.RootKeyMade = true
		}
	}
	signPath := filepath.Join(cfg.KeysDir, "signing.key")
	if _, err := os.Stat(signPath); errors.Is(err, fs.ErrNotExist) {
		rep.SigningMade = true
	}

	db, _, err := openStore(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer db.Close()
	rep.StoreReady = true
	keys, err := openKeystore(ctx, cfg, true)
	if err != nil {
		if rep.RootKeyMade {
			os.Remove(rootPath)
			rep.RootKeyMade = false
		}
		return rep, err
	}
	keys.Close()
	rep.KeystoreReady = true
	key, err := auth.LoadOrCreateKey(signPath)
	if err != nil {
		return rep, err
	}
	if n, err := db.CountTokens(ctx); err != nil {
		return rep, err
	} else if n == 0 {
		s := &Server{cfg: cfg, Store: db, Issuer: auth.NewIssuer(key, tokenIssuer, tokenAudience, cfg.Now)}
		if rep.AdminToken, _, err = s.AdminToken(ctx, ""); err != nil {
			return rep, err
		}
	}
	if rep.CAMade, err = pki.InitCA(cfg.KeysDir, cfg.Now()); err != nil {
		return rep, err
	}
	return rep, nil
}
