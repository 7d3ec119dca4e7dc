package auth

import (
	"time"

	"github.com/wardhq/ward"
)

// Principal is the authenticated caller behind a request.
type Principal struct {
	TokenID   string
	Project   string // "" for admin and runner tokens
	Role      ward.Role
	ExpiresAt time.Time
}

// Can reports whether the principal's role grants scope s. It says nothing
// about which project; combine it with InProject.
func (p Principal) Can(s Scope) bool { return RoleHas(p.Role, s) }

// InProject reports whether the principal may act in the named project:
// admin tokens reach every project, runner tokens none, every other token
// only its own.
func (p Principal) InProject(project string) bool {
	if project == "" {
		return false
	}
	switch p.Role {
	case ward.RoleAdmin:
		return true
	case ward.RoleRunner:
		return false
	}
	return p.Role.Valid() && p.Project == project
}

// OwnTasksOnly reports whether tasks:read and results:read are restricted to
// the tasks this principal's token submitted (the submitter role).
func (p Principal) OwnTasksOnly() bool { return p.Role == ward.RoleSubmitter }

// CanMint reports whether the principal may mint a token of the given role
// for the given project: an admin may mint any valid grant; an owner may mint
// owner, developer, submitter and viewer tokens of its own project; no other
// role may mint.
func (p Principal) CanMint(role ward.Role, project string) bool {
	if ValidateGrant(role, project) != nil || !p.Can(ScopeTokensWrite) {
		return false
	}
	switch p.Role {
	case ward.RoleAdmin:
		return true
	case ward.RoleOwner:
		switch role {
		case ward.RoleOwner, ward.RoleDeveloper, ward.RoleSubmitter, ward.RoleViewer:
			return p.InProject(project)
		}
	}
	return false
}

// ValidateGrant checks that a role and a project fit together: admin and
// runner tokens belong to no project (""), every other role to exactly one
// validly named project. It returns an invalid_argument *ward.Error.
func ValidateGrant(role ward.Role, project string) error {
	switch {
	case !role.Valid():
		return &ward.Error{Code: ward.CodeInvalidArgument, Field: "role", Message: "role: unknown role"}
	case role == ward.RoleAdmin || role == ward.RoleRunner:
		if project != "" {
			return ward.FieldError("project", "%s tokens belong to no project", role)
		}
	case !ward.ValidName(project):
		return ward.FieldError("project", "%s tokens need a valid project name", role)
	}
	return nil
}
