package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal/box"
	"github.com/wardhq/ward/internal/store"
)

// funcEnv is what every task of a function gets besides its payload: the
// merged config and the merged secrets. Cached per function; shared by the
// jobs built from it, so it is never modified after loading.
type funcEnv struct {
	config  []byte            // JSON: global config overlaid by the function's
	secrets map[string][]byte // global secrets overlaid by the function's
	sealing *ward.SealingKey  // public half of the function's sealing key, if it has one
	// resultLimit and logLimit are the function's caps on a run's stdout
	// and kept stderr, in bytes.
	resultLimit, logLimit int
}

// loadEnv reads a function's config and secrets from the store.
func (s *Service) loadEnv(ctx context.Context, key projectKey) (funcEnv, error) {
	merged := ward.Config{}
	for _, fn := range []string{"", key.name} {
		cfg, err := s.st.GetConfig(ctx, key.project, fn)
		if err != nil && !errors.Is(err, ward.ErrNotFound) {
			return funcEnv{}, err
		}
		maps.Copy(merged, cfg)
	}
	cfg, err := json.Marshal(merged)
	if err != nil {
		return funcEnv{}, err
	}
	env := funcEnv{config: cfg, resultLimit: ward.DefaultOutputKB << 10, logLimit: ward.DefaultOutputKB << 10}
	if fn, err := s.st.GetFunction(ctx, key.project, key.name); err == nil {
		lim := fn.Spec.WithDefaults().Limits
		env.resultLimit, env.logLimit = lim.MaxResultKB<<10, lim.MaxLogKB<<10
	} else if !errors.Is(err, ward.ErrNotFound) {
		return funcEnv{}, err
	}
	secrets, err := s.st.GetSecrets(ctx, key.project, key.name)
	if err != nil && !errors.Is(err, ward.ErrNotFound) {
		return funcEnv{}, err
	}
	if len(secrets) > 0 {
		env.secrets = make(map[string][]byte, len(secrets))
	}
	// Global first, so the function's own secrets win.
	for _, local := range []bool{false, true} {
		for _, sv := range secrets {
			if (sv.Function != "") == local {
				env.secrets[sv.Name] = sv.Value
			}
		}
	}
	if pem, ok := env.secrets[ward.SealingKeySecret]; ok {
		k, err := sealingKeyOf(pem)
		if err != nil {
			return funcEnv{}, err
		}
		env.sealing = &k
	}
	return env, nil
}

// sealingKeyOf returns the public sealing key of a private key PEM.
func sealingKeyOf(pem []byte) (ward.SealingKey, error) {
	priv, err := box.ParsePrivateKey(pem)
	if err != nil {
		return ward.SealingKey{}, err
	}
	pub, err := box.PublicKey(priv)
	if err != nil {
		return ward.SealingKey{}, err
	}
	return ward.SealingKey{KEM: box.KEMName, KDF: box.KDFName, AEAD: box.AEADName, KeyID: box.KeyID(pub), PublicKey: pub}, nil
}

// SealingKey returns the public half of a function's sealing key, creating
// the key pair on first use: the private half is stored as the function's
// secret ward-sealing-key, which only the function's tasks receive.
func (s *Service) SealingKey(ctx context.Context, project, function string) (ward.SealingKey, error) {
	if _, err := s.funcs.get(ctx, projectKey{project, function}); err != nil {
		if errors.Is(err, ward.ErrNotFound) {
			return ward.SealingKey{}, &ward.Error{Code: ward.CodeNotFound, Message: fmt.Sprintf("function %s not found", function)}
		}
		return ward.SealingKey{}, err
	}
	env, err := s.env.get(ctx, projectKey{project, function})
	if err != nil {
		return ward.SealingKey{}, err
	}
	if env.sealing != nil {
		return *env.sealing, nil
	}
	priv, _, err := box.GenerateKey()
	if err != nil {
		return ward.SealingKey{}, err
	}
	pem := box.MarshalPrivateKey(priv)
	// IfAbsent: of two servers creating the key at once, the first wins and
	// both answer with its public half.
	if _, err := s.st.PutSecret(ctx, &store.PutSecretParams{
		Project: project, Function: function, Name: ward.SealingKeySecret,
		Value: pem, IfAbsent: true, Now: s.now(),
	}); err != nil {
		return ward.SealingKey{}, err
	}
	s.ConfigChanged(project)
	if env, err = s.env.get(ctx, projectKey{project, function}); err != nil {
		return ward.SealingKey{}, err
	}
	if env.sealing == nil {
		return ward.SealingKey{}, &ward.Error{Code: ward.CodeInternal, Message: "the sealing key was stored but does not read back"}
	}
	return *env.sealing, nil
}

// checkSealed checks, without any key, that a sealed payload was sealed to
// the function's current sealing key.
func (s *Service) checkSealed(ctx context.Context, project string, fn ward.Function, envelope []byte) error {
	h, err := box.Parse(envelope)
	if err != nil {
		return &ward.Error{Code: ward.CodeOf(err), Field: "sealed", Message: "sealed is not a sealed payload envelope"}
	}
	env, err := s.env.get(ctx, projectKey{project, fn.Name})
	if err != nil {
		return err
	}
	if env.sealing == nil {
		return &ward.Error{Code: box.CodeKeyMismatch, Field: "sealed",
			Message: fmt.Sprintf("function %s has no sealing key yet; fetch it (GET …/functions/%s/sealing-key) and seal to it", fn.Name, fn.Name)}
	}
	if h.KeyID != env.sealing.KeyID {
		return &ward.Error{Code: box.CodeKeyMismatch, Field: "sealed",
			Message: fmt.Sprintf("the payload was sealed to key %s, but function %s's sealing key is %s", h.KeyID, fn.Name, env.sealing.KeyID)}
	}
	return nil
}
