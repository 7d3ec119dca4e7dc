package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/wardhq/ward"
)

// ListRunners lists the runners that registered, with their state and the
// tasks they run (admin only).
func (c *Client) ListRunners(ctx context.Context) ([]ward.Runner, error) {
	var l runnerList
	err := c.callJSON(ctx, http.MethodGet, []string{"v1", "runners"}, nil, &l, http.StatusOK)
	return l.Runners, err
}

// DrainRunner asks a runner to drain: it takes no new task, finishes those
// it runs and leaves (admin only).
func (c *Client) DrainRunner(ctx context.Context, id string) (ward.Runner, error) {
	var r runnerRecord
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "runners", id, "drain"}, struct{}{}, &r, http.StatusOK)
	return ward.Runner(r), err
}

// CreateJoinToken makes a one-time token with which one runner joins the
// cluster (`ward runner join`). ttl is a Go duration ("1h"); "" means the
// server's default (admin only).
func (c *Client) CreateJoinToken(ctx context.Context, ttl string) (ward.JoinTokenResponse, error) {
	var t joinToken
	err := c.callJSON(ctx, http.MethodPost, []string{"v1", "runners", "join-tokens"}, ward.JoinTokenRequest{TTL: ttl}, &t, http.StatusCreated)
	return ward.JoinTokenResponse(t), err
}

type runnerRecord ward.Runner

func (r *runnerRecord) validate() error { return checkRunner(ward.Runner(*r)) }

func checkRunner(r ward.Runner) error {
	switch {
	case r.ID == "":
		return errors.New("runner without an ID")
	case r.State != ward.RunnerActive && r.State != ward.RunnerDraining && r.State != ward.RunnerDrained:
		return fmt.Errorf("runner %s: unknown state %q", r.ID, r.State)
	}
	return nil
}

type runnerList struct {
	Runners []ward.Runner `json:"runners"`
}

func (l *runnerList) requiredKeys() []string { return []string{"runners"} }
func (l *runnerList) validate() error {
	for i, r := range l.Runners {
		if err := checkRunner(r); err != nil {
			return fmt.Errorf("runners[%d]: %w", i, err)
		}
	}
	return nil
}

type joinToken ward.JoinTokenResponse

func (t *joinToken) validate() error {
	if t.Token == "" || t.ID == "" {
		return errors.New("join token without a token or ID")
	}
	return nil
}

// Topology reads where the deployment keeps and processes code and data:
// the server that answers, its stores and key files, the runners and the
// log sinks (admin only).
func (c *Client) Topology(ctx context.Context) (ward.Topology, error) {
	var t topology
	err := c.callJSON(ctx, http.MethodGet, []string{"v1", "topology"}, nil, &t, http.StatusOK)
	return ward.Topology(t), err
}

type topology ward.Topology

func (t *topology) requiredKeys() []string {
	return []string{"server", "places", "runners", "log_sinks"}
}
func (t *topology) validate() error {
	if t.Server.Version == "" || t.Server.API == "" {
		return errors.New("topology without the server's version or address")
	}
	for i, p := range append(slices.Clip(t.Places), t.LogSinks...) {
		if p.Name == "" || p.Kind == "" {
			return fmt.Errorf("place %d without a name or kind", i)
		}
	}
	for i, r := range t.Runners {
		if err := checkRunner(r); err != nil {
			return fmt.Errorf("runners[%d]: %w", i, err)
		}
	}
	return nil
}
