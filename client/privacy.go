package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// detokenizeQuery asks the server to re-identify the tokens in a result
// (?detokenize=1). Only callers whose token has the detokenize scope get the
// originals; the server answers anyone else with the tokens as they are.
var detokenizeQuery = url.Values{"detokenize": {"1"}}

// ResultDetokenized is Result with the tokens in the result replaced by the
// values they stand for, for a caller with the detokenize scope (owner,
// admin); the server audits the re-identification. A caller without the
// scope gets the result with its tokens, as Result would: that is not an
// error.
func (c *Client) ResultDetokenized(ctx context.Context, project, id string) ([]byte, error) {
	return c.taskBody(ctx, project, id, "result", detokenizeQuery)
}

// InvokeDetokenized is Invoke with the tokens in the result replaced by the
// values they stand for, under the same rule as ResultDetokenized.
func (c *Client) InvokeDetokenized(ctx context.Context, project, fn string, payload []byte) (InvokeResult, error) {
	return c.invokeQuery(ctx, project, fn, payload, detokenizeQuery)
}

// invokeQuery runs a synchronous invoke with the given query parameters;
// the request and the answer are those of Invoke.
func (c *Client) invokeQuery(ctx context.Context, project, fn string, payload []byte, query url.Values) (InvokeResult, error) {
	ct := "application/octet-stream"
	if len(payload) > 0 && json.Valid(payload) {
		ct = "application/json"
	}
	if payload == nil {
		payload = []byte{}
	}
	_, h, data, err := c.do(ctx, request{
		method:      http.MethodPost,
		segs:        []string{"v1", "projects", project, "functions", fn, "invoke"},
		query:       query,
		body:        payload,
		contentType: ct,
	})
	if err != nil {
		return InvokeResult{}, err
	}
	id := h.Get("Ward-Task-Id")
	if !validID(id) {
		return InvokeResult{}, fmt.Errorf("invoke %s: %w: no valid Ward-Task-Id header", fn, ErrBadResponse)
	}
	if data == nil {
		data = []byte{}
	}
	return InvokeResult{TaskID: id, Body: data}, nil
}
