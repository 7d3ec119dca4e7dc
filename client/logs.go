package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// FollowLog copies a task's log to w as the task runs (?follow=1): lines
// arrive while the task runs, and it returns once the task has finished
// and the whole log was written. For a finished task it writes the log at
// once. A ctx that ends stops it with the context's error.
func (c *Client) FollowLog(ctx context.Context, project, id string, w io.Writer) error {
	segs := []string{"v1", "projects", project, "tasks", id, "log"}
	target, err := c.endpoint(url.Values{"follow": {"1"}}, segs...)
	if err != nil {
		return err
	}
	what := "GET /v1/projects/" + project + "/tasks/" + id + "/log"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return decodeError(resp.StatusCode, resp.Header.Get("Retry-After"), data, c.now())
	}
	// Copy as it comes: each read returns what the server has flushed.
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: reading the log: %w", what, rerr)
		}
	}
}
