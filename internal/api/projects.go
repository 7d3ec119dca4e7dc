package api

import (
	"errors"
	"net/http"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/auth"
	"github.com/wardhq/ward/internal/store"
)

// Token lifetimes.
const (
	defaultTokenTTL = 24 * time.Hour
	maxTokenTTL     = 8760 * time.Hour
	maxTokenNameLen = 128
)

// projectList is the body of GET /v1/projects.
type projectList struct {
	Projects []ward.Project `json:"projects"`
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, c *call) error {
	var req ward.CreateProjectRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxJSONBody), &req); err != nil {
		return err
	}
	if !ward.ValidName(req.Name) {
		return ward.FieldError("name", "must be 1-63 lowercase letters, digits or '-', not starting with '-'")
	}
	if req.RetentionDays != 0 {
		if err := ward.ValidRetention(req.RetentionDays); err != nil {
			return err
		}
	}
	c.resource = req.Name
	c.project = req.Name
	p, err := s.st.CreateProject(r.Context(), &store.CreateProjectParams{Name: req.Name, RetentionDays: req.RetentionDays, Now: s.now().UTC()})
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusCreated, p)
	return nil
}

// listProjects lists every project for a token with projects:admin, and the
// token's own project for any other.
func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, c *call) error {
	out := projectList{Projects: []ward.Project{}}
	switch {
	case c.principal.Can(auth.ScopeProjectsAdmin):
		ps, err := s.st.ListProjects(r.Context())
		if err != nil {
			return err
		}
		if ps != nil {
			out.Projects = ps
		}
	case c.principal.InProject(c.principal.Project):
		p, err := s.st.GetProject(r.Context(), c.principal.Project)
		switch {
		case err == nil:
			out.Projects = append(out.Projects, p)
		case !errors.Is(err, ward.ErrNotFound):
			return err
		}
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, c *call) error {
	var req ward.CreateTokenRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxJSONBody), &req); err != nil {
		return err
	}
	if !req.Role.Valid() {
		return ward.FieldError("role", "must be one of admin, owner, developer, submitter, viewer, runner")
	}
	ttl := defaultTokenTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d < time.Second || d > maxTokenTTL {
			return ward.FieldError("ttl", "must be a duration between 1s and %s (e.g. \"24h\")", "8760h")
		}
		ttl = d
	}
	if err := validTokenName(req.Name); err != nil {
		return err
	}
	// Admin and runner tokens belong to no project.
	project := c.project
	if req.Role == ward.RoleAdmin || req.Role == ward.RoleRunner {
		project = ""
	}
	if !c.principal.CanMint(req.Role, project) {
		return ward.Errorf(ward.CodeForbidden, "a %s token may not mint %s tokens", c.principal.Role, req.Role)
	}

	now := s.now().UTC().Truncate(time.Second)
	tok := ward.Token{
		ID:        auth.NewTokenID(),
		Project:   project,
		Role:      req.Role,
		Name:      req.Name,
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	}
	c.resource = tok.ID
	signed, err := s.iss.Mint(auth.Principal{TokenID: tok.ID, Project: tok.Project, Role: tok.Role, ExpiresAt: tok.ExpiresAt})
	if err != nil {
		return err
	}
	rec, err := s.st.CreateToken(r.Context(), &store.CreateTokenParams{Token: tok})
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusCreated, ward.CreateTokenResponse{Token: signed, ID: rec.ID, ExpiresAt: rec.ExpiresAt})
	return nil
}

// validTokenName allows short, printable names.
func validTokenName(name string) error {
	if len(name) > maxTokenNameLen || !utf8.ValidString(name) {
		return ward.FieldError("name", "must be at most %d bytes of UTF-8", maxTokenNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return ward.FieldError("name", "must be printable text")
		}
	}
	return nil
}

// revokeToken revokes a token of the project. An admin may also revoke
// admin and runner tokens, which belong to no project, through any
// project's route. A caller may revoke only tokens it could mint.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	notFound := ward.Errorf(ward.CodeNotFound, "token %s not found", id)
	if !auth.ValidTokenID(id) {
		return notFound
	}
	tok, err := s.st.GetToken(r.Context(), id)
	if err != nil {
		if errors.Is(err, ward.ErrNotFound) {
			return notFound
		}
		return err
	}
	visible := tok.Project == c.project || (tok.Project == "" && c.principal.Can(auth.ScopeProjectsAdmin))
	if !visible {
		return notFound
	}
	if !c.principal.CanMint(tok.Role, tok.Project) {
		return ward.Errorf(ward.CodeForbidden, "a %s token may not revoke %s tokens", c.principal.Role, tok.Role)
	}
	if err := s.st.RevokeToken(r.Context(), &store.RevokeTokenParams{Project: tok.Project, ID: id, Now: s.now().UTC()}); err != nil {
		return err
	}
	s.authn.Forget(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getProject reads one project.
func (s *Server) getProject(w http.ResponseWriter, r *http.Request, c *call) error {
	p, err := s.st.GetProject(r.Context(), c.project)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, p)
	return nil
}

// patchProject changes a project's settings.
func (s *Server) patchProject(w http.ResponseWriter, r *http.Request, c *call) error {
	var req ward.ProjectSettings
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxJSONBody), &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	var p ward.Project
	var err error
	if req.RetentionDays != 0 {
		if p, err = s.st.SetRetention(r.Context(), c.project, req.RetentionDays); err != nil {
			return err
		}
	}
	if req.Quotas != nil {
		if p, err = s.st.SetQuotas(r.Context(), c.project, *req.Quotas); err != nil {
			return err
		}
	}
	s.q.ConfigChanged(c.project)
	s.writeJSON(w, r, http.StatusOK, p)
	return nil
}

// deleteProject deletes a project: its keys are destroyed first, so its
// data is unreadable everywhere, backups included; then its records go.
func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.st.DeleteProject(r.Context(), c.project); err != nil {
		return err
	}
	s.q.ConfigChanged(c.project)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
