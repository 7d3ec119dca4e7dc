package client

import (
	"context"
	"net/http"
)

// Metrics returns the server's Prometheus metrics in the text format
// (admin token).
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	_, _, body, err := c.do(ctx, request{method: http.MethodGet, segs: []string{"metrics"}})
	return body, err
}
