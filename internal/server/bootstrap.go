package server

import (
	"context"
	"fmt"
	"go/build"
	"os"
	"path/filepath"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/auth"
	"github.com/wardhq/ward/internal/gobuild"
	"github.com/wardhq/ward/internal/privacy"
	"github.com/wardhq/ward/internal/sandbox"
	"github.com/wardhq/ward/internal/specfile"
	"github.com/wardhq/ward/internal/store"
)

// adminTokenTTL is the lifetime of the bootstrap admin token of `ward dev`
// and `ward server init`.
const adminTokenTTL = 365 * 24 * time.Hour

// AdminToken returns existing when it is a valid admin token of this server,
// else mints and records a new admin token. minted says which happened.
func (s *Server) AdminToken(ctx context.Context, existing string) (token string, minted bool, err error) {
	if existing != "" {
		p, err := s.Auth.Authenticate(ctx, "Bearer "+existing)
		if err == nil && p.Role == ward.RoleAdmin && p.ExpiresAt.Sub(s.cfg.Now()) > 24*time.Hour {
			return existing, false, nil
		}
	}
	now := s.cfg.Now().UTC()
	p := auth.Principal{TokenID: auth.NewTokenID(), Role: ward.RoleAdmin, ExpiresAt: now.Add(adminTokenTTL)}
	tok, err := s.Issuer.Mint(p)
	if err != nil {
		return "", false, err
	}
	_, err = s.Store.CreateToken(ctx, &store.CreateTokenParams{Token: ward.Token{
		ID: p.TokenID, Role: ward.RoleAdmin, Name: "bootstrap", CreatedAt: now, ExpiresAt: p.ExpiresAt,
	}})
	if err != nil {
		return "", false, err
	}
	return tok, true, nil
}

// DeployExamples builds every Go main package directly under dir for wasip1
// (cached in cacheDir) and deploys each as a function of the default project
// named after its directory, with the spec in its optional ward.json or
// ward.yaml (read as `ward deploy` reads it). Code
// that did not change is not uploaded again. It returns the deployed names.
func (s *Server) DeployExamples(ctx context.Context, dir, cacheDir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("examples: %w", err)
	}
	var names []string
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !e.IsDir() || !ward.ValidName(e.Name()) || !hasGoMain(path) {
			continue
		}
		if err := s.deployExample(ctx, e.Name(), path, cacheDir); err != nil {
			return names, fmt.Errorf("example %s: %w", e.Name(), err)
		}
		names = append(names, e.Name())
	}
	return names, nil
}

func (s *Server) deployExample(ctx context.Context, name, dir, cacheDir string) error {
	spec := ward.FunctionSpec{}
	path, err := specfile.Find(dir)
	if err != nil {
		return err
	}
	if path != "" {
		f, err := specfile.Read(path)
		if err != nil {
			return err
		}
		spec = f.Apply(spec)
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if _, err := privacy.Compile(spec.Input); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	code, err := gobuild.Wasm(ctx, gobuild.Options{Dir: dir, CacheDir: cacheDir, Logger: s.log})
	if err != nil {
		return err
	}
	digest := ward.Digest(code)
	now := s.cfg.Now()
	fn, err := s.Store.PutFunction(ctx, &store.PutFunctionParams{Project: ward.DefaultProject, Name: name, Spec: spec, Now: now})
	if err != nil {
		return err
	}
	if fn.CodeDigest != digest {
		if err := s.Sandbox.Prepare(ctx, sandbox.Artifact{Digest: digest, Code: code}); err != nil {
			return err
		}
		if _, err := s.Store.PutCode(ctx, &store.PutCodeParams{Project: ward.DefaultProject, Function: name, Digest: digest, Code: code, Now: now}); err != nil {
			return err
		}
	}
	s.Queue.ConfigChanged(ward.DefaultProject)
	return nil
}

// hasGoMain reports whether dir holds a Go main package.
func hasGoMain(dir string) bool {
	pkg, err := build.ImportDir(dir, 0)
	return err == nil && pkg.Name == "main"
}
