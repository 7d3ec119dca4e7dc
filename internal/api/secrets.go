package api

import (
	"net/http"
	"strings"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal/box"
	"github.com/wardhq/ward/internal/store"
)

// secretScope returns the function of a secrets route ("" = global) after
// checking it names a function that exists.
func (s *Server) secretScope(r *http.Request, c *call) (string, error) {
	fn := r.PathValue("fn")
	if fn == "" {
		return "", nil
	}
	if !ward.ValidName(fn) {
		return "", ward.FieldError("function", "must be 1-63 lowercase letters, digits or '-', not starting with '-'")
	}
	if _, err := s.st.GetFunction(r.Context(), c.project, fn); err != nil {
		return "", err
	}
	return fn, nil
}

// validSecretName checks a secret's name, and that reserved names are used
// only as what they are reserved for.
func validSecretName(name, fn string) error {
	if !ward.ValidSecretName(name) {
		return ward.FieldError("name", "must be 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'")
	}
	if strings.HasPrefix(name, "ward-") {
		if name != ward.SealingKeySecret {
			return ward.FieldError("name", "names starting with ward- are reserved")
		}
		if fn == "" {
			return ward.FieldError("name", "%s is a function's own secret; set it on …/functions/{fn}/secrets", ward.SealingKeySecret)
		}
	}
	return nil
}

// secretTarget returns the scope and name of a route naming one secret,
// checked, and records the name as the audited resource.
func (s *Server) secretTarget(r *http.Request, c *call) (fn, name string, err error) {
	name = r.PathValue("name")
	c.resource = name
	if fn, err = s.secretScope(r, c); err != nil {
		return "", "", err
	}
	if err := validSecretName(name, fn); err != nil {
		return "", "", err
	}
	return fn, name, nil
}

// putSecret writes a secret: the request body is the value, as bytes. The
// answer carries its name and version, never the value.
func (s *Server) putSecret(w http.ResponseWriter, r *http.Request, c *call) error {
	fn, name, err := s.secretTarget(r, c)
	if err != nil {
		return err
	}
	value, err := readBody(http.MaxBytesReader(w, r.Body, ward.MaxSecretBytes), ward.CodeInvalidArgument)
	if err != nil {
		if ward.CodeOf(err) == ward.CodeBodyTooLarge {
			return &ward.Error{Code: ward.CodeBodyTooLarge, Field: "value", Message: "a secret holds at most 64 KiB"}
		}
		return err
	}
	if name == ward.SealingKeySecret {
		if _, err := box.ParsePrivateKey(value); err != nil {
			return &ward.Error{Code: ward.CodeInvalidArgument, Field: "value", Message: "the sealing key must be a sealing private key PEM (ward sealing-key FUNCTION --create --out FILE makes one)"}
		}
	}
	existing, err := s.st.ListSecrets(r.Context(), c.project, fn)
	if err != nil {
		return err
	}
	if len(existing) >= ward.MaxSecretsPerSet && !hasSecret(existing, name) {
		return &ward.Error{Code: ward.CodeInvalidArgument, Field: "name", Message: "at most 100 secrets per project and per function"}
	}
	res, err := s.st.PutSecret(r.Context(), &store.PutSecretParams{Project: c.project, Function: fn, Name: name, Value: value, Now: s.now().UTC()})
	clear(value)
	if err != nil {
		return err
	}
	s.q.ConfigChanged(c.project)
	s.writeJSON(w, r, http.StatusOK, res.Secret)
	return nil
}

func hasSecret(list []ward.Secret, name string) bool {
	for _, sc := range list {
		if sc.Name == name {
			return true
		}
	}
	return false
}

// listSecrets lists one scope's secrets by name and version.
func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, c *call) error {
	fn, err := s.secretScope(r, c)
	if err != nil {
		return err
	}
	list, err := s.st.ListSecrets(r.Context(), c.project, fn)
	if err != nil {
		return err
	}
	if list == nil {
		list = []ward.Secret{}
	}
	s.writeJSON(w, r, http.StatusOK, ward.SecretList{Secrets: list})
	return nil
}

// deleteSecret removes a secret. A function's sealing key can be replaced
// but not deleted: sealed tasks in the queue need it.
func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, c *call) error {
	fn, name, err := s.secretTarget(r, c)
	if err != nil {
		return err
	}
	if name == ward.SealingKeySecret {
		return ward.FieldError("name", "the sealing key can be replaced, not deleted")
	}
	if err := s.st.DeleteSecret(r.Context(), c.project, fn, name); err != nil {
		return err
	}
	s.q.ConfigChanged(c.project)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getSealingKey answers the public half of a function's sealing key,
// creating the key pair on first use.
func (s *Server) getSealingKey(w http.ResponseWriter, r *http.Request, c *call) error {
	fn := r.PathValue("fn")
	if err := validFunctionName(fn); err != nil {
		return err
	}
	k, err := s.q.SealingKey(r.Context(), c.project, fn)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, k)
	return nil
}
