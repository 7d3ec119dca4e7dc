// Package sealed is a store.Store adapter that encrypts what the platform
// keeps for users before it reaches the underlying store: payloads, results
// and logs of tasks, config values, secret values and code. Each is sealed
// by internal/seal with its record's own data key, bound to (project,
// record, field), so a copy of the store alone reveals none of it, and a
// ciphertext moved to another record or field does not open.
//
// Task bodies and token vault entries are sealed under the project's epoch
// key of the day, which retention destroys; config, secrets and code under the project's lasting
// key, which only project deletion destroys.
package sealed

import (
	"context"
	"encoding/base64"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/store"
)

// Store wraps a store.Store; methods it does not override pass through.
type Store struct {
	store.Store
	ks  *seal.Keystore
	now func() time.Time
}

var _ store.Store = (*Store)(nil)

// New returns st with its bodies and config sealed by ks.
func New(st store.Store, ks *seal.Keystore, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{Store: st, ks: ks, now: now}
}

// A body is sealed under its name (store.Body) as the field of the
// associated data.

// seal encrypts one non-empty body; an empty body stays empty.
func (s *Store) seal(ctx context.Context, project, record, field string, b []byte) ([]byte, error) {
	if len(b) == 0 {
		return b, nil
	}
	return s.ks.Seal(ctx, project, s.now(), seal.AD{Project: project, Record: record, Field: field}, b)
}

func (s *Store) open(ctx context.Context, project, record, field string, b []byte) ([]byte, error) {
	if len(b) == 0 {
		return b, nil
	}
	return s.ks.Open(ctx, project, seal.AD{Project: project, Record: record, Field: field}, b)
}

// InsertTasks seals each payload under its task's ID.
func (s *Store) InsertTasks(ctx context.Context, p *store.InsertTasksParams) ([]store.InsertResult, error) {
	sealed := *p
	sealed.Tasks = make([]store.NewTask, len(p.Tasks))
	for i, t := range p.Tasks {
		size := len(t.Payload)
		pl, err := s.seal(ctx, t.Project, t.ID, string(store.BodyPayload), t.Payload)
		if err != nil {
			return nil, err
		}
		t.Payload, t.PayloadSize = pl, size
		sealed.Tasks[i] = t
	}
	if len(p.Tokens) > 0 {
		sealed.Tokens = make([]store.TokenValue, len(p.Tokens))
		for i, tv := range p.Tokens {
			v, err := s.ks.Seal(ctx, tv.Project, s.now(), tokenAD(tv.Project, tv.Token), tv.Value)
			if err != nil {
				return nil, err
			}
			tv.Value = v
			sealed.Tokens[i] = tv
		}
	}
	return s.Store.InsertTasks(ctx, &sealed)
}

// LeaseTasks opens the leased payloads. A task whose payload does not open
// (altered, moved, or its key destroyed) fails at once with the seal's error
// code and is left out; the other leases are returned.
func (s *Store) LeaseTasks(ctx context.Context, p *store.LeaseParams) ([]store.Lease, error) {
	leases, err := s.Store.LeaseTasks(ctx, p)
	if err != nil {
		return nil, err
	}
	opened := leases[:0]
	var failed []store.Completion
	for _, l := range leases {
		t := &l.Task
		pl, err := s.open(ctx, t.Project, t.ID, string(store.BodyPayload), l.Payload)
		if err != nil {
			failed = append(failed, store.Completion{
				TaskID: t.ID, LeaseID: l.LeaseID, Project: t.Project, Status: ward.StatusFailed, Now: p.Now,
				Error: &ward.TaskError{Code: ward.CodeOf(err), Message: "the payload could not be decrypted"},
			})
			continue
		}
		l.Payload = pl
		opened = append(opened, l)
	}
	if len(failed) > 0 {
		// Should this fail too, the leases expire and the reaper takes the
		// tasks back, to fail here again.
		_, _ = s.Store.CompleteTasks(context.WithoutCancel(ctx), &store.CompleteParams{Completions: failed})
	}
	return opened, nil
}

// GetTaskBody opens a body.
func (s *Store) GetTaskBody(ctx context.Context, project, id string, b store.Body) ([]byte, error) {
	body, err := s.Store.GetTaskBody(ctx, project, id, b)
	if err != nil {
		return nil, err
	}
	return s.open(ctx, project, id, string(b), body)
}

// CompleteTasks seals results and logs.
func (s *Store) CompleteTasks(ctx context.Context, p *store.CompleteParams) ([]error, error) {
	sealed := store.CompleteParams{Completions: make([]store.Completion, len(p.Completions))}
	for i, c := range p.Completions {
		if c.Project == "" {
			return nil, ward.FieldError("completions.project", "is required to seal results")
		}
		var err error
		if c.Result, err = s.seal(ctx, c.Project, c.TaskID, string(store.BodyResult), c.Result); err != nil {
			return nil, err
		}
		if c.Log, err = s.seal(ctx, c.Project, c.TaskID, string(store.BodyLog), c.Log); err != nil {
			return nil, err
		}
		sealed.Completions[i] = c
	}
	return s.Store.CompleteTasks(ctx, &sealed)
}

// configRecord names a config object in the associated data.
func configRecord(function string) string {
	if function == "" {
		return "config:"
	}
	return "config:" + function
}

// PutConfig seals each value under its key.
func (s *Store) PutConfig(ctx context.Context, p *store.PutConfigParams) error {
	sealed := *p
	sealed.Config = make(ward.Config, len(p.Config))
	for k, v := range p.Config {
		env, err := s.ks.SealLasting(ctx, p.Project, seal.AD{Project: p.Project, Record: configRecord(p.Function), Field: k}, []byte(v))
		if err != nil {
			return err
		}
		sealed.Config[k] = base64.RawStdEncoding.EncodeToString(env)
	}
	return s.Store.PutConfig(ctx, &sealed)
}

// GetConfig opens each value.
func (s *Store) GetConfig(ctx context.Context, project, function string) (ward.Config, error) {
	cfg, err := s.Store.GetConfig(ctx, project, function)
	if err != nil {
		return nil, err
	}
	out := make(ward.Config, len(cfg))
	for k, v := range cfg {
		env, err := base64.RawStdEncoding.DecodeString(v)
		if err != nil {
			return nil, &ward.Error{Code: seal.CodeIntegrity, Message: "sealed config value is not an envelope"}
		}
		pt, err := s.ks.Open(ctx, project, seal.AD{Project: project, Record: configRecord(function), Field: k}, env)
		if err != nil {
			return nil, err
		}
		out[k] = string(pt)
	}
	return out, nil
}

// codeAD binds a code blob to its project and digest.
func codeAD(project, digest string) seal.AD {
	return seal.AD{Project: project, Record: "code:" + digest, Field: "code"}
}

// PutCode seals the code blob under the project's lasting key. The digest
// (of the plaintext) stays in clear: it names the code and verifies it.
func (s *Store) PutCode(ctx context.Context, p *store.PutCodeParams) (ward.Function, error) {
	env, err := s.ks.SealLasting(ctx, p.Project, codeAD(p.Project, p.Digest), p.Code)
	if err != nil {
		return ward.Function{}, err
	}
	sealed := *p
	sealed.Code = env
	sealed.Size = len(p.Code)
	return s.Store.PutCode(ctx, &sealed)
}

// GetCode opens a code blob.
func (s *Store) GetCode(ctx context.Context, project, digest string) ([]byte, error) {
	env, err := s.Store.GetCode(ctx, project, digest)
	if err != nil {
		return nil, err
	}
	return s.ks.Open(ctx, project, codeAD(project, digest), env)
}

// secretAD binds a secret value to its project, scope and name.
func secretAD(project, function, name string) seal.AD {
	return seal.AD{Project: project, Record: "secret:" + function + "/" + name, Field: "value"}
}

// PutSecret seals the value under the project's lasting key; an empty value
// stays empty.
func (s *Store) PutSecret(ctx context.Context, p *store.PutSecretParams) (store.PutSecretResult, error) {
	if len(p.Value) == 0 {
		return s.Store.PutSecret(ctx, p)
	}
	env, err := s.ks.SealLasting(ctx, p.Project, secretAD(p.Project, p.Function, p.Name), p.Value)
	if err != nil {
		return store.PutSecretResult{}, err
	}
	sealed := *p
	sealed.Value, sealed.Size = env, len(p.Value)
	return s.Store.PutSecret(ctx, &sealed)
}

// GetSecrets opens the values.
func (s *Store) GetSecrets(ctx context.Context, project, function string) ([]store.SecretValue, error) {
	svs, err := s.Store.GetSecrets(ctx, project, function)
	if err != nil {
		return nil, err
	}
	for i, sv := range svs {
		if len(sv.Value) == 0 {
			continue
		}
		v, err := s.ks.Open(ctx, project, secretAD(project, sv.Function, sv.Name), sv.Value)
		if err != nil {
			return nil, err
		}
		svs[i].Value = v
	}
	return svs, nil
}

// DeleteProject destroys the project's keys first, so every byte of the
// project is unreadable even if deleting its rows fails half way (or a
// backup of the store holds them), then deletes the rows.
func (s *Store) DeleteProject(ctx context.Context, name string) error {
	if _, err := s.Store.GetProject(ctx, name); err != nil {
		return err
	}
	if _, err := s.ks.DestroyProject(ctx, name); err != nil {
		return err
	}
	return s.Store.DeleteProject(ctx, name)
}

// tokenAD binds a token vault entry to its project and token.
func tokenAD(project, token string) seal.AD {
	return seal.AD{Project: project, Record: "token:" + token, Field: "value"}
}

// GetTokens opens the vault entries. An entry whose epoch key retention
// destroyed is left out, like one the vault never held: that token no
// longer re-identifies.
func (s *Store) GetTokens(ctx context.Context, project string, tokens []string) (map[string][]byte, error) {
	got, err := s.Store.GetTokens(ctx, project, tokens)
	if err != nil {
		return nil, err
	}
	for tok, env := range got {
		v, err := s.ks.Open(ctx, project, tokenAD(project, tok), env)
		switch {
		case ward.CodeOf(err) == seal.CodeKeyDestroyed:
			delete(got, tok)
		case err != nil:
			return nil, err
		default:
			got[tok] = v
		}
	}
	return got, nil
}
