package auth

import (
	"slices"
	"testing"

	"github.com/wardhq/ward"
)

var allRoles = []ward.Role{
	ward.RoleAdmin, ward.RoleOwner, ward.RoleDeveloper,
	ward.RoleSubmitter, ward.RoleViewer, ward.RoleRunner,
}

// TestRoleScopes checks every role against every scope, written out as the
// DESIGN §3 matrix so a change to either side shows up here.
func TestRoleScopes(t *testing.T) {
	t.Parallel()
	type row struct {
		scope                                          Scope
		admin, owner, developer, submitter, viewer, rn bool
	}
	const y, n = true, false
	matrix := []row{
		{ScopeProjectsAdmin, y, n, n, n, n, n},
		{ScopeRunnersAdmin, y, n, n, n, n, n},
		{ScopeTopologyRead, y, n, n, n, n, n},
		{ScopeProjectWrite, y, y, n, n, n, n},
		{ScopeTokensWrite, y, y, n, n, n, n},
		{ScopeFunctionsRead, y, y, y, n, y, n},
		{ScopeFunctionsWrite, y, y, y, n, n, n},
		{ScopeConfigRead, y, y, y, n, n, n},
		{ScopeConfigWrite, y, y, y, n, n, n},
		{ScopeSecretsWrite, y, y, y, n, n, n},
		{ScopeTasksSubmit, y, y, y, y, n, n},
		{ScopeTasksRead, y, y, y, y, y, n},
		{ScopeTasksCancel, y, y, y, n, n, n},
		{ScopeResultsRead, y, y, y, y, n, n},
		{ScopeLogsRead, y, y, y, n, n, n},
		{ScopePayloadRead, y, y, n, n, n, n},
		{ScopeDetokenize, y, y, n, n, n, n},
		{ScopeInvoke, y, y, y, y, n, n},
		{ScopeMetricsRead, y, y, y, n, y, n},
		{ScopeRunnerAPI, y, n, n, n, n, y},
	}
	if len(matrix) != len(AllScopes()) {
		t.Fatalf("matrix has %d scopes, AllScopes %d", len(matrix), len(AllScopes()))
	}
	for _, r := range matrix {
		if !r.scope.Valid() {
			t.Errorf("%q is not a valid scope", r.scope)
		}
		want := map[ward.Role]bool{
			ward.RoleAdmin: r.admin, ward.RoleOwner: r.owner, ward.RoleDeveloper: r.developer,
			ward.RoleSubmitter: r.submitter, ward.RoleViewer: r.viewer, ward.RoleRunner: r.rn,
		}
		for _, role := range allRoles {
			if got := RoleHas(role, r.scope); got != want[role] {
				t.Errorf("RoleHas(%s, %s) = %v, want %v", role, r.scope, got, want[role])
			}
			if got := slices.Contains(ScopesOf(role), r.scope); got != want[role] {
				t.Errorf("ScopesOf(%s) contains %s = %v, want %v", role, r.scope, got, want[role])
			}
			p := Principal{TokenID: NewTokenID(), Role: role, Project: "p"}
			if got := p.Can(r.scope); got != want[role] {
				t.Errorf("Principal{%s}.Can(%s) = %v, want %v", role, r.scope, got, want[role])
			}
		}
	}
}

func TestScopesOfUnknownRoleAndCopies(t *testing.T) {
	t.Parallel()
	for _, r := range []ward.Role{"", "root", "Admin", "owner "} {
		if s := ScopesOf(r); len(s) != 0 {
			t.Errorf("ScopesOf(%q) = %v, want none", r, s)
		}
		if (Principal{Role: r}).Can(ScopeTasksRead) {
			t.Errorf("unknown role %q can read tasks", r)
		}
	}
	// Changing a returned slice must not change the role.
	s := ScopesOf(ward.RoleViewer)
	s[0] = ScopeProjectsAdmin
	if RoleHas(ward.RoleViewer, ScopeProjectsAdmin) {
		t.Fatal("ScopesOf returned the role's own table")
	}
	a := AllScopes()
	a[0] = "x"
	if Scope("x").Valid() {
		t.Fatal("AllScopes returned the package's own table")
	}
	if Scope("tasks:write").Valid() || Scope("").Valid() {
		t.Fatal("unknown scope reported valid")
	}
}

func TestInProjectAndOwnTasksOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p       Principal
		project string
		want    bool
	}{
		{Principal{Role: ward.RoleAdmin}, "a", true},
		{Principal{Role: ward.RoleAdmin}, "b", true},
		{Principal{Role: ward.RoleAdmin}, "", false},
		{Principal{Role: ward.RoleOwner, Project: "a"}, "a", true},
		{Principal{Role: ward.RoleOwner, Project: "a"}, "b", false},
		{Principal{Role: ward.RoleOwner, Project: "a"}, "", false},
		{Principal{Role: ward.RoleDeveloper, Project: "a"}, "a", true},
		{Principal{Role: ward.RoleSubmitter, Project: "a"}, "ab", false},
		{Principal{Role: ward.RoleViewer, Project: "a"}, "a", true},
		{Principal{Role: ward.RoleRunner}, "a", false},
		{Principal{Role: ward.RoleRunner, Project: "a"}, "a", false},
		{Principal{Role: "root", Project: "a"}, "a", false},
		{Principal{Role: ward.RoleOwner}, "", false},
	}
	for _, tt := range tests {
		if got := tt.p.InProject(tt.project); got != tt.want {
			t.Errorf("%+v.InProject(%q) = %v, want %v", tt.p, tt.project, got, tt.want)
		}
	}
	for _, r := range allRoles {
		if got, want := (Principal{Role: r}).OwnTasksOnly(), r == ward.RoleSubmitter; got != want {
			t.Errorf("%s OwnTasksOnly = %v, want %v", r, got, want)
		}
	}
}

func TestCanMint(t *testing.T) {
	t.Parallel()
	admin := Principal{Role: ward.RoleAdmin}
	owner := Principal{Role: ward.RoleOwner, Project: "a"}
	tests := []struct {
		name    string
		minter  Principal
		role    ward.Role
		project string
		want    bool
	}{
		{"admin mints admin", admin, ward.RoleAdmin, "", true},
		{"admin mints runner", admin, ward.RoleRunner, "", true},
		{"admin mints owner anywhere", admin, ward.RoleOwner, "b", true},
		{"admin mints viewer", admin, ward.RoleViewer, "a", true},
		{"admin: admin with project", admin, ward.RoleAdmin, "a", false},
		{"admin: owner without project", admin, ward.RoleOwner, "", false},
		{"admin: bad project name", admin, ward.RoleOwner, "Bad_Name", false},
		{"admin: unknown role", admin, "root", "a", false},
		{"owner mints owner", owner, ward.RoleOwner, "a", true},
		{"owner mints developer", owner, ward.RoleDeveloper, "a", true},
		{"owner mints submitter", owner, ward.RoleSubmitter, "a", true},
		{"owner mints viewer", owner, ward.RoleViewer, "a", true},
		{"owner: admin", owner, ward.RoleAdmin, "", false},
		{"owner: runner", owner, ward.RoleRunner, "", false},
		{"owner: other project", owner, ward.RoleViewer, "b", false},
		{"developer", Principal{Role: ward.RoleDeveloper, Project: "a"}, ward.RoleViewer, "a", false},
		{"submitter", Principal{Role: ward.RoleSubmitter, Project: "a"}, ward.RoleSubmitter, "a", false},
		{"viewer", Principal{Role: ward.RoleViewer, Project: "a"}, ward.RoleViewer, "a", false},
		{"runner", Principal{Role: ward.RoleRunner}, ward.RoleRunner, "", false},
	}
	for _, tt := range tests {
		if got := tt.minter.CanMint(tt.role, tt.project); got != tt.want {
			t.Errorf("%s: CanMint(%q, %q) = %v, want %v", tt.name, tt.role, tt.project, got, tt.want)
		}
	}
}

func TestValidateGrant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		role    ward.Role
		project string
		field   string // "" = valid
	}{
		{ward.RoleAdmin, "", ""},
		{ward.RoleRunner, "", ""},
		{ward.RoleOwner, "a", ""},
		{ward.RoleViewer, "my-project-1", ""},
		{ward.RoleAdmin, "a", "project"},
		{ward.RoleRunner, "a", "project"},
		{ward.RoleDeveloper, "", "project"},
		{ward.RoleSubmitter, "-a", "project"},
		{ward.RoleSubmitter, "A", "project"},
		{"", "a", "role"},
		{"superuser", "", "role"},
	}
	for _, tt := range tests {
		err := ValidateGrant(tt.role, tt.project)
		if tt.field == "" {
			if err != nil {
				t.Errorf("ValidateGrant(%q, %q) = %v, want nil", tt.role, tt.project, err)
			}
			continue
		}
		we, ok := err.(*ward.Error)
		if !ok || we.Code != ward.CodeInvalidArgument || we.Field != tt.field {
			t.Errorf("ValidateGrant(%q, %q) = %#v, want invalid_argument on %s", tt.role, tt.project, err, tt.field)
		}
	}
}
