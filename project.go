package ward

import "time"

// Project is a tenant: functions, tasks, config and tokens belong to one.
type Project struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// RetentionDays bounds how long the project's finished tasks and their
	// keys live; a function's own retention_days applies when shorter.
	RetentionDays int `json:"retention_days"`
}

// DefaultRetentionDays is a new project's retention.
const DefaultRetentionDays = 7

// ProjectSettings is the body of PATCH /v1/projects/{p}.
type ProjectSettings struct {
	RetentionDays int `json:"retention_days"`
}

// Validate checks the settings.
func (s ProjectSettings) Validate() error {
	if s.RetentionDays < 1 || s.RetentionDays > MaxRetention {
		return FieldError("retention_days", "must be between 1 and %d", MaxRetention)
	}
	return nil
}

// DefaultProject is the project `ward dev` deploys the examples into.
const DefaultProject = "default"

// Role is a named set of scopes carried by a token.
type Role string

// Roles, from most to least privileged (DESIGN §3).
const (
	RoleAdmin     Role = "admin"
	RoleOwner     Role = "owner"
	RoleDeveloper Role = "developer"
	RoleSubmitter Role = "submitter"
	RoleViewer    Role = "viewer"
	RoleRunner    Role = "runner"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleOwner, RoleDeveloper, RoleSubmitter, RoleViewer, RoleRunner:
		return true
	}
	return false
}

// Token is the metadata of an issued API token; the token string itself is
// returned once, at creation, and never stored.
type Token struct {
	ID        string     `json:"id"`
	Project   string     `json:"project,omitempty"` // empty for admin tokens
	Role      Role       `json:"role"`
	Name      string     `json:"name,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// CreateTokenRequest is the body of POST /v1/projects/{p}/tokens. TTL is a Go
// duration string ("24h"); empty means the server default.
type CreateTokenRequest struct {
	Role Role   `json:"role"`
	TTL  string `json:"ttl,omitempty"`
	Name string `json:"name,omitempty"`
}

// CreateTokenResponse carries the token string, shown once.
type CreateTokenResponse struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateProjectRequest is the body of POST /v1/projects.
type CreateProjectRequest struct {
	Name string `json:"name"`
	// RetentionDays is optional; 0 means DefaultRetentionDays.
	RetentionDays int `json:"retention_days,omitempty"`
}
