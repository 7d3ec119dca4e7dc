package ward

import "time"

// Project is a tenant: functions, tasks, config and tokens belong to one.
type Project struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// RetentionDays bounds how long the project's finished tasks and their
	// keys live; a function's own retention_days applies when shorter.
	RetentionDays int `json:"retention_days"`
	// Quotas bound what the project holds.
	Quotas Quotas `json:"quotas"`
	// Usage is what the project holds now, as its quotas count it.
	Usage ProjectUsage `json:"usage"`
}

// ProjectUsage is what a project holds now.
type ProjectUsage struct {
	// StoredBytes is the size of the project's task payloads, results and
	// logs and of its code, as stored (encrypted); quotas.max_stored_mb
	// bounds it.
	StoredBytes int64 `json:"stored_bytes"`
}

// Quotas bound what a project holds; 0 is unlimited. A submission that
// would pass MaxQueued answers 429 project_queued_quota; creating a function
// past MaxFunctions answers 409 project_functions_quota. At most MaxRunning
// of the project's tasks run at once: leases take no more (the others wait
// in the queue), and an invoke at the quota answers 429
// project_running_quota. A submission, invoke or code upload that would
// take the project's stored bytes past MaxStoredMB MiB answers 413
// project_storage_quota; results and logs of finished runs are always kept
// and count toward it.
type Quotas struct {
	MaxQueued    int `json:"max_queued"`    // tasks queued (due or delayed) at once
	MaxFunctions int `json:"max_functions"` // functions
	MaxRunning   int `json:"max_running"`   // tasks running at once
	MaxStoredMB  int `json:"max_stored_mb"` // MiB of payloads, results, logs and code, as stored
}

// Bounds on quotas.
const (
	MaxQuotaQueued    = 100_000_000
	MaxQuotaFunctions = 100_000
	MaxQuotaRunning   = 1_000_000
	MaxQuotaStoredMB  = 16_777_216 // 16 TiB
)

// StoredBytesLimit is MaxStoredMB in bytes; 0 is unlimited.
func (q Quotas) StoredBytesLimit() int64 { return int64(q.MaxStoredMB) << 20 }

// Validate checks the quotas.
func (q Quotas) Validate() error {
	switch {
	case q.MaxQueued < 0 || q.MaxQueued > MaxQuotaQueued:
		return FieldError("quotas.max_queued", "must be between 0 (unlimited) and %d", MaxQuotaQueued)
	case q.MaxFunctions < 0 || q.MaxFunctions > MaxQuotaFunctions:
		return FieldError("quotas.max_functions", "must be between 0 (unlimited) and %d", MaxQuotaFunctions)
	case q.MaxRunning < 0 || q.MaxRunning > MaxQuotaRunning:
		return FieldError("quotas.max_running", "must be between 0 (unlimited) and %d", MaxQuotaRunning)
	case q.MaxStoredMB < 0 || q.MaxStoredMB > MaxQuotaStoredMB:
		return FieldError("quotas.max_stored_mb", "must be between 0 (unlimited) and %d", MaxQuotaStoredMB)
	}
	return nil
}

// QuotasPatch changes some of a project's quotas: each field given takes
// its value, the others keep theirs.
type QuotasPatch struct {
	MaxQueued    *int `json:"max_queued,omitempty"`
	MaxFunctions *int `json:"max_functions,omitempty"`
	MaxRunning   *int `json:"max_running,omitempty"`
	MaxStoredMB  *int `json:"max_stored_mb,omitempty"`
}

// Patch is the patch that sets every quota to q's.
func (q Quotas) Patch() QuotasPatch {
	return QuotasPatch{MaxQueued: &q.MaxQueued, MaxFunctions: &q.MaxFunctions, MaxRunning: &q.MaxRunning, MaxStoredMB: &q.MaxStoredMB}
}

// Apply returns q with the patch's fields set.
func (p QuotasPatch) Apply(q Quotas) Quotas {
	for _, f := range []struct {
		v   *int
		dst *int
	}{{p.MaxQueued, &q.MaxQueued}, {p.MaxFunctions, &q.MaxFunctions}, {p.MaxRunning, &q.MaxRunning}, {p.MaxStoredMB, &q.MaxStoredMB}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	return q
}

// Validate checks the quotas given; a patch that gives none is refused.
func (p QuotasPatch) Validate() error {
	if p == (QuotasPatch{}) {
		return FieldError("quotas", "give at least one quota to change")
	}
	return p.Apply(Quotas{}).Validate()
}

// DefaultRetentionDays is a new project's retention.
const DefaultRetentionDays = 7

// ProjectSettings is the body of PATCH /v1/projects/{p}: the fields given
// change, the others keep their values, quotas included (a quota left out
// of the object keeps its value).
type ProjectSettings struct {
	RetentionDays int          `json:"retention_days,omitempty"`
	Quotas        *QuotasPatch `json:"quotas,omitempty"`
}

// Validate checks the settings.
func (s ProjectSettings) Validate() error {
	if s.RetentionDays == 0 && s.Quotas == nil {
		return FieldError("retention_days", "give retention_days or quotas to change")
	}
	if s.RetentionDays != 0 {
		if err := ValidRetention(s.RetentionDays); err != nil {
			return err
		}
	}
	if s.Quotas != nil {
		return s.Quotas.Validate()
	}
	return nil
}

// ValidRetention checks a project's retention_days.
func ValidRetention(days int) error {
	if days < 1 || days > MaxRetention {
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
