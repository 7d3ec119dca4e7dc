package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/wardhq/ward"
)

func secretSegs(project, fn string, name ...string) []string {
	segs := []string{"v1", "projects", project}
	if fn != "" {
		segs = append(segs, "functions", fn)
	}
	return append(append(segs, "secrets"), name...)
}

type secret ward.Secret

func (s *secret) validate() error {
	if s.Name == "" || s.Version < 1 {
		return errors.New("secret without a name or version")
	}
	return nil
}

type secretList ward.SecretList

func (l *secretList) validate() error {
	for i := range l.Secrets {
		if err := (*secret)(&l.Secrets[i]).validate(); err != nil {
			return err
		}
	}
	return nil
}

func (l *secretList) requiredKeys() []string { return []string{"secrets"} }

// PutSecret writes a secret's value; fn "" is the project's global scope,
// else the function's local one. The answer names the secret and its new
// version; no call ever returns the value.
func (c *Client) PutSecret(ctx context.Context, project, fn, name string, value []byte) (ward.Secret, error) {
	if value == nil {
		value = []byte{}
	}
	var s secret
	err := c.call(ctx, request{
		method:      http.MethodPut,
		segs:        secretSegs(project, fn, name),
		body:        value,
		contentType: "application/octet-stream",
	}, &s, http.StatusOK)
	return ward.Secret(s), err
}

// ListSecrets lists one scope's secrets by name and version.
func (c *Client) ListSecrets(ctx context.Context, project, fn string) ([]ward.Secret, error) {
	var l secretList
	err := c.callJSON(ctx, http.MethodGet, secretSegs(project, fn), nil, &l, http.StatusOK)
	return l.Secrets, err
}

// DeleteSecret removes a secret.
func (c *Client) DeleteSecret(ctx context.Context, project, fn, name string) error {
	return c.callJSON(ctx, http.MethodDelete, secretSegs(project, fn, name), nil, nil, http.StatusNoContent)
}

// GetProject returns one project.
func (c *Client) GetProject(ctx context.Context, name string) (ward.Project, error) {
	var p project
	err := c.callJSON(ctx, http.MethodGet, []string{"v1", "projects", name}, nil, &p, http.StatusOK)
	return ward.Project(p), err
}

// SetRetention sets a project's retention_days (owner or admin).
func (c *Client) SetRetention(ctx context.Context, name string, days int) (ward.Project, error) {
	return c.UpdateProject(ctx, name, ward.ProjectSettings{RetentionDays: days})
}

// UpdateProject changes the settings given (retention, quotas) of a
// project (owner or admin).
func (c *Client) UpdateProject(ctx context.Context, name string, s ward.ProjectSettings) (ward.Project, error) {
	var p project
	err := c.callJSON(ctx, http.MethodPatch, []string{"v1", "projects", name}, s, &p, http.StatusOK)
	return ward.Project(p), err
}

// DeleteProject deletes a project and destroys its keys: its data becomes
// unreadable everywhere, backups included (admin only).
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	return c.callJSON(ctx, http.MethodDelete, []string{"v1", "projects", name}, nil, nil, http.StatusNoContent)
}

type detokenized ward.DetokenizeResponse

func (d *detokenized) validate() error {
	if d.Values == nil {
		return errors.New("detokenize answer without values")
	}
	return nil
}

func (d *detokenized) requiredKeys() []string { return []string{"values"} }

// Detokenize re-identifies tokens (needs the detokenize scope): the answer
// maps each token the vault still holds to its original JSON value.
func (c *Client) Detokenize(ctx context.Context, project string, tokens []string) (map[string]json.RawMessage, error) {
	var d detokenized
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "projects", project, "detokenize"}, ward.DetokenizeRequest{Tokens: tokens}, &d, http.StatusOK)
	return d.Values, err
}

// Fanout submits one payload to several functions: one task each, each
// projected by its own function's input rules.
func (c *Client) Fanout(ctx context.Context, project string, req ward.FanoutRequest) ([]ward.Task, error) {
	var out taskBatch
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "projects", project, "tasks", "fanout"}, req, &out, http.StatusAccepted)
	return out.Tasks, err
}
