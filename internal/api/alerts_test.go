package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wardhq/ward"
)

const alertsPath = "/v1/projects/alpha/alerts/"

// Each bad field of a rule → 400 naming the field.
func TestAlertBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "fn", ward.DefaultSpec())
	good := `"metric":"queue_depth","threshold":2,"for":"1m","webhook":"https://example.test/hook"`
	for _, c := range []struct {
		name, body, field string
		code              ward.Code
	}{
		{"unknown metric", `{"metric":"cpu","threshold":2,"for":"1m","webhook":"https://example.test/h"}`, "metric", ward.CodeInvalidArgument},
		{"no metric", `{"threshold":2,"for":"1m","webhook":"https://example.test/h"}`, "metric", ward.CodeInvalidArgument},
		{"negative threshold", `{"metric":"running","threshold":-1,"for":"1m","webhook":"https://example.test/h"}`, "threshold", ward.CodeInvalidArgument},
		{"huge threshold", `{"metric":"running","threshold":1e300,"for":"1m","webhook":"https://example.test/h"}`, "threshold", ward.CodeInvalidArgument},
		{"threshold a string", `{"metric":"running","threshold":"2","for":"1m","webhook":"https://example.test/h"}`, "threshold", ward.CodeInvalidArgument},
		{"bad op", `{"metric":"running","op":"==","threshold":2,"for":"1m","webhook":"https://example.test/h"}`, "op", ward.CodeInvalidArgument},
		{"for below the interval", `{"metric":"running","threshold":2,"for":"1s","webhook":"https://example.test/h"}`, "for", ward.CodeInvalidArgument},
		{"for unparsable", `{"metric":"running","threshold":2,"for":"soon","webhook":"https://example.test/h"}`, "for", ward.CodeInvalidArgument},
		{"for missing", `{"metric":"running","threshold":2,"webhook":"https://example.test/h"}`, "for", ward.CodeInvalidArgument},
		{"for too long", `{"metric":"running","threshold":2,"for":"25h","webhook":"https://example.test/h"}`, "for", ward.CodeInvalidArgument},
		{"webhook missing", `{"metric":"running","threshold":2,"for":"1m"}`, "webhook", ward.CodeInvalidArgument},
		{"webhook ftp", `{"metric":"running","threshold":2,"for":"1m","webhook":"ftp://example.test/h"}`, "webhook", ward.CodeInvalidArgument},
		{"webhook relative", `{"metric":"running","threshold":2,"for":"1m","webhook":"/hook"}`, "webhook", ward.CodeInvalidArgument},
		{"webhook with userinfo", `{"metric":"running","threshold":2,"for":"1m","webhook":"https://u:p@example.test/h"}`, "webhook", ward.CodeInvalidArgument},
		{"webhook not a URL", `{"metric":"running","threshold":2,"for":"1m","webhook":"https://exa mple.test/%zz"}`, "webhook", ward.CodeInvalidArgument},
		{"short secret", `{` + good + `,"secret":"short"}`, "secret", ward.CodeInvalidArgument},
		{"bad function", `{` + good + `,"function":"Bad_Name"}`, "function", ward.CodeInvalidArgument},
		{"missing function", `{` + good + `,"function":"nope"}`, "function", ward.CodeInvalidArgument},
		{"unknown field", `{` + good + `,"severity":"high"}`, "severity", ward.CodeUnknownField},
		{"not JSON", `{` + good, "", ward.CodeInvalidJSON},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.do("PUT", alertsPath+"rule", e.admin, c.body).wantError(t, http.StatusBadRequest, c.code, c.field)
		})
	}
	e.do("PUT", alertsPath+"Bad_Name", e.admin, `{`+good+`}`).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "name")
	e.do("PUT", alertsPath+ward.BuiltinSubmitSurge, e.admin, `{`+good+`}`).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "name")
	e.do("DELETE", alertsPath+ward.BuiltinSubmitSurge, e.admin, nil).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "name")
	e.do("GET", alertsPath+"nope", e.admin, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("GET", alertsPath+"nope/history", e.admin, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("DELETE", alertsPath+"nope", e.admin, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("PUT", alertsPath+"ok", e.admin, `{`+good+`}`).wantStatus(t, http.StatusCreated)
	e.do("GET", alertsPath+"ok/history?limit=0", e.admin, nil).wantError(t, http.StatusBadRequest, ward.CodeInvalidArgument, "limit")
	// Nothing bad was stored.
	var list ward.AlertList
	e.do("GET", "/v1/projects/alpha/alerts", e.admin, nil).wantStatus(t, http.StatusOK).decode(t, &list)
	if len(list.Alerts) != 2 || list.Alerts[0].Name != "ok" {
		t.Fatalf("alerts = %+v", list.Alerts)
	}
}

// A rule's secret is returned once, when ward makes it on create; updates
// keep it; no read shows it.
func TestAlertLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.function("alpha", "fn", ward.DefaultSpec())
	body := `{"metric":"wait_p95","function":"fn","op":">=","threshold":2.5,"for":"90s","webhook":"https://example.test/hook?x=1"}`
	var created ward.PutAlertResponse
	e.do("PUT", alertsPath+"slow", e.admin, body).wantStatus(t, http.StatusCreated).decode(t, &created)
	if !strings.HasPrefix(created.Secret, "whsec_") || len(created.Secret) != len("whsec_")+64 {
		t.Fatalf("created secret = %q", created.Secret)
	}
	want := ward.AlertSpec{Metric: ward.MetricWaitP95, Function: "fn", Op: ward.OpGE, Threshold: 2.5, For: "1m30s", Webhook: "https://example.test/hook?x=1"}
	if created.AlertSpec != want || created.State != ward.AlertOK || created.Project != "alpha" || created.Name != "slow" {
		t.Fatalf("created = %+v", created)
	}
	var updated ward.PutAlertResponse
	r := e.do("PUT", alertsPath+"slow", e.admin, strings.Replace(body, "2.5", "3", 1)).wantStatus(t, http.StatusOK)
	r.decode(t, &updated)
	if updated.Secret != "" || strings.Contains(string(r.body), created.Secret) || updated.Threshold != 3 {
		t.Fatalf("update answered %s", r.body)
	}
	rec, err := e.st.GetAlert(e.ctx, "alpha", "slow")
	if err != nil || string(rec.Secret) != created.Secret {
		t.Fatalf("the update changed the secret: %v", err)
	}
	// A caller's own secret replaces it and is not echoed.
	r = e.do("PUT", alertsPath+"slow", e.admin, strings.Replace(body, `{`, `{"secret":"my-own-secret-0123456",`, 1)).wantStatus(t, http.StatusOK)
	if strings.Contains(string(r.body), "my-own-secret") {
		t.Fatalf("the answer echoes the secret: %s", r.body)
	}
	if rec, _ := e.st.GetAlert(e.ctx, "alpha", "slow"); string(rec.Secret) != "my-own-secret-0123456" {
		t.Fatal("the caller's secret was not kept")
	}
	viewer := e.token(ward.RoleViewer, "alpha")
	for _, path := range []string{"/v1/projects/alpha/alerts", alertsPath + "slow", alertsPath + "slow/history"} {
		r := e.do("GET", path, viewer, nil).wantStatus(t, http.StatusOK)
		if strings.Contains(string(r.body), "secret") {
			t.Fatalf("GET %s shows a secret: %s", path, r.body)
		}
	}
	var list ward.AlertList
	e.do("GET", "/v1/projects/alpha/alerts", viewer, nil).decode(t, &list)
	if len(list.Alerts) != 2 || list.Alerts[1].Name != ward.BuiltinSubmitSurge || !list.Alerts[1].Builtin || list.Alerts[1].State != ward.AlertOK {
		t.Fatalf("list = %+v", list.Alerts)
	}
	var b ward.Alert
	e.do("GET", alertsPath+ward.BuiltinSubmitSurge, viewer, nil).wantStatus(t, http.StatusOK).decode(t, &b)
	if !b.Builtin || b.Metric != ward.MetricSubmitRate {
		t.Fatalf("builtin = %+v", b)
	}
	e.do("GET", alertsPath+ward.BuiltinSubmitSurge+"/history", viewer, nil).wantStatus(t, http.StatusOK)
	// beta cannot see alpha's rule; a submitter cannot read rules.
	e.do("GET", alertsPath+"slow", e.token(ward.RoleOwner, "beta"), nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	e.do("GET", alertsPath+"slow", e.token(ward.RoleSubmitter, "alpha"), nil).wantError(t, http.StatusForbidden, ward.CodeForbidden, "")
	e.do("DELETE", alertsPath+"slow", e.admin, nil).wantStatus(t, http.StatusNoContent)
	e.do("GET", alertsPath+"slow", e.admin, nil).wantError(t, http.StatusNotFound, ward.CodeNotFound, "")
	// Writes are audited, by name.
	n := 0
	for _, en := range e.auditEntries() {
		if en["resource"] == "slow" {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("%d audit entries name the rule, want 4 (3 puts, 1 delete)", n)
	}
}

func FuzzAlertRule(f *testing.F) {
	f.Add(`{"metric":"queue_depth","threshold":2,"for":"1m","webhook":"https://example.test/hook"}`)
	f.Add(`{"metric":"running","op":"<=","threshold":0,"for":"5s","webhook":"http://[::1]:80/x","secret":"0123456789abcdef"}`)
	f.Add(`{"for":"-1s","webhook":"https://@/"}`)
	f.Fuzz(func(t *testing.T, body string) {
		var rule ward.AlertRule
		if err := decodeStrict([]byte(body), &rule); err != nil {
			if ward.CodeOf(err) == ward.CodeInternal {
				t.Fatalf("decode: untyped error %v", err)
			}
			return
		}
		d, err := rule.Validate(5e9)
		if err != nil {
			var we *ward.Error
			if ward.CodeOf(err) != ward.CodeInvalidArgument || !errorsAs(err, &we) || we.Field == "" {
				t.Fatalf("Validate: %v has no field", err)
			}
			return
		}
		if d < 5e9 || !rule.Metric.Valid() || !rule.Op.Valid() || rule.Threshold < 0 || ward.ValidWebhook(rule.Webhook) != nil {
			t.Fatalf("Validate accepted %+v", rule)
		}
	})
}

func errorsAs(err error, target **ward.Error) bool { return errors.As(err, target) }
