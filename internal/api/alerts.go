package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/alert"
	"github.com/wardhq/ward/internal/store"
)

// alertName checks an {name} path value of an alert route and records it
// as the audited resource. The builtin rule's name is accepted only where
// builtin is set (reads).
func alertName(r *http.Request, c *call, builtin bool) (string, error) {
	name := r.PathValue("name")
	c.resource = name
	if name == ward.BuiltinSubmitSurge {
		if builtin {
			return name, nil
		}
		return "", ward.FieldError("name", "%s is builtin: it cannot be changed or deleted", name)
	}
	if !ward.ValidName(name) {
		return "", ward.FieldError("name", "must be 1-63 lowercase letters, digits or '-', not starting with '-'")
	}
	return name, nil
}

// newAlertSecret makes a webhook signing secret: "whsec_" and 32 random
// bytes in hex.
func newAlertSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return []byte("whsec_" + hex.EncodeToString(b)), nil
}

// putAlert creates or replaces an alert rule. The answer carries the
// signing secret only when ward made it, on create; otherwise never.
func (s *Server) putAlert(w http.ResponseWriter, r *http.Request, c *call) error {
	name, err := alertName(r, c, false)
	if err != nil {
		return err
	}
	var rule ward.AlertRule
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, maxJSONBody), &rule); err != nil {
		return err
	}
	forD, err := rule.Validate(s.alertInterval)
	if err != nil {
		return err
	}
	if rule.Function != "" {
		if _, err := s.st.GetFunction(r.Context(), c.project, rule.Function); errors.Is(err, ward.ErrNotFound) {
			return ward.FieldError("function", "the project has no function %s", rule.Function)
		} else if err != nil {
			return err
		}
	}
	if _, err := s.st.GetAlert(r.Context(), c.project, name); errors.Is(err, ward.ErrNotFound) {
		n, err := s.st.CountAlerts(r.Context(), c.project)
		if err != nil {
			return err
		}
		if n >= ward.MaxAlertsPerProject {
			return ward.Errorf(ward.CodeInvalidState, "a project holds at most %d alert rules", ward.MaxAlertsPerProject)
		}
	} else if err != nil {
		return err
	}
	secret, generated := []byte(rule.Secret), false
	if len(secret) == 0 {
		if secret, err = newAlertSecret(); err != nil {
			return err
		}
		generated = true
	}
	spec := rule.AlertSpec
	spec.For = forD.String()
	res, err := s.st.PutAlert(r.Context(), &store.PutAlertParams{
		Project: c.project, Name: name, ForMs: forD.Milliseconds(), Secret: secret, KeepSecret: generated, Now: s.now(),
		Spec: spec,
	})
	if err != nil {
		return err
	}
	resp := ward.PutAlertResponse{Alert: res.Alert}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		if generated {
			resp.Secret = string(secret)
		}
	}
	s.writeJSON(w, r, status, resp)
	return nil
}

// builtinAlert is a project's builtin rule with its kept state.
func (s *Server) builtinAlert(r *http.Request, project string) (ward.Alert, error) {
	st, err := s.st.GetAlertState(r.Context(), project, ward.BuiltinSubmitSurge)
	if err != nil {
		return ward.Alert{}, err
	}
	a := ward.Alert{
		Project: project, Name: ward.BuiltinSubmitSurge, Builtin: true, State: st.State, Value: st.Value,
		AlertSpec: ward.AlertSpec{Metric: ward.MetricSubmitRate, Op: ward.OpGT, Threshold: alert.SurgeFloor, For: "0s"},
	}
	if st.Found {
		a.Since, a.EvaluatedAt = &st.Since, &st.EvaluatedAt
	}
	return a, nil
}

// listAlerts lists a project's rules, the builtin one last, with their
// states; no secret.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, c *call) error {
	recs, err := s.st.ListAlerts(r.Context(), c.project)
	if err != nil {
		return err
	}
	list := ward.AlertList{Alerts: make([]ward.Alert, 0, len(recs)+1)}
	for _, rec := range recs {
		list.Alerts = append(list.Alerts, rec.Alert)
	}
	b, err := s.builtinAlert(r, c.project)
	if err != nil {
		return err
	}
	list.Alerts = append(list.Alerts, b)
	s.writeJSON(w, r, http.StatusOK, list)
	return nil
}

// getAlert returns one rule with its state; no secret.
func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, c *call) error {
	name, err := alertName(r, c, true)
	if err != nil {
		return err
	}
	var a ward.Alert
	if name == ward.BuiltinSubmitSurge {
		a, err = s.builtinAlert(r, c.project)
	} else {
		var rec store.AlertRecord
		rec, err = s.st.GetAlert(r.Context(), c.project, name)
		a = rec.Alert
	}
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, a)
	return nil
}

// deleteAlert removes a rule with its state and history.
func (s *Server) deleteAlert(w http.ResponseWriter, r *http.Request, c *call) error {
	name, err := alertName(r, c, false)
	if err != nil {
		return err
	}
	if err := s.st.DeleteAlert(r.Context(), c.project, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// alertHistory returns a rule's state changes and webhook deliveries,
// newest first; ?limit= takes fewer (1 to ward.MaxAlertEvents).
func (s *Server) alertHistory(w http.ResponseWriter, r *http.Request, c *call) error {
	name, err := alertName(r, c, true)
	if err != nil {
		return err
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > ward.MaxAlertEvents {
			return ward.FieldError("limit", "must be between 1 and %d", ward.MaxAlertEvents)
		}
	}
	if name != ward.BuiltinSubmitSurge {
		if _, err := s.st.GetAlert(r.Context(), c.project, name); err != nil {
			return err
		}
	}
	evs, err := s.st.ListAlertEvents(r.Context(), &store.ListAlertEventsParams{Project: c.project, Name: name, Limit: limit})
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, ward.AlertHistory{Events: evs})
	return nil
}
