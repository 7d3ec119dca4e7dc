package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wardhq/ward"
)

func alertSegs(project string, more ...string) []string {
	return append([]string{"v1", "projects", project, "alerts"}, more...)
}

type alertView ward.Alert

func (a *alertView) validate() error {
	if a.Name == "" || a.State == "" {
		return errors.New("alert rule without a name or state")
	}
	return nil
}

type putAlertResponse ward.PutAlertResponse

func (a *putAlertResponse) validate() error { return (*alertView)(&a.Alert).validate() }

type alertList ward.AlertList

func (l *alertList) validate() error {
	for i := range l.Alerts {
		if err := (*alertView)(&l.Alerts[i]).validate(); err != nil {
			return err
		}
	}
	return nil
}

func (l *alertList) requiredKeys() []string { return []string{"alerts"} }

type alertHistory ward.AlertHistory

func (h *alertHistory) validate() error {
	for _, ev := range h.Events {
		if ev.Kind != ward.EventState && ev.Kind != ward.EventDelivery {
			return errors.New("alert history entry of an unknown kind")
		}
	}
	return nil
}

func (h *alertHistory) requiredKeys() []string { return []string{"events"} }

// PutAlert creates or replaces an alert rule. On create without a secret
// the answer carries the signing secret ward made, the only time it is
// shown; Created says whether the rule is new.
func (c *Client) PutAlert(ctx context.Context, project, name string, rule ward.AlertRule) (resp ward.PutAlertResponse, created bool, err error) {
	body, err := jsonBody(rule)
	if err != nil {
		return ward.PutAlertResponse{}, false, err
	}
	var out putAlertResponse
	var status int
	status, err = c.callStatus(ctx, request{method: http.MethodPut, segs: alertSegs(project, name), body: body, contentType: "application/json"},
		&out, http.StatusOK, http.StatusCreated)
	return ward.PutAlertResponse(out), status == http.StatusCreated, err
}

// ListAlerts lists a project's alert rules with their states, the builtin
// one included.
func (c *Client) ListAlerts(ctx context.Context, project string) ([]ward.Alert, error) {
	var l alertList
	err := c.callJSON(ctx, http.MethodGet, alertSegs(project), nil, &l, http.StatusOK)
	return l.Alerts, err
}

// GetAlert returns one alert rule with its state.
func (c *Client) GetAlert(ctx context.Context, project, name string) (ward.Alert, error) {
	var a alertView
	err := c.callJSON(ctx, http.MethodGet, alertSegs(project, name), nil, &a, http.StatusOK)
	return ward.Alert(a), err
}

// AlertHistory returns a rule's state changes and webhook deliveries,
// newest first; limit 0 takes the server's default.
func (c *Client) AlertHistory(ctx context.Context, project, name string, limit int) ([]ward.AlertEvent, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var h alertHistory
	err := c.call(ctx, request{method: http.MethodGet, segs: alertSegs(project, name, "history"), query: q}, &h, http.StatusOK)
	return h.Events, err
}

// DeleteAlert removes a rule with its state and history.
func (c *Client) DeleteAlert(ctx context.Context, project, name string) error {
	return c.callJSON(ctx, http.MethodDelete, alertSegs(project, name), nil, nil, http.StatusNoContent)
}
