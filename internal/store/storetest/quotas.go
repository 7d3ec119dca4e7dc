package storetest

import (
	"testing"
	"time"

	"github.com/wardhq/ward"
)

// quotaTests cover project quotas and the count they are checked against.
var quotaTests = []test{
	{"Quotas", testQuotas},
	{"CountQueued", testCountQueued},
}

func testQuotas(t *testing.T, e *env) {
	e.project("p", "q")
	if p, err := e.s.GetProject(e.ctx, "p"); err != nil || p.Quotas != (ward.Quotas{}) {
		t.Fatalf("a new project's quotas = %+v, %v; want none", p.Quotas, err)
	}
	want := ward.Quotas{MaxQueued: 100, MaxFunctions: 3}
	p, err := e.s.SetQuotas(e.ctx, "p", want)
	if err != nil || p.Quotas != want || p.RetentionDays != ward.DefaultRetentionDays {
		t.Fatalf("SetQuotas = %+v, %v; want quotas %+v and retention unchanged", p, err, want)
	}
	wantTime(t, "SetQuotas.CreatedAt (unchanged)", p.CreatedAt, t0)
	for _, name := range []string{"p", "q"} {
		got, err := e.s.GetProject(e.ctx, name)
		if want := map[string]ward.Quotas{"p": want}[name]; err != nil || got.Quotas != want {
			t.Errorf("GetProject(%s).Quotas = %+v, %v; want %+v", name, got.Quotas, err, want)
		}
	}
	list, err := e.s.ListProjects(e.ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListProjects = %+v, %v", list, err)
	}
	for _, pr := range list {
		if pr.Name == "p" && pr.Quotas != want {
			t.Errorf("ListProjects: p's quotas = %+v, want %+v", pr.Quotas, want)
		}
	}
	// Retention and quotas are set apart and keep each other.
	if p, err := e.s.SetRetention(e.ctx, "p", 30); err != nil || p.Quotas != want {
		t.Errorf("SetRetention changed the quotas: %+v, %v", p, err)
	}
	if p, err := e.s.SetQuotas(e.ctx, "p", ward.Quotas{}); err != nil || p.Quotas != (ward.Quotas{}) || p.RetentionDays != 30 {
		t.Errorf("SetQuotas(none) = %+v, %v", p, err)
	}
	for _, bad := range []ward.Quotas{{MaxQueued: -1}, {MaxFunctions: ward.MaxQuotaFunctions + 1}} {
		if _, err := e.s.SetQuotas(e.ctx, "p", bad); ward.CodeOf(err) != ward.CodeInvalidArgument {
			t.Errorf("SetQuotas(%+v): %v, want invalid_argument", bad, err)
		}
	}
	if _, err := e.s.SetQuotas(e.ctx, "nope", want); ward.CodeOf(err) != ward.CodeNotFound {
		t.Errorf("SetQuotas(missing project): %v, want not_found", err)
	}
}

func testCountQueued(t *testing.T, e *env) {
	e.project("p", "q")
	e.function("p", "f", nil)
	e.function("q", "f", nil)
	count := func(project string, limit int) int {
		t.Helper()
		n, err := e.s.CountQueued(e.ctx, project, limit)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("p", 10); n != 0 {
		t.Fatalf("CountQueued(empty) = %d", n)
	}
	// Five of p's tasks, one delayed; three of q's.
	for i := range 5 {
		tk := e.task("p", "f")
		if i == 4 {
			tk.RunAt = t0.Add(time.Hour)
		}
		e.insert(tk)
	}
	e.insert(e.task("q", "f"), e.task("q", "f"), e.task("q", "f"))
	if n := count("p", 100); n != 5 {
		t.Errorf("CountQueued(p) = %d, want 5 (delayed tasks count)", n)
	}
	if n := count("q", 100); n != 3 {
		t.Errorf("CountQueued(q) = %d, want 3", n)
	}
	if n := count("p", 2); n != 2 {
		t.Errorf("CountQueued(p, limit 2) = %d, want 2", n)
	}
	// A leased task is no longer queued.
	if ls := e.lease("r1", 2, 1024, t0); len(ls) != 2 {
		t.Fatalf("leased %d", len(ls))
	}
	if n := count("p", 100) + count("q", 100); n != 6 {
		t.Errorf("queued after leasing 2 of 8 = %d, want 6", n)
	}
	if n := count("nope", 100); n != 0 {
		t.Errorf("CountQueued(missing project) = %d", n)
	}
}
