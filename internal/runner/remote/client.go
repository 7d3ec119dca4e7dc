package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/runner"
)

// maxCompleteBody bounds one completion request; a bigger batch of results
// is sent in several.
const maxCompleteBody = 32 << 20

// maxResponse bounds a response body read (a lease of many jobs, a code
// blob).
const maxResponse = 256 << 20

// Client is a runner.Source over the internal API of a cluster's servers:
// one URL (a load balancer in front of them) or several, used in turn: when
// a server cannot be reached the next call goes to the next URL.
type Client struct {
	bases []string
	cur   atomic.Int32 // index into bases
	hc    atomic.Pointer[http.Client]

	// onCA receives the CA bundle a registration answers with and returns
	// the TLS configuration to use from then on.
	onCA func(pem []byte) (*tls.Config, error)
}

var (
	_ runner.Source      = (*Client)(nil)
	_ runner.LogStreamer = (*Client)(nil)
)

// NewClient returns a Client for the servers at bases ("https://host:port")
// with tlsConf presenting the runner's certificate. onCA, when not nil, is
// called with the trusted CA bundle each registration returns, to keep the
// runner's copy current; the configuration it returns (nil: no change)
// replaces tlsConf for the calls that follow, so a CA staged for rotation
// is trusted without a restart.
func NewClient(bases []string, tlsConf *tls.Config, onCA func(pem []byte) (*tls.Config, error)) (*Client, error) {
	if len(bases) == 0 {
		return nil, ward.Errorf(ward.CodeInvalidArgument, "no server URL")
	}
	c := &Client{onCA: onCA}
	for _, b := range bases {
		if err := checkURL(b); err != nil {
			return nil, err
		}
		c.bases = append(c.bases, strings.TrimRight(b, "/"))
	}
	c.hc.Store(newHTTPClient(tlsConf))
	return c, nil
}

func newHTTPClient(tlsConf *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     tlsConf,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

// checkURL accepts an https URL with a host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return ward.Errorf(ward.CodeInvalidArgument, "server URL %q: want https://host:port", s)
	}
	return nil
}

// base returns the URL calls go to now.
func (c *Client) base() string { return c.bases[int(c.cur.Load())%len(c.bases)] }

// failed moves on from base after a call to it could not be made.
func (c *Client) failed(base string) {
	if len(c.bases) > 1 && c.base() == base {
		c.cur.Add(1)
	}
}

// Close drops idle connections.
func (c *Client) Close() { c.hc.Load().CloseIdleConnections() }

// Register implements runner.Source.
func (c *Client) Register(ctx context.Context, info ward.Runner) error {
	var resp RegisterResponse
	if _, err := c.call(ctx, PathRegister, info, &resp); err != nil {
		return err
	}
	if c.onCA != nil && resp.CA != "" {
		conf, err := c.onCA([]byte(resp.CA))
		if err != nil {
			return fmt.Errorf("store the CA bundle: %w", err)
		}
		if conf != nil {
			old := c.hc.Swap(newHTTPClient(conf))
			old.CloseIdleConnections()
		}
	}
	return nil
}

// leaseMargin is how much longer than its long poll a lease call may take
// before the client gives up on it.
const leaseMargin = 30 * time.Second

// Lease implements runner.Source. The call is not abandoned when ctx ends:
// the server may have granted leases already, and an answer thrown away
// would leave those tasks stranded until their leases expire. It waits for
// the answer instead (at most the long poll) and returns what was granted.
func (c *Client) Lease(ctx context.Context, req *runner.LeaseRequest) ([]runner.Job, error) {
	r := *req
	r.Wait = max(0, min(r.Wait, MaxLeaseWait))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.Wait+leaseMargin)
	defer cancel()
	var resp LeaseResponse
	if _, err := c.call(callCtx, PathLease, &r, &resp); err != nil {
		return nil, err
	}
	return resp.Jobs, nil
}

// Heartbeat implements runner.Source.
func (c *Client) Heartbeat(ctx context.Context, _ string, leases []runner.LeaseRef) (runner.HeartbeatReply, error) {
	var resp runner.HeartbeatReply
	_, err := c.call(ctx, PathHeartbeat, HeartbeatRequest{Leases: leases}, &resp)
	return resp, err
}

// Complete implements runner.Source. Results go in requests of at most
// maxCompleteBody; a stale result's error is ward.ErrStaleLease.
func (c *Client) Complete(ctx context.Context, results []runner.Result) ([]error, error) {
	errs := make([]error, 0, len(results))
	for len(results) > 0 {
		n, size := 0, 0
		for n < len(results) {
			s := resultSize(&results[n])
			if n > 0 && size+s > maxCompleteBody {
				break
			}
			size += s
			n++
		}
		var resp CompleteResponse
		status, err := c.call(ctx, PathComplete, CompleteRequest{Results: results[:n]}, &resp)
		if err != nil && status != http.StatusConflict {
			return nil, err
		}
		if len(resp.Errors) != n {
			return nil, fmt.Errorf("complete: %d answers for %d results", len(resp.Errors), n)
		}
		for _, e := range resp.Errors {
			if e == nil {
				errs = append(errs, nil)
			} else {
				errs = append(errs, &ward.Error{Code: e.Code, Message: e.Message})
			}
		}
		results = results[n:]
	}
	return errs, nil
}

// resultSize estimates a result's encoded size: its bodies in base64 and
// some room for the rest.
func resultSize(r *runner.Result) int {
	return (len(r.Stdout)+len(r.Stderr))*4/3 + len(r.Message) + 512
}

// StreamLog implements runner.LogStreamer: the chunk goes to the server,
// which serves it to followers on any server of the cluster. A chunk over
// MaxLogChunk goes in several calls.
func (c *Client) StreamLog(ctx context.Context, chunk runner.LogChunk) error {
	data := chunk.Data
	for len(data) > 0 {
		n := min(len(data), MaxLogChunk)
		chunk.Data = data[:n]
		if _, err := c.call(ctx, PathLog, &chunk, nil); err != nil {
			return err
		}
		chunk.Offset += int64(n)
		data = data[n:]
	}
	return nil
}

// Release implements runner.Source.
func (c *Client) Release(ctx context.Context, _ string) error {
	_, err := c.call(ctx, PathRelease, struct{}{}, nil)
	return err
}

// Drained implements runner.Source.
func (c *Client) Drained(ctx context.Context, _ string) error {
	_, err := c.call(ctx, PathDrained, struct{}{}, nil)
	return err
}

// Code implements runner.Source.
func (c *Client) Code(ctx context.Context, project, digest string) ([]byte, error) {
	base := c.base()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+PathCode+url.PathEscape(project)+"/"+url.PathEscape(digest), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Load().Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.failed(base)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeError(resp.StatusCode, body)
	}
	if len(body) > maxResponse {
		return nil, errors.New("code: response too large")
	}
	return body, nil
}

// call POSTs in as JSON to path and decodes the answer into out (when not
// nil). It returns the HTTP status with any error: a *ward.Error when the
// server answered one.
func (c *Client) call(ctx context.Context, path string, in, out any) (int, error) {
	base := c.base()
	status, err := post(ctx, c.hc.Load(), base+path, in, out)
	if status == 0 && err != nil && ctx.Err() == nil {
		c.failed(base)
	}
	return status, err
}

func post(ctx context.Context, hc *http.Client, u string, in, out any) (int, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return resp.StatusCode, err
	}
	if len(body) > maxResponse {
		return resp.StatusCode, errors.New("response too large")
	}
	var callErr error
	if resp.StatusCode >= 300 {
		callErr = decodeError(resp.StatusCode, body)
		// A 409 of complete still carries the per-result answers.
		if resp.StatusCode != http.StatusConflict || out == nil {
			return resp.StatusCode, callErr
		}
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s answer: %w", u, err)
		}
	}
	return resp.StatusCode, callErr
}

// decodeError turns an error response into a *ward.Error.
func decodeError(status int, body []byte) error {
	var eb ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
		return fmt.Errorf("server answered %d", status)
	}
	return &ward.Error{Code: eb.Error.Code, Message: eb.Error.Message}
}
