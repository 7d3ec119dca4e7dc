// Package auth issues and checks ward's API tokens: EdDSA-signed JWTs with the
// algorithm pinned, the roles they carry and the scopes each role grants, the
// server's signing key on disk, and the Authenticator that turns an
// Authorization header into a Principal, honouring revocation.
package auth

import (
	"slices"

	"github.com/wardhq/ward"
)

// Scope is one permission a role grants (DESIGN §3).
type Scope string

// Scopes.
const (
	ScopeProjectsAdmin  Scope = "projects:admin"  // create and list projects
	ScopeRunnersAdmin   Scope = "runners:admin"   // list and drain runners
	ScopeTopologyRead   Scope = "topology:read"   // GET /v1/topology
	ScopeProjectWrite   Scope = "project:write"   // change a project's settings (retention)
	ScopeTokensWrite    Scope = "tokens:write"    // mint and revoke tokens
	ScopeFunctionsRead  Scope = "functions:read"  // read function specs
	ScopeFunctionsWrite Scope = "functions:write" // create, update, delete functions; upload code
	ScopeConfigRead     Scope = "config:read"     // read config objects
	ScopeConfigWrite    Scope = "config:write"    // replace config objects
	ScopeSecretsWrite   Scope = "secrets:write"   // write secrets (values are never readable)
	ScopeTasksSubmit    Scope = "tasks:submit"    // submit tasks
	ScopeTasksRead      Scope = "tasks:read"      // read task metadata
	ScopeTasksCancel    Scope = "tasks:cancel"    // cancel and retry tasks
	ScopeResultsRead    Scope = "results:read"    // read task results
	ScopeLogsRead       Scope = "logs:read"       // read task logs
	ScopePayloadRead    Scope = "payload:read"    // read task payloads
	ScopeDetokenize     Scope = "detokenize"      // re-identify tokenized values
	ScopeInvoke         Scope = "invoke"          // synchronous invokes
	ScopeMetricsRead    Scope = "metrics:read"    // read metrics
	ScopeRunnerAPI      Scope = "runner:api"      // the internal runner API
)

// allScopes lists every scope once, in declaration order.
var allScopes = []Scope{
	ScopeProjectsAdmin, ScopeRunnersAdmin, ScopeTopologyRead, ScopeProjectWrite, ScopeTokensWrite,
	ScopeFunctionsRead, ScopeFunctionsWrite, ScopeConfigRead, ScopeConfigWrite,
	ScopeSecretsWrite, ScopeTasksSubmit, ScopeTasksRead, ScopeTasksCancel,
	ScopeResultsRead, ScopeLogsRead, ScopePayloadRead, ScopeDetokenize,
	ScopeInvoke, ScopeMetricsRead, ScopeRunnerAPI,
}

var ownerScopes = []Scope{
	ScopeProjectWrite, ScopeTokensWrite, ScopeFunctionsRead, ScopeFunctionsWrite, ScopeConfigRead,
	ScopeConfigWrite, ScopeSecretsWrite, ScopeTasksSubmit, ScopeTasksRead,
	ScopeTasksCancel, ScopeResultsRead, ScopeLogsRead, ScopePayloadRead,
	ScopeDetokenize, ScopeInvoke, ScopeMetricsRead,
}

var developerScopes = []Scope{
	ScopeFunctionsRead, ScopeFunctionsWrite, ScopeConfigRead, ScopeConfigWrite,
	ScopeSecretsWrite, ScopeTasksSubmit, ScopeTasksRead, ScopeTasksCancel,
	ScopeResultsRead, ScopeLogsRead, ScopeInvoke, ScopeMetricsRead,
}

// Submitters read only the tasks (and results) they submitted; see
// Principal.OwnTasksOnly.
var submitterScopes = []Scope{ScopeTasksSubmit, ScopeInvoke, ScopeTasksRead, ScopeResultsRead}

var viewerScopes = []Scope{ScopeTasksRead, ScopeFunctionsRead, ScopeMetricsRead}

var runnerScopes = []Scope{ScopeRunnerAPI}

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return slices.Contains(allScopes, s) }

// AllScopes returns every known scope.
func AllScopes() []Scope { return slices.Clone(allScopes) }

// scopesOf returns the role's scope table without copying it; callers must
// not modify the result.
func scopesOf(r ward.Role) []Scope {
	switch r {
	case ward.RoleAdmin:
		return allScopes
	case ward.RoleOwner:
		return ownerScopes
	case ward.RoleDeveloper:
		return developerScopes
	case ward.RoleSubmitter:
		return submitterScopes
	case ward.RoleViewer:
		return viewerScopes
	case ward.RoleRunner:
		return runnerScopes
	}
	return nil
}

// ScopesOf returns the scopes a role grants; an unknown role grants none.
func ScopesOf(r ward.Role) []Scope { return slices.Clone(scopesOf(r)) }

// RoleHas reports whether role r grants scope s.
func RoleHas(r ward.Role, s Scope) bool { return slices.Contains(scopesOf(r), s) }
